"""Portfolio and risk status: positions, exposure, VaR, CVaR, safe mode.

Read-only over the store (the paper book, the stored bars, the persisted
safe-mode state) and the runtime directory (kill switch, latest ticket).
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import pandas as pd

from core.errors import MissingInputError
from core.runtime import RuntimePaths
from core.settings import load_settings
from database import Store, open_store, store_exists
from trading.agent import SAFE_MODE_STATE_KEY
from trading.config import TradingConfig, load_trading_config
from trading.risk import exposure, historical_var_cvar


def read_status(db_path: str | None, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``main.py --status``: the paper book, its risk and the desk's state,
    read from the store at ``db_path`` (default: the runtime's).  A missing
    store is a MissingInputError; bad settings a SettingsError."""
    env = os.environ if env is None else env
    config = load_trading_config(load_settings(), "paper", env)
    paths = RuntimePaths.resolve(db_path)
    if not store_exists(paths.db):
        raise MissingInputError(f"{paths.db}: database not found (run ingest_history.py first)")
    with open_store(paths.db) as db:
        return portfolio_status(db, config, paths)


def portfolio_status(db: Store, config: TradingConfig, paths: RuntimePaths) -> dict[str, Any]:
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
