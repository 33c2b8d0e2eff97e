"""The daily ticket: ``runtime/tickets/YYYY-MM-DD.md`` and ``.json``.

Named by the session the decisions are for - the date of the last stored
bar the decision used (orders of that session fill at the next available
price, see trading/brokers.py).  The ticket holds no wall-clock time, no
run id and nothing random: the same database (bars, governance states,
paper book before the session, safe-mode state, model file) yields the same
bytes.  Floats are rounded to fixed decimals before rendering, keys are
sorted, rows are in symbol order.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trading.agent import Decision

TICKET_VERSION = 1


def _num(value: float | None, decimals: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    out = round(value, decimals)
    return 0.0 if out == 0 else out   # never "-0.0"


def build_ticket(decision: Decision, *, config_public: dict[str, Any]) -> dict[str, Any]:
    """The ticket as a JSON-able dict (pure function of the decision)."""
    snap = decision.snapshot
    instructions = []
    for ins in decision.plan:
        if ins.side is None:
            continue
        instructions.append({
            "symbol": ins.symbol, "side": ins.side, "quantity": _num(ins.quantity, 6),
            "action": ins.action, "governance_state": ins.state,
            "book_quantity": _num(ins.book_quantity, 6), "target_quantity": _num(ins.target_quantity, 6),
            "target_weight": _num(ins.target_weight, 6), "final_weight": _num(ins.final_weight, 6),
            "forecast": _num(ins.forecast, 8), "model": ins.model,
            "alpha": _num(ins.alpha, 8), "alpha_model": ins.alpha_model,
        })
    evidence = []
    by_symbol = {ins.symbol: ins for ins in decision.plan}
    for symbol in sorted(by_symbol):
        gov = decision.governance.get(symbol) or {}
        ins = by_symbol[symbol]
        evidence.append({
            "symbol": symbol, "governance_state": gov.get("state"), "governance_reason": gov.get("reason"),
            "quality_score": _num(gov.get("quality_score"), 4), "stored_rows": gov.get("rows"),
            "last_bar": snap.last_dates.get(symbol), "rows_used": snap.rows_used.get(symbol, 0),
            "close": _num(snap.closes.get(symbol), 6), "providers": list(snap.providers.get(symbol, ())),
            "forecast": _num(ins.forecast, 8), "model": ins.model, "decision": ins.action, "note": ins.note,
        })
    return {
        "ticket_version": TICKET_VERSION,
        "session": decision.session,
        "mode": decision.mode,
        "data": {"as_of": snap.as_of, "price_data_sha256": snap.data_hash, "symbols": len(snap.last_dates),
                 "alpha_model": snap.alpha_model, "critical_gaps": dict(sorted(decision.data_gaps.items()))},
        "instructions": instructions,
        "evidence": evidence,
        "portfolio": {
            "equity": _num(decision.equity, 2), "cash_at_session_start": _num(decision.book.cash, 2),
            "gross_exposure": _num(decision.exposure["gross"], 6), "net_exposure": _num(decision.exposure["net"], 6),
            "var_1d_95": _num(decision.var, 6), "cvar_1d_95": _num(decision.cvar, 6),
            "safe_mode": bool(decision.safe_mode.get("active")),
            "exposure_scale": _num(decision.safe_mode.get("scale", 1.0), 4),
        },
        "config": config_public,
    }


def _fmt(value: Any, decimals: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def render_markdown(ticket: dict[str, Any]) -> str:
    """The human form of the ticket (same content, fixed formatting)."""
    p = ticket["portfolio"]
    d = ticket["data"]
    lines = [
        f"# Trading ticket - session {ticket['session']} ({ticket['mode']})",
        "",
        f"Data as of {d['as_of']}; {d['symbols']} symbols; price data sha256 `{d['price_data_sha256']}`.",
        f"Alpha model: {d['alpha_model'] or 'none'}.",
        "",
        "## Portfolio",
        "",
        f"- Equity: {_fmt(p['equity'], 2)} (cash at session start {_fmt(p['cash_at_session_start'], 2)})",
        f"- Gross exposure: {_fmt(p['gross_exposure'], 4)}; net exposure: {_fmt(p['net_exposure'], 4)}",
        f"- 1-day VaR 95%: {_fmt(p['var_1d_95'], 6)}; CVaR 95%: {_fmt(p['cvar_1d_95'], 6)}",
        f"- Safe mode: {'ON' if p['safe_mode'] else 'off'} (exposure x{_fmt(p['exposure_scale'], 2)})",
    ]
    if d["critical_gaps"]:
        lines.append("- Critical data gaps: " + "; ".join(f"{s}: {w}" for s, w in d["critical_gaps"].items()))
    lines += ["", "## Instructions", ""]
    if ticket["instructions"]:
        lines += ["| symbol | side | quantity | action | state | target weight | forecast | model |",
                  "|---|---|---:|---|---|---:|---:|---|"]
        for i in ticket["instructions"]:
            model = i["model"] + (f" + {i['alpha_model']}" if i["alpha_model"] else "")
            lines.append(f"| {i['symbol']} | {i['side']} | {_fmt(i['quantity'], 4)} | {i['action']} | "
                         f"{i['governance_state']} | {_fmt(i['target_weight'], 4)} | {_fmt(i['forecast'], 6)} | "
                         f"{model} |")
    else:
        lines.append("No orders.")
    lines += ["", "## Evidence", "",
              "| symbol | state | quality | last bar | rows used | close | decision | note |",
              "|---|---|---:|---|---:|---:|---|---|"]
    for e in ticket["evidence"]:
        lines.append(f"| {e['symbol']} | {e['governance_state'] or '-'} | {_fmt(e['quality_score'], 4)} | "
                     f"{e['last_bar'] or '-'} | {e['rows_used']} | {_fmt(e['close'], 4)} | {e['decision']} | "
                     f"{e['note'] or ''} |")
    return "\n".join(lines) + "\n"


def render_json(ticket: dict[str, Any]) -> str:
    return json.dumps(ticket, sort_keys=True, indent=2) + "\n"


def write_ticket(tickets_dir: Path, ticket: dict[str, Any]) -> tuple[Path, Path, bool]:
    """Write both files atomically when their content changed.  Returns the
    two paths and whether anything was written."""
    tickets_dir.mkdir(parents=True, exist_ok=True)
    name = ticket["session"] or "no-data"
    md_path, json_path = tickets_dir / f"{name}.md", tickets_dir / f"{name}.json"
    changed = False
    for path, text in ((json_path, render_json(ticket)), (md_path, render_markdown(ticket))):
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        changed = True
    return md_path, json_path, changed
