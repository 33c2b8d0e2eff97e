"""Repair a symbol's date range: re-fetch, show what changes, keep what is
replaced (so the repair can be undone), re-score and re-govern.

A repair is an ingest run of mode ``repair``: it has a run_id, an
``ingestion_audit_runs`` row, an audit row and a raw archive like any run.
The replaced rows go to ``price_history_replaced`` in the same transaction
as the new bars.  ``--dry-run`` fetches and shows the diff but writes
nothing at all (no run row, no archive).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core import calendar as cal
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import (SUCCESS, IngestionError, ProviderStats, RunContext, RunFindings, SymbolPlan,
                                       fetch_symbols, govern_and_verify, new_run_id)
from data.collectors.ingestion.archive import sweep_uncommitted
from data.collectors.ingestion.lifecycle import close_unfinished, open_run, reconcile_dead_runs
from data.collectors.ingestion.preflight import check_servable
from data.providers.base import FetchRequest
from core.universe import Universe
from database import MixedOriginError, Store
from core.clock import audit_stamp, record_stamp, utc_now
from core.logs import AuditTrail
from core.runtime import RuntimePaths
from core.settings import Settings

COMPARED = ("open", "high", "low", "close", "adj_close", "volume")


@dataclass
class RepairReport:
    """What a repair (or its undo) found and did."""

    run_id: str | None
    symbol: str
    start: str
    end: str
    dry_run: bool
    provider: str | None = None
    error: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)   # date, change, columns {col: [before, after]}
    unchanged: int = 0
    only_in_store: list[str] = field(default_factory=list)        # stored dates the payload lacks (kept)
    state_before: str | None = None
    state_after: str | None = None
    reason_after: str | None = None
    undo: bool = False              # an --undo: it restores the replaced rows, whatever state they give
    providers: list[dict[str, Any]] = field(default_factory=list)   # ProviderStats.verdicts()

    @property
    def failed(self) -> bool:
        """The fetch failed: nothing was repaired."""
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return False
    return a == b


def diff_bars(stored: pd.DataFrame, fetched: pd.DataFrame, provider: str) -> tuple[list[dict], list[dict], int, list[str]]:
    """Compare stored and fetched bars by date.  Returns (changes for the
    operator, rows to keep for undo, unchanged count, dates only in store)."""
    def by_date(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
        out = {}
        for rec in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            out[str(pd.Timestamp(rec["date"]).date())] = rec
        return out

    old, new = by_date(stored), by_date(fetched)
    changes, replaced, unchanged = [], [], 0
    for date in sorted(new):
        after = new[date]
        before = old.get(date)
        if before is None:
            changes.append({"date": date, "change": "inserted",
                            "columns": {c: [None, after.get(c)] for c in COMPARED}})
            replaced.append({"date": date, "change": "inserted"})
            continue
        cols = {c: [before.get(c), after.get(c)] for c in COMPARED if not _same(before.get(c), after.get(c))}
        if before.get("provider") != provider:
            cols["provider"] = [before.get("provider"), provider]
        if not cols:
            unchanged += 1
            continue
        changes.append({"date": date, "change": "updated", "columns": cols})
        replaced.append({"date": date, "change": "updated", **{c: before.get(c) for c in COMPARED},
                         "provider": before.get("provider"), "run_id": before.get("run_id"),
                         "ingested_at": before.get("ingested_at")})
    only_in_store = sorted(set(old) - set(new))
    return changes, replaced, unchanged, only_in_store


def repair_symbol(db: Store, universe: Universe, settings: Settings, paths: RuntimePaths, *, symbol: str,
                  start: dt.date, end: dt.date, provider: str | None = None, data_dir: str | None = None,
                  dry_run: bool = False, router: DataRouter | None = None,
                  as_of: dt.date | None = None) -> RepairReport:
    """Re-fetch ``symbol`` over [start, end] and write what differs, keeping
    the replaced rows; then re-govern the symbol.  Raises IngestionError for
    a symbol outside the universe or an empty range."""
    entry = universe.get(symbol)
    if entry is None or not entry.enabled:
        raise IngestionError(f"{universe.path}: {symbol} is not an enabled symbol of the universe; "
                             f"repairs never add symbols")
    if start > end:
        raise IngestionError(f"--from {start} is after --to {end}")
    calendar = settings.history.calendar_of(entry)
    try:
        window = cal.session_range(calendar, start, end)   # the check ingest's --start/--end share
    except cal.EmptyRangeError as exc:
        raise IngestionError(str(exc)) from exc
    if provider:
        try:
            db.check_origin(provider)
        except MixedOriginError as exc:
            raise IngestionError(str(exc)) from exc
    now = utc_now()
    run_id = new_run_id(now)
    report = RepairReport(None if dry_run else run_id, symbol, str(start), str(end), dry_run)
    report.state_before = (db.governance.states([symbol]).get(symbol) or {}).get("state")
    plan = SymbolPlan(entry, calendar, FetchRequest(symbol, entry.asset_class, start, end, calendar),
                      window.sessions)
    own_router = router is None
    router = router or DataRouter(settings, only=provider, data_dir=data_dir)
    try:
        check_servable(router, [plan.request], provider=provider, range_flag="--from")
    except BaseException:
        if own_router:
            router.close()
        raise
    trail = AuditTrail(paths.audit_jsonl, module="repair", run_id=run_id)
    if not dry_run:
        reconcile_dead_runs(db, run_id, trail)
    stats = ProviderStats()
    # The archive stays only with the bars it holds: removed unless the
    # repair's write commits (archive.sweep_uncommitted).
    raw_dir = None if dry_run else paths.raw_dir(run_id)
    try:
        fetched = next(iter(fetch_symbols(router, [plan], settings=settings, raw_dir=raw_dir, trail=trail,
                                          stats=stats)))
    except BaseException:
        sweep_uncommitted(raw_dir, (), trail)
        raise
    finally:
        if own_router:
            router.close()
    report.providers = stats.verdicts()

    started_at = audit_stamp(now)
    if fetched.payload is None:
        sweep_uncommitted(raw_dir, (), trail)
        report.error = f"{fetched.result.outcome} {fetched.result.error_code}: {fetched.result.error_message}"
        if not dry_run:
            open_run(db, run_id, "repair", str(end), {"symbol": symbol, "from": start, "to": end,
                                                      "provider": provider}, started_at, 1)
            try:
                db.bars.write_symbols(run_id, started_at, [], [fetched.audit])
            except BaseException as exc:
                close_unfinished(db, run_id, exc, trail)
                raise
            db.runs.finish(run_id, status="FAILED", symbols_succeeded=0, symbols_failed=1, rows_written=0,
                           providers_used={}, error=report.error)
        return report

    report.provider = fetched.result.provider
    stored = db.bars.read(symbol, str(start), str(end), include_provenance=True)
    changes, replaced, unchanged, only_in_store = diff_bars(stored, fetched.payload.frame, report.provider)
    report.changes, report.unchanged, report.only_in_store = changes, unchanged, only_in_store
    if dry_run:
        return report

    open_run(db, run_id, "repair", str(end), {"symbol": symbol, "from": start, "to": end, "provider": provider},
             started_at, 1)
    committed: list = []
    try:
        written = db.bars.write_repair(run_id, started_at, fetched.write, replaced)
        committed.append(fetched.payload.raw_archive)
        trail.append("repair_written", symbol=symbol, start=str(start), end=str(end), provider=report.provider,
                     changed=len(changes), rows_written=written)
        ctx = RunContext(db, universe, settings, paths, run_id, as_of or now.date(), trail)
        verdict = govern_and_verify(ctx, RunFindings(symbols=[symbol]))
    except BaseException as exc:
        close_unfinished(db, run_id, exc, trail)
        sweep_uncommitted(raw_dir, committed, trail)
        raise
    db.runs.finish(run_id, status=SUCCESS, symbols_succeeded=1, symbols_failed=0, rows_written=written,
                   providers_used={report.provider: 1}, verification=verdict.verification)
    v = verdict.governance.verdicts[0]
    report.state_after, report.reason_after = v.state, v.reason
    return report


def undo_repair(db: Store, universe: Universe, settings: Settings, paths: RuntimePaths, *,
                repair_run_id: str, as_of: dt.date | None = None) -> RepairReport:
    """Restore what repair ``repair_run_id`` replaced, then re-govern."""
    rows = db.bars.replaced_rows(repair_run_id)
    if not rows:
        raise IngestionError(f"--undo {repair_run_id}: no rows recorded for that repair run")
    if all(r["undone_at"] for r in rows):
        raise IngestionError(f"--undo {repair_run_id}: already undone at {rows[0]['undone_at']}")
    symbol = rows[0]["symbol"]
    report = RepairReport(repair_run_id, symbol, rows[0]["date"], rows[-1]["date"], dry_run=False, undo=True)
    report.state_before = (db.governance.states([symbol]).get(symbol) or {}).get("state")
    now = utc_now()
    run_id = new_run_id(now)
    trail = AuditTrail(paths.audit_jsonl, module="repair", run_id=run_id)
    reconcile_dead_runs(db, run_id, trail)
    open_run(db, run_id, "repair", None, {"undo": repair_run_id, "symbol": symbol}, audit_stamp(now), 1)
    try:
        restored = db.bars.undo_repair(repair_run_id, record_stamp())
        report.changes = [{"date": r["date"], "change": "restored" if r["change"] == "updated" else "deleted"}
                          for r in rows if not r["undone_at"]]
        trail.append("repair_undone", symbol=symbol, undone_run=repair_run_id, rows=restored)
        ctx = RunContext(db, universe, settings, paths, run_id, as_of or now.date(), trail)
        verdict = govern_and_verify(ctx, RunFindings(symbols=[symbol]))
    except BaseException as exc:
        close_unfinished(db, run_id, exc, trail)
        raise
    db.runs.finish(run_id, status=SUCCESS, symbols_succeeded=1, symbols_failed=0, rows_written=restored,
                   providers_used={}, verification=verdict.verification)
    v = verdict.governance.verdicts[0]
    report.state_after, report.reason_after = v.state, v.reason
    return report
