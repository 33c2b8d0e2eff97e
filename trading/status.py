"""Portfolio and risk status: positions, exposure, VaR, CVaR, safe mode.

Read-only over the store (the paper book, the stored bars, the persisted
safe-mode state) and the runtime directory (kill switch, latest ticket).
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from database.manager import Database
from core.runtime import RuntimePaths
from trading.agent import SAFE_MODE_STATE_KEY
from trading.config import TradingConfig
from trading.risk import exposure, historical_var_cvar


def portfolio_status(db: Database, config: TradingConfig, paths: RuntimePaths) -> dict[str, Any]:
    """The paper book valued at the last stored closes, with its risk."""
    positions = db.broker.positions()
    account = db.broker.account()
    cash = float(account["cash"]) if account else config.initial_cash
    rows, returns = [], {}
    for symbol, pos in sorted(positions.items()):
        bars = db.bars.recent(symbol, config.var_window + 1)
        close = float(bars["close"].iloc[-1]) if len(bars) else float("nan")
        last = bars["date"].iloc[-1].strftime("%Y-%m-%d") if len(bars) else None
        if len(bars) > 1:
            adj = bars.set_index(bars["date"].dt.strftime("%Y-%m-%d"))["adj_close"]
            returns[symbol] = adj.pct_change().iloc[1:]
        qty = float(pos["quantity"])
        rows.append({"symbol": symbol, "quantity": qty, "avg_price": float(pos["avg_price"]),
                     "last_close": close, "last_bar": last,
                     "market_value": qty * close if math.isfinite(close) else None})
    equity = cash + sum(r["market_value"] or 0.0 for r in rows)
    weights = {r["symbol"]: (r["market_value"] or 0.0) / equity if equity > 0 else 0.0 for r in rows}
    for r in rows:
        r["weight"] = weights[r["symbol"]]
    var, cvar = historical_var_cvar(weights, pd.DataFrame(returns).sort_index(), config.var_level)
    safe = db.broker.trading_state(SAFE_MODE_STATE_KEY) or {"active": False, "scale": 1.0}
    tickets = sorted(paths.tickets_dir.glob("*.json")) if paths.tickets_dir.exists() else []
    return {
        "cash": cash, "equity": equity, "positions": rows, "exposure": exposure(weights),
        "var_1d_95": var, "cvar_1d_95": cvar, "var_level": config.var_level,
        "safe_mode": {"active": bool(safe.get("active")), "scale": float(safe.get("scale", 1.0)),
                      "reason": safe.get("reason"), "consecutive_errors": int(safe.get("consecutive_errors", 0))},
        "kill_switch": paths.kill_switch.exists(),
        "latest_ticket": tickets[-1].stem if tickets else None,
        "orders": db.table_count("orders"), "fills": db.table_count("fills"),
    }


def render_status(status: dict[str, Any]) -> str:
    e = status["exposure"]
    sm = status["safe_mode"]
    lines = [
        "Portfolio & Risk",
        f"  equity        {status['equity']:,.2f}   cash {status['cash']:,.2f}",
        f"  exposure      gross {e['gross']:.4f}  net {e['net']:.4f}  long {e['long']:.4f}  short {e['short']:.4f}",
        f"  VaR 1d 95%    {status['var_1d_95']:.6f}   CVaR 1d 95% {status['cvar_1d_95']:.6f}",
        f"  safe mode     {'ON (x' + format(sm['scale'], 'g') + ')' if sm['active'] else 'off'}"
        + (f"  reason: {sm['reason']}" if sm["reason"] else ""),
        f"  kill switch   {'PRESENT (halted)' if status['kill_switch'] else 'absent'}",
        f"  orders/fills  {status['orders']}/{status['fills']}   latest ticket {status['latest_ticket'] or '-'}",
        "",
        f"  {'symbol':<10} {'quantity':>14} {'avg price':>12} {'last close':>12} {'value':>14} {'weight':>8}",
    ]
    for p in status["positions"]:
        value = p["market_value"]
        lines.append(f"  {p['symbol']:<10} {p['quantity']:>14.4f} {p['avg_price']:>12.4f} {p['last_close']:>12.4f} "
                     f"{(value if value is not None else float('nan')):>14,.2f} {p['weight']:>8.4f}")
    if not status["positions"]:
        lines.append("  (no positions)")
    return "\n".join(lines)
