"""One Stage 1 run: deep_backfill, incremental, range or verify.

A run has a ``run_id``; it writes one ``ingestion_audit_runs`` row, one
``ingestion_audit`` row per symbol (providers tried, outcome, error code,
rows, latency), archives each raw payload gzip-compressed under
``runtime/raw/{run_id}/`` and appends events to ``runtime/audit/audit.jsonl``.

Fetching happens in the fetch pool, writing in the calling thread, one
transaction per batch of symbols: bars, corporate actions, the audit row and
the fetch state of a symbol commit together, so a crash at any instant
leaves the database consistent and a re-run converges.  A failing symbol
never stops the batch.  Everything that can refuse the run (an unknown mode,
mixed data origins, a bad range, an unusable provider) is checked before the
run changes any state.

The run row records the process that runs it; whatever ends the run before
its own finish closes the row (``lifecycle``): ``ABORTED`` for a SIGINT or
SIGTERM (``stop``, checked between symbols and while fetches are in flight),
``FAILED`` with the error for any exception; runs that dead processes left
``RUNNING`` are closed ``ABORTED`` when the next run starts.
"""
from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd

from core.clock import audit_stamp, utc_now
from core.logs import AuditTrail
from core.process import StopRequest
from core.runtime import RuntimePaths
from core.settings import Settings
from core.universe import Universe, UniverseEntry
from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter
from data.collectors.ingestion.archive import sweep_uncommitted
from data.collectors.ingestion.cross_check import CrossCheck, cross_check
from data.collectors.ingestion.preflight import check_servable
from data.collectors.ingestion.fetch import ProviderStats, SymbolFetch, SymbolResult, fetch_symbols
from data.collectors.ingestion.lifecycle import close_unfinished, open_run, reconcile_dead_runs
from data.collectors.ingestion.options import MODES, IngestionError, IngestOptions, RunContext, new_run_id
from data.collectors.ingestion.payload import PayloadScorer
from data.collectors.ingestion.plan import (FAILED, SKIPPED_DEAD_LETTER, SUCCESS, UP_TO_DATE, RunPlan, SymbolPlan,
                                            entry_fingerprint, plan_symbols)
from data.collectors.ingestion.verification import RunFindings, Verification, govern_and_verify
from data.governance.rules import ACTIVE
from data.quality.assessment import QualityReport
from data.quality.drift import DriftResult
from database import MixedOriginError, Store

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class RunReport:
    """What one run did.  The edge maps it to an exit code
    (``cli.ingest.exit_code``)."""

    run_id: str
    mode: str
    as_of: str
    status: str                           # SUCCESS / PARTIAL / FAILED
    symbols: list[SymbolResult]
    rows_written: int
    providers_used: dict[str, int]
    raw_dir: str | None
    elapsed_s: float
    duplicates: dict[str, int] = field(default_factory=dict)
    critical: dict[str, str] = field(default_factory=dict)
    verification: Verification | None = None
    cross_check: dict[str, Any] = field(default_factory=dict)
    cross_check_skipped: dict[str, str] = field(default_factory=dict)   # symbol -> why not judged
    providers: list[dict[str, Any]] = field(default_factory=list)   # ProviderStats.verdicts()

    @property
    def failed(self) -> list[SymbolResult]:
        return [s for s in self.symbols if s.outcome not in (SUCCESS, UP_TO_DATE)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "mode": self.mode, "as_of": self.as_of, "status": self.status,
            "rows_written": self.rows_written,
            "providers_used": self.providers_used, "raw_dir": self.raw_dir,
            "elapsed_s": round(self.elapsed_s, 3),
            "symbols_total": len(self.symbols),
            "symbols_failed": len(self.failed),
            "governance": self.verification.to_dict() if self.verification else None,
            "cross_check": self.cross_check, "cross_check_skipped": self.cross_check_skipped,
            "providers": self.providers,
            "symbols": [s.to_dict() for s in self.symbols],
        }


class _BatchWriter:
    """Writes served symbols and unserved audit rows, one transaction per
    ``batch_size`` symbols.  After each transaction it keeps the quality
    report scored in the fetch worker of every symbol whose stored window
    now holds exactly the payload's rows (nothing older left in it): that
    report stands for the stored window and governance need not read it back."""

    def __init__(self, db: Store, run_id: str, started_at: str, batch_size: int):
        self.db, self.run_id, self.started_at, self.batch_size = db, run_id, started_at, batch_size
        self.served: list[SymbolFetch] = []
        self.unserved: list[dict[str, Any]] = []
        self.rows_written = 0
        self.archives: list[Any] = []       # raw archives of committed bars
        self.scored: dict[str, tuple[QualityReport, str | None]] = {}

    def add(self, fetched: SymbolFetch) -> None:
        if fetched.payload is not None:
            self.served.append(fetched)
        else:
            self.unserved.append(fetched.audit)
        if len(self.served) + len(self.unserved) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not (self.served or self.unserved):
            return
        self.rows_written += self.db.bars.write_symbols(self.run_id, self.started_at, [f.write for f in self.served],
                                                        self.unserved)
        self.archives += [f.payload.raw_archive for f in self.served]
        for fetched in self.served:
            quality, request = fetched.payload.quality, fetched.plan.request
            if quality is not None and self.db.bars.count(fetched.result.symbol, str(request.start),
                                                          str(request.end)) == len(fetched.payload.frame):
                self.scored[fetched.result.symbol] = (quality, fetched.result.provider)
        self.served, self.unserved = [], []


def run_ingestion(db: Store, universe: Universe, settings: Settings, paths: RuntimePaths,
                  options: IngestOptions, *, router: DataRouter | None = None,
                  progress: ProgressCallback | None = None,
                  run_id: str | None = None, stop: StopRequest | None = None) -> RunReport:
    """Run one Stage 1 ingestion and return its report.  Never raises for a
    symbol's failure; raises IngestionError, ``core.calendar.CalendarError``
    or another ``core.errors.InputError`` (an unknown provider, a missing
    data directory) when the run cannot start, before it changes any state
    (see IngestionError for the exceptions).  Once the run's row exists,
    anything escaping it closes the row first (FAILED with the error;
    ``core.process.RunInterrupted`` when ``stop`` is requested: ABORTED)."""
    if options.mode not in MODES:
        raise IngestionError(f"unknown mode {options.mode!r}; expected one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    now = options.now or utc_now()
    as_of = options.as_of or now.date()
    run_id = run_id or new_run_id(now)
    started_at = audit_stamp(options.now)
    entries = universe.select(list(options.tickers) or None)
    ctx = RunContext(db, universe, settings, paths, run_id, as_of,
                     AuditTrail(paths.audit_jsonl, module="ingestion", run_id=run_id), options.now)
    if options.mode == "verify":
        reconcile_dead_runs(db, run_id, ctx.trail)
        return _verify_run(ctx, entries, options, started_at, t0)

    if options.provider:
        try:
            db.check_origin(options.provider)
        except MixedOriginError as exc:
            raise IngestionError(str(exc)) from exc
    plan = plan_symbols(db, entries, settings, options, as_of)
    own_router = router is None
    router = router or DataRouter(settings, only=options.provider, data_dir=options.data_dir)
    check_servable(router, (p.request for p in plan.symbols), provider=options.provider,
                   range_flag="--start" if options.start else None)
    reconcile_dead_runs(db, run_id, ctx.trail)
    run = _FetchRun(ctx, options, plan.symbols, started_at, stop)
    run.begin(router)
    try:
        _revive(ctx, options, plan, started_at)
        run.fetch_and_write(router, progress)
        if stop is not None:
            stop.check()        # not once verification has begun: it then runs to its verdict
        return run.finish(entries, t0)
    except BaseException as exc:
        close_unfinished(db, run_id, exc, ctx.trail)
        if isinstance(exc, MixedOriginError):   # found only at the first write
            raise IngestionError(str(exc)) from exc
        raise
    finally:
        if own_router:
            router.close()


def _revive(ctx: RunContext, options: IngestOptions, plan: RunPlan, started_at: str) -> None:
    """Bring back the dead letters the operator named, then those whose
    universe entry was edited."""
    for symbol in ctx.db.fetch_state.revive_dead_letters(options.revive, started_at):
        ctx.db.governance.record_event("REVIVED", run_id=ctx.run_id, symbol=symbol, reason="OPERATOR")
        ctx.trail.append("dead_letter_revived", symbol=symbol, by="operator")
    if plan.entry_changed:
        for symbol in ctx.db.fetch_state.revive_dead_letters(plan.entry_changed, audit_stamp()):
            ctx.db.governance.record_event("REVIVED", symbol=symbol, reason="UNIVERSE_ENTRY_CHANGED")


class _FetchRun:
    """A fetching run's state, from ``db.runs.begin`` to ``db.runs.finish``."""

    def __init__(self, ctx: RunContext, options: IngestOptions, plans: list[SymbolPlan], started_at: str,
                 stop: StopRequest | None = None):
        self.ctx, self.options, self.plans, self.started_at, self.stop = ctx, options, plans, started_at, stop
        self.raw_dir = ctx.paths.raw_dir(ctx.run_id)
        self.results: dict[str, SymbolResult] = {}
        self.writer = _BatchWriter(ctx.db, ctx.run_id, started_at,
                                   ctx.settings.ingest.symbols_per_transaction)
        self.providers_used: collections.Counter[str] = collections.Counter()
        self.duplicates: dict[str, int] = {}
        self.critical: dict[str, str] = {}
        self.drift: dict[str, DriftResult] = {}
        self.cross_skipped: dict[str, str] = {}
        self.health_rows: list[dict[str, Any]] = []
        self.stats = ProviderStats()

    def begin(self, router: DataRouter) -> None:
        """The run's row, RUNNING and owned by this process; the trail's first event."""
        ctx, options = self.ctx, self.options
        open_run(ctx.db, ctx.run_id, options.mode, ctx.as_of.isoformat(), options.params(), self.started_at,
                 len(self.plans))
        ctx.trail.append("run_started", mode=options.mode, as_of=ctx.as_of.isoformat(), symbols=len(self.plans),
                         provider=options.provider, priority=router.priority)

    def fetch_and_write(self, router: DataRouter, progress: ProgressCallback | None) -> None:
        """Fetch every plan, write as symbols resolve, cross-check when asked.
        A stop request is honoured between symbols (nothing more is written,
        not even the batch in hand) and while fetches are in flight."""
        ctx, options, plans, stop = self.ctx, self.options, self.plans, self.stop
        db, settings, run_id, trail = ctx.db, ctx.settings, ctx.run_id, ctx.trail
        scorer = PayloadScorer(settings, ctx.as_of) if options.mode == "deep_backfill" else None
        stats = self.stats
        cross_checking = options.cross_check or settings.cross_check.enabled
        sample_sessions = settings.cross_check.sample_sessions
        tails: dict[str, tuple[str, SymbolPlan, pd.DataFrame]] = {}
        fetching = fetch_symbols(router, plans, settings=settings, raw_dir=self.raw_dir, trail=trail,
                                 scorer=scorer, stats=stats, stop=stop, progress=progress)
        try:
            # closing: an exception raised here rather than inside the
            # generator still abandons the fetches in flight at once.
            with contextlib.closing(fetching):
                for fetched in fetching:
                    if stop is not None:
                        stop.check()
                    res = fetched.result
                    self.results[res.symbol] = res
                    if fetched.payload is not None:
                        if cross_checking:
                            tails[res.symbol] = (res.provider, fetched.plan,
                                                 fetched.payload.frame.tail(sample_sessions).copy())
                        self.duplicates[res.symbol] = res.duplicate_rows
                        self.providers_used[res.provider] += 1
                    if res.outcome == NO_VALID_PROVIDER:
                        self.critical[res.symbol] = NO_VALID_PROVIDER
                        request = fetched.plan.request
                        db.governance.record_event(
                            NO_VALID_PROVIDER, run_id=run_id, symbol=res.symbol, reason=NO_VALID_PROVIDER,
                            detail={"skipped": fetched.skipped, "asset_class": fetched.plan.entry.asset_class,
                                    "window": [str(request.start), str(request.end)]})
                    self.writer.add(fetched)
            self.writer.flush()
            checked = cross_check(router, tails, settings, trail, self.raw_dir) if cross_checking else CrossCheck()
            self.drift, self.cross_skipped = checked.drift, checked.skipped
        finally:
            self.health_rows = stats.rows(router)
            # Archives of bars that were not committed (a failed, stopped or
            # refused write; a payload that fell through) are removed.
            sweep_uncommitted(self.raw_dir, self.writer.archives, trail)

    def finish(self, entries: Sequence[UniverseEntry], t0: float) -> RunReport:
        """Provider health, dead letters, governance and verification, the
        run's row; the report."""
        ctx, db, run_id = self.ctx, self.ctx.db, self.ctx.run_id
        _record_provider_health(ctx, self.health_rows)
        dead_lettered = _mark_dead_letters(ctx, entries, self.started_at)
        # rows_written per symbol comes back from the audit rows the store wrote.
        for row in db.runs.audit_rows(run_id):
            if row["symbol"] in self.results:
                self.results[row["symbol"]].rows_written = row["rows_written"]
                self.results[row["symbol"]].rows_corrected = row.get("rows_corrected") or 0
        ordered = [self.results[p.entry.symbol] for p in self.plans]
        failed = [r for r in ordered if r.outcome not in (SUCCESS, UP_TO_DATE)]
        status = "SUCCESS" if not failed else ("FAILED" if len(failed) == len(ordered) else "PARTIAL")
        rows_written, providers_used = self.writer.rows_written, dict(self.providers_used)
        verdict = govern_and_verify(ctx, RunFindings(
            symbols=[r.symbol for r in ordered if r.outcome != SKIPPED_DEAD_LETTER],
            fetch_failures=[r.symbol for r in failed], payload_duplicates=self.duplicates, critical=self.critical,
            scored=self.writer.scored, dead_lettered=dead_lettered, fetched=True,
            drift_findings={s: [d.finding] for s, d in self.drift.items() if d.finding}))
        error = f"every symbol failed ({len(failed)}; see ingestion_audit)" if status == "FAILED" else None
        db.runs.finish(run_id, status=status, symbols_succeeded=len(ordered) - len(failed),
                       symbols_failed=len(failed), rows_written=rows_written, providers_used=providers_used,
                       verification=verdict.verification, error=error)
        elapsed = time.perf_counter() - t0
        ctx.trail.append("run_finished", level="INFO" if not failed else "ERROR", status=status,
                         rows_written=rows_written, symbols=len(ordered), failed=[r.symbol for r in failed],
                         providers_used=providers_used, verification=verdict.verification,
                         elapsed_s=round(elapsed, 3))
        return RunReport(run_id, self.options.mode, ctx.as_of.isoformat(), status, ordered, rows_written,
                         providers_used, str(self.raw_dir) if self.raw_dir.exists() else None, elapsed,
                         self.duplicates, self.critical, verdict,
                         {s: d.to_dict() for s, d in self.drift.items()}, dict(self.cross_skipped),
                         self.stats.verdicts())


def _record_provider_health(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    ctx.db.runs.write_provider_health(ctx.run_id, rows)
    for row in rows:
        if row["circuit_open"] or row["failures"]:
            ctx.trail.append("provider_health", level="WARNING", **{k: row[k] for k in
                             ("provider", "requests", "successes", "failures", "circuit_open", "entitled")})


def _mark_dead_letters(ctx: RunContext, entries: Sequence[UniverseEntry], started_at: str) -> list[str]:
    """Dead-letter the symbols no provider served in enough consecutive runs."""
    threshold = ctx.settings.ingest.dead_letter_after_failures
    fingerprints = {e.symbol: entry_fingerprint(e) for e in entries}
    dead_lettered = ctx.db.fetch_state.mark_dead_letters(threshold, started_at, fingerprints)
    for symbol in dead_lettered:
        ctx.db.governance.record_event("DEAD_LETTER", run_id=ctx.run_id, symbol=symbol, reason="NO_PROVIDER_SERVED",
                                       detail={"consecutive_failures_at_least": threshold})
        ctx.trail.append("dead_letter", level="ERROR", symbol=symbol)
    return dead_lettered


def _verify_run(ctx: RunContext, entries: Sequence[UniverseEntry], options: IngestOptions, started_at: str,
                t0: float) -> RunReport:
    """Fetch nothing: re-score and re-govern every selected symbol from what
    the store holds, check freshness, record the verdict."""
    db = ctx.db
    open_run(db, ctx.run_id, "verify", ctx.as_of.isoformat(), options.params(), started_at, len(entries))
    try:
        verdict = govern_and_verify(ctx, RunFindings(symbols=[e.symbol for e in entries]))
    except BaseException as exc:
        close_unfinished(db, ctx.run_id, exc, ctx.trail)
        raise
    results = [SymbolResult(v.symbol, SUCCESS if v.state == ACTIVE else FAILED,
                            error_code=None if v.state == ACTIVE else v.reason,
                            error_message=None if v.state == ACTIVE else f"{v.state}: {v.rows} rows, "
                                                                         f"score {v.quality_score:.3f}",
                            rows_received=v.rows)
               for v in verdict.governance.verdicts]
    failed = [r for r in results if r.outcome != SUCCESS]
    status = "SUCCESS" if verdict.passed else "FAILED"
    db.runs.finish(ctx.run_id, status=status, symbols_succeeded=len(results) - len(failed),
                   symbols_failed=len(failed), rows_written=0, providers_used={},
                   verification=verdict.verification)
    ctx.trail.append("verify_finished", status=status, failed=[r.symbol for r in failed])
    return RunReport(ctx.run_id, "verify", ctx.as_of.isoformat(), status, results, 0, {}, None,
                     time.perf_counter() - t0, verification=verdict)
