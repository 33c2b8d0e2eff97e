"""Stage 1 runs: deep_backfill, incremental, range and verify.

A run has a ``run_id``; it writes one ``ingestion_audit_runs`` row, one
``ingestion_audit`` row per symbol (providers tried, outcome, error code,
rows, latency), archives each raw payload gzip-compressed under
``runtime/raw/{run_id}/`` and appends events to ``runtime/audit/audit.jsonl``.

Fetching happens in worker threads (provider I/O and parsing), writing in
the calling thread, one transaction per batch of symbols: bars, corporate
actions, the audit row and the fetch state of a symbol commit together, so a
crash at any instant leaves the database consistent and a re-run converges.
A failing symbol never stops the batch: the provider's typed error sends it
to the next provider the router allows, and the last error is audited.
"""
from __future__ import annotations

import collections
import concurrent.futures as futures
import datetime as dt
import gzip
import json
import multiprocessing
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core import calendar as cal
from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter, NoValidProviderError, ProviderNotInstalled
from data.governance.governance_agent import ACTIVE, GovernanceReport, govern_symbols
from data.providers.base import (FetchOutcome, FetchRequest, NoDataError, Provider,
                                 ProviderError)
from data.quality import assess_quality
from data.quality.assessment import QualityConfig, QualityReport
from data.quality.drift import DriftResult, close_drift
from core.symbols import filename_for
from core.universe import Universe, UniverseEntry
from database.manager import Database, MixedOriginError, SymbolWrite
from core import exit_codes
from core.alerts import Alerter, AlertMessage
from core.audit_trail import AuditTrail
from reports.health import freshness
from core.redaction import redact
from core.runtime import RuntimePaths
from core.settings import Settings

MODES = ("deep_backfill", "incremental", "verify", "range", "repair")

# Outcomes in ingestion_audit.outcome.
SUCCESS = "SUCCESS"
FAILED = "FAILED"
UP_TO_DATE = "UP_TO_DATE"
SKIPPED_DEAD_LETTER = "SKIPPED_DEAD_LETTER"

ProgressCallback = Callable[[str, int, int], None]


class IngestionError(Exception):
    """The run cannot start (bad range, mixed data origins, unknown provider)."""


@dataclass(frozen=True)
class IngestOptions:
    """What the operator asked for."""

    mode: str = "deep_backfill"
    as_of: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    tickers: tuple[str, ...] = ()
    provider: str | None = None
    data_dir: str | None = None
    fail_on_quality: bool = False    # exit 2 when an error-severity quality finding exists
    revive: tuple[str, ...] = ()     # dead-lettered symbols to bring back before the run
    cross_check: bool = False        # compare closes with a second provider (settings [cross_check])
    now: dt.datetime | None = None   # for tests: what "now" is when as_of is today

    def params(self) -> dict[str, Any]:
        return {"mode": self.mode, "as_of": self.as_of, "start": self.start, "end": self.end,
                "tickers": list(self.tickers), "provider": self.provider, "data_dir": self.data_dir}


@dataclass
class SymbolPlan:
    entry: UniverseEntry
    calendar: str
    request: FetchRequest | None
    expected_rows: int
    outcome: str | None = None       # pre-decided outcome (UP_TO_DATE, SKIPPED_DEAD_LETTER)
    note: str | None = None


@dataclass
class SymbolResult:
    symbol: str
    outcome: str
    provider: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    rows_received: int = 0
    duplicate_rows: int = 0
    rows_written: int = 0
    tried: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class RunReport:
    """Summary of one run; ``exit_code`` follows docs/error_codes.md."""

    run_id: str
    mode: str
    as_of: str
    status: str
    symbols: list[SymbolResult]
    rows_written: int
    providers_used: dict[str, int]
    raw_dir: str | None
    elapsed_s: float
    exit_code: int
    duplicates: dict[str, int] = field(default_factory=dict)
    critical: dict[str, str] = field(default_factory=dict)
    verification: "Verification | None" = None
    cross_check: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[SymbolResult]:
        return [s for s in self.symbols if s.outcome not in (SUCCESS, UP_TO_DATE)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "mode": self.mode, "as_of": self.as_of, "status": self.status,
            "exit_code": self.exit_code, "rows_written": self.rows_written,
            "providers_used": self.providers_used, "raw_dir": self.raw_dir,
            "elapsed_s": round(self.elapsed_s, 3),
            "symbols_total": len(self.symbols),
            "symbols_failed": len(self.failed),
            "governance": self.verification.to_dict() if self.verification else None,
            "cross_check": self.cross_check,
            "symbols": [s.to_dict() for s in self.symbols],
        }


def entry_fingerprint(entry: UniverseEntry) -> str:
    """The universe entry as stored with a dead letter (an edit revives it)."""
    return json.dumps(entry.__dict__, sort_keys=True)


def _utc_text() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique, file-name safe: ``20261122T064800Z-3f9a1c``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


# --------------------------------------------------------------------- plan
def plan_symbols(db: Database, entries: Sequence[UniverseEntry], settings: Settings,
                 options: IngestOptions, as_of: dt.date) -> list[SymbolPlan]:
    """Decide each symbol's window.  Incremental runs start at the session
    after the last stored one and never re-read stored history."""
    required = settings.required_sessions
    last_dates = db.bars.last_dates(e.symbol for e in entries) if options.mode == "incremental" else {}
    dead = {s: st for s, st in db.fetch_state.by_symbol().items() if st.get("dead_letter")}
    changed = [e.symbol for e in entries if e.symbol in dead and dead[e.symbol].get("dead_letter_entry")
               and dead[e.symbol]["dead_letter_entry"] != entry_fingerprint(e)]
    if changed:
        # An operator who edits a dead letter's universe entry wants it tried again.
        for symbol in db.fetch_state.revive_dead_letters(changed, _utc_text()):
            db.governance.record_event("REVIVED", symbol=symbol, reason="UNIVERSE_ENTRY_CHANGED")
            dead.pop(symbol, None)
    plans = []
    for entry in entries:
        calendar = entry.calendar or settings.calendar_for(entry.asset_class)
        if entry.symbol in dead and options.mode == "incremental":
            plans.append(SymbolPlan(entry, calendar, None, 0, SKIPPED_DEAD_LETTER,
                                    "dead-lettered after repeated failures"))
            continue
        note = None
        if options.mode == "range" or (options.start or options.end):
            start = options.start or cal.backfill_window(calendar, as_of, required, options.now).start
            end = options.end or cal.last_complete_session(calendar, as_of, options.now)
            if start > end:
                raise IngestionError(f"--start {start} is after --end {end}")
            window = cal.range_window(calendar, start, end)
        elif options.mode == "incremental" and last_dates.get(entry.symbol):
            last = dt.date.fromisoformat(last_dates[entry.symbol])
            end = cal.last_complete_session(calendar, as_of, options.now)
            start = cal.next_session(calendar, last)
            if start > end:
                plans.append(SymbolPlan(entry, calendar, None, 0, UP_TO_DATE, f"last stored session {last}"))
                continue
            window = cal.range_window(calendar, start, end)
        else:
            window = cal.backfill_window(calendar, as_of, required, options.now)
            if options.mode == "incremental":
                note = "no stored history: full window"
        request = FetchRequest(entry.symbol, entry.asset_class, window.start, window.end, calendar)
        plans.append(SymbolPlan(entry, calendar, request, window.sessions, note=note))
    return plans


# -------------------------------------------------------------------- fetch
@dataclass
class _Pending:
    plan: SymbolPlan
    candidates: list[str]
    skipped: dict[str, str]
    tried: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0


@dataclass
class _Fetched:
    """A provider's outcome plus the work done on it in the fetch worker."""

    outcome: FetchOutcome
    frame: pd.DataFrame | None = None
    received: int = 0
    duplicates: int = 0
    quality: QualityReport | None = None


class PayloadScorer:
    """Scores a payload in the fetch worker when it covers the symbol's whole
    governance window (a deep backfill), so governing a fresh backfill never
    reads the store back.  Thread-safe: it holds only read-only state."""

    def __init__(self, settings: Settings, as_of: dt.date):
        self.config = QualityConfig.from_settings(settings)
        self.required = settings.required_sessions
        self.as_of = as_of
        self._windows: dict[str, tuple[cal.Window, pd.DatetimeIndex]] = {}

    def window(self, calendar: str) -> tuple[cal.Window, pd.DatetimeIndex]:
        if calendar not in self._windows:
            win = cal.backfill_window(calendar, self.as_of, self.required)
            self._windows[calendar] = (win, cal.expected_sessions(calendar, win.start, win.end))
        return self._windows[calendar]

    def __call__(self, request: FetchRequest, frame: pd.DataFrame, duplicates: int) -> QualityReport | None:
        win, sessions = self.window(request.calendar)
        if (request.start, request.end) != (win.start, win.end):
            return None
        return assess_quality(frame, expected_sessions=sessions, payload_duplicates=duplicates,
                              asset_class=request.asset_class, corporate_actions=actions_in_frame(frame),
                              as_of=self.as_of, settings=self.config, symbol=request.symbol,
                              calendar=request.calendar)


def actions_in_frame(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The payload's dividends and splits as (date, action, value) rows, the
    shape ``db.bars.corporate_actions`` returns."""
    parts = []
    for col, action, neutral in (("dividend", "dividend", 0.0), ("split_ratio", "split", 1.0)):
        if col in frame.columns:
            values = frame[col].to_numpy(dtype="float64")
            mask = ~np.isnan(values) & (values != neutral) & (values != 0.0)
            if mask.any():
                parts.append(pd.DataFrame({"date": frame["date"].to_numpy()[mask], "action": action,
                                           "value": values[mask]}))
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True).sort_values(["date", "action"], ignore_index=True)


@dataclass(frozen=True)
class _Prep:
    """What the fetch workers need besides the provider: where to archive,
    how hard to compress, how to score."""

    raw_dir: Path | None
    compresslevel: int
    scorer: PayloadScorer | None


def fetch_and_prepare(provider: Provider | Callable[[], Provider], name: str,
                      requests: Sequence[FetchRequest], prep: _Prep) -> list[_Fetched]:
    """One provider call for a batch, then per symbol: archive the raw
    payload, trim and deduplicate the frame, score it.  Runs on a fetch
    thread or in a worker process; never raises for a provider's failure."""
    try:
        if callable(provider) and not hasattr(provider, "fetch"):
            provider = provider()
        outcomes = list(provider.fetch(requests))
    except ProviderNotInstalled as exc:
        return [_Fetched(FetchOutcome(r, error=_provider_error(exc, name, r.symbol, "PROVIDER_NOT_INSTALLED")))
                for r in requests]
    except ProviderError as exc:
        return [_Fetched(FetchOutcome(r, error=exc)) for r in requests]
    except Exception as exc:  # a provider bug must not kill the batch
        return [_Fetched(FetchOutcome(r, error=_provider_error(exc, name, r.symbol, "PROVIDER_CRASH")))
                for r in requests]
    return [_prepare(name, outcome, prep) for outcome in outcomes]


def _prepare(name: str, outcome: FetchOutcome, prep: _Prep) -> _Fetched:
    result = outcome.result
    if result is None:
        return _Fetched(outcome)
    if result.raw_payload is not None and prep.raw_dir is not None:
        path = prep.raw_dir / f"{filename_for(name)}__{filename_for(result.symbol)}.{result.raw_suffix}.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wb", compresslevel=prep.compresslevel) as fh:
            fh.write(result.raw_payload)
        result.notes.append(f"raw:{path}")
        # Archived: free memory early (and nothing to send back from a worker
        # process).  Unarchived (a dry run, the test adapter) the payload stays
        # on the result: it is the only copy of what the vendor answered.
        result.raw_payload = None
    request = outcome.request
    frame, received, dups = prepare_frame(result.frame, request)
    if frame.empty:
        outcome.error = NoDataError(f"no bars in {request.start}..{request.end}", provider=name,
                                    symbol=request.symbol)
        outcome.result = None
        return _Fetched(outcome)
    result.frame = frame
    quality = prep.scorer(request, frame, dups) if prep.scorer is not None else None
    return _Fetched(outcome, frame, received, dups, quality)


# Worker-process state: providers rebuilt from their spec, once per process.
_PROCESS_PROVIDERS: dict[tuple, Provider] = {}


def _fetch_in_process(spec: tuple[str, dict[str, Any]], name: str, requests: Sequence[FetchRequest],
                      prep: _Prep) -> list[_Fetched]:
    target, options = spec
    key = (target, tuple(sorted(options.items())))
    if key not in _PROCESS_PROVIDERS:
        import importlib

        module_name, _, cls_name = target.partition(":")
        _PROCESS_PROVIDERS[key] = getattr(importlib.import_module(module_name), cls_name)(**options)
    return fetch_and_prepare(_PROCESS_PROVIDERS[key], name, requests, prep)


class _FetchPool:
    """Runs provider fetches off the writer thread and walks each symbol down
    its list of candidate providers until one succeeds or none is left.

    Network providers fetch on threads (they wait on I/O).  A CPU-bound
    local provider (``parallelism = "process"``: files, synthetic) fetches in
    worker processes, so parsing and scoring never hold the GIL the writer
    needs between SQLite steps: measured on 2 cores, that is what separates
    the backfill from the ``.import`` floor."""

    def __init__(self, router: DataRouter, raw_dir: Path | None, workers: int, compresslevel: int,
                 scorer: PayloadScorer | None = None, process_workers: int | None = None):
        self.router = router
        self.prep = _Prep(raw_dir, compresslevel, scorer)
        self.workers = max(1, workers)
        self.process_workers = max(1, process_workers or (os.cpu_count() or 2) - 1)
        self.threads: futures.ThreadPoolExecutor | None = None
        self.processes: futures.ProcessPoolExecutor | None = None
        self.specs: dict[str, tuple[str, dict[str, Any]] | None] = {}
        self.queue: collections.deque[tuple[str, list[_Pending]]] = collections.deque()
        self.in_flight: dict[futures.Future, tuple[str, list[_Pending]]] = {}

    def submit(self, name: str, items: list[_Pending]) -> None:
        batch = int(getattr(self._provider_class(name), "batch_size", 0) or 50)
        for i in range(0, len(items), batch):
            self.queue.append((name, items[i:i + batch]))

    def _provider_class(self, name: str):
        try:
            return type(self.router.provider(name))
        except Exception:  # construction errors surface per request in fetch_and_prepare
            return None

    def _spec(self, name: str) -> tuple[str, dict[str, Any]] | None:
        if name not in self.specs:
            self.specs[name] = self.router.process_spec(name)
        return self.specs[name]

    def _start(self, name: str, items: list[_Pending]) -> futures.Future:
        requests = [p.plan.request for p in items]
        spec = self._spec(name)
        if spec is not None:
            if self.processes is None:
                # fork: the worker inherits the imported modules (no second
                # start-up); it never touches the parent's SQLite connection
                # and leaves through os._exit, so nothing is closed there.
                self.processes = futures.ProcessPoolExecutor(
                    max_workers=self.process_workers, mp_context=multiprocessing.get_context("fork"))
            return self.processes.submit(_fetch_in_process, spec, name, requests, self.prep)
        if self.threads is None:
            self.threads = futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fetch")
        return self.threads.submit(fetch_and_prepare, lambda: self.router.provider(name), name, requests,
                                   self.prep)

    @property
    def capacity(self) -> int:
        return 2 * (self.workers + (self.process_workers if self.processes is not None else 0))

    def results(self) -> Iterable[tuple[_Pending, _Fetched]]:
        """Yield (pending, fetched) as fetches complete, keeping at most
        2 x workers batches in flight so memory stays bounded."""
        while self.queue or self.in_flight:
            while self.queue and len(self.in_flight) < max(2 * self.workers, self.capacity):
                name, items = self.queue.popleft()
                self.in_flight[self._start(name, items)] = (name, items)
            done, _ = futures.wait(list(self.in_flight), return_when=futures.FIRST_COMPLETED)
            for fut in done:
                name, items = self.in_flight.pop(fut)
                by_symbol = {p.plan.entry.symbol: p for p in items}
                for fetched in fut.result():
                    pending = by_symbol.pop(fetched.outcome.request.symbol, None)
                    if pending is not None:
                        yield pending, fetched
                for pending in by_symbol.values():  # provider forgot a symbol: never silent
                    err = NoDataError("provider returned no outcome for the symbol", provider=name,
                                      symbol=pending.plan.entry.symbol)
                    yield pending, _Fetched(FetchOutcome(pending.plan.request, error=err))

    def close(self) -> None:
        for executor in (self.threads, self.processes):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)


def _provider_error(exc: Exception, provider: str, symbol: str, code: str) -> ProviderError:
    err = ProviderError(f"{type(exc).__name__}: {exc}", provider=provider, symbol=symbol)
    err.code = code
    return err


def prepare_frame(frame: pd.DataFrame, request: FetchRequest) -> tuple[pd.DataFrame, int, int]:
    """Trim to the request window, count then collapse duplicate dates (the
    last one wins, as a vendor's correction would), sort by date.
    Returns (frame, rows_received, duplicate_rows)."""
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    lo = np.datetime64(request.start, "ns")
    hi = np.datetime64(request.end, "ns")
    # Fast path (nearly every payload): in window, strictly increasing.
    if len(dates) and dates[0] >= lo and dates[-1] <= hi and (len(dates) < 2 or (dates[1:] > dates[:-1]).all()):
        return frame, len(frame), 0
    inside = (dates >= lo) & (dates <= hi)
    if not inside.all():
        frame = frame.loc[inside]
        dates = dates[inside]
    received = len(frame)
    dup_mask = pd.Index(dates).duplicated(keep="last")
    duplicates = int(dup_mask.sum())
    if duplicates:
        frame = frame.loc[~dup_mask]
        dates = dates[~dup_mask]
    if len(dates) > 1 and not (np.diff(dates.astype("int64")) > 0).all():
        frame = frame.iloc[np.argsort(dates, kind="stable")]
    return frame.reset_index(drop=True), received, duplicates


@dataclass
class SymbolFetch:
    """One symbol after fallback: the bars to write, or the audit row saying
    why there are none."""

    plan: SymbolPlan
    result: SymbolResult
    write: SymbolWrite | None = None
    audit: dict[str, Any] | None = None
    quality: QualityReport | None = None
    skipped: dict[str, str] | None = None     # NO_VALID_PROVIDER: why each provider was passed over
    # The final provider outcome: the serving one, the last error, or a
    # NoValidProviderError (attempts=0) when no provider could be asked;
    # None for a plan with a pre-decided outcome (nothing fetched).
    outcome: FetchOutcome | None = None


class ProviderStats:
    """Per provider, what the run saw: symbols asked, served, failures by
    code, per-symbol latency.  Vendors add their HTTP-level numbers."""

    def __init__(self) -> None:
        self.by_provider: dict[str, dict[str, Any]] = {}

    def record(self, name: str, outcome: FetchOutcome) -> None:
        entry = self.by_provider.setdefault(name, {"asked": 0, "served": 0, "failures": collections.Counter(),
                                                   "latencies_ms": []})
        entry["asked"] += 1
        entry["latencies_ms"].append(outcome.latency_ms)
        if outcome.error is None:
            entry["served"] += 1
        else:
            entry["failures"][getattr(outcome.error, "code", "PROVIDER_ERROR")] += 1

    def rows(self, router: DataRouter) -> list[dict[str, Any]]:
        """provider_health rows: the vendor's own request counts and
        latencies when it keeps them, else per-symbol figures."""
        rows = []
        for name in sorted(self.by_provider):
            seen = self.by_provider[name]
            vendor = router.health_summary(name)
            lat = np.asarray(vendor.get("latencies_ms") or seen["latencies_ms"], dtype="float64") \
                if not vendor.get("p50_ms") else None
            rows.append({
                "provider": name,
                "requests": vendor.get("requests", seen["asked"]),
                "successes": seen["served"],
                "failures": dict(seen["failures"]),
                "p50_ms": vendor.get("p50_ms") if lat is None else round(float(np.percentile(lat, 50)), 3),
                "p95_ms": vendor.get("p95_ms") if lat is None else round(float(np.percentile(lat, 95)), 3),
                "circuit_open": bool(vendor.get("circuit_open")) or name in router.circuit_open,
                "entitled": False if name in router.not_entitled else vendor.get("entitled", True),
                "detail": {k: vendor[k] for k in ("retries", "rate_limited", "rate_limit_wait_s", "http_statuses")
                           if k in vendor} | {"symbols_asked": seen["asked"]},
            })
        return rows


def fetch_symbols(router: DataRouter, plans: Sequence[SymbolPlan], *, settings: Settings,
                  raw_dir: Path | None, trail: AuditTrail | None, scorer: PayloadScorer | None = None,
                  stats: ProviderStats | None = None) -> Iterable[SymbolFetch]:
    """Fetch every plan through the router, falling back provider by
    provider, and yield each symbol once as it resolves.  Nothing is written
    to the store here; raw payloads are archived under ``raw_dir`` (None: not
    archived, as in a dry run, and left on the outcome's result).  ``trail``
    None: no audit-trail events."""
    def event(name: str, **fields: Any) -> None:
        if trail is not None:
            trail.append(name, **fields)

    pool = _FetchPool(router, raw_dir, int(settings.get("providers.fetch_workers", 2)),
                      int(settings.get("ingest.raw_archive_compresslevel", 1)), scorer,
                      settings.get("providers.process_workers"))
    try:
        by_provider: dict[str, list[_Pending]] = collections.defaultdict(list)
        for plan in plans:
            symbol = plan.entry.symbol
            if plan.request is None:
                res = SymbolResult(symbol, plan.outcome or UP_TO_DATE, error_message=plan.note)
                yield SymbolFetch(plan, res, audit=_audit_row(plan, res, count_failure=False))
                continue
            cands = router.candidates(plan.request)
            if not cands.providers:
                res = SymbolResult(symbol, NO_VALID_PROVIDER, error_code=NO_VALID_PROVIDER,
                                   error_message=cands.decision)
                event("no_valid_provider", level="ERROR", symbol=symbol, skipped=cands.skipped)
                error = NoValidProviderError(cands.decision or "no provider in the priority list", symbol=symbol)
                yield SymbolFetch(plan, res, audit=_audit_row(plan, res), skipped=cands.skipped,
                                  outcome=FetchOutcome(plan.request, error=error, attempts=0))
                continue
            by_provider[cands.providers[0]].append(_Pending(plan, cands.providers, cands.skipped))
        for name, items in by_provider.items():
            pool.submit(name, items)

        for pending, fetched in pool.results():
            outcome = fetched.outcome
            plan = pending.plan
            symbol = plan.entry.symbol
            name = pending.candidates[0]
            pending.latency_ms += outcome.latency_ms
            if stats is not None:
                stats.record(name, outcome)
            error = outcome.error
            router.record_outcome(name, error)
            if error is None:
                pending.tried.append({"provider": name, "outcome": SUCCESS, "attempts": outcome.attempts})
                result = outcome.result
                raw = next((n[4:] for n in result.notes if n.startswith("raw:")), None)
                audit = {"asset_class": plan.entry.asset_class, "providers_tried": pending.tried,
                         "provider_used": name, "outcome": SUCCESS, "window_start": plan.request.start,
                         "window_end": plan.request.end, "expected_rows": plan.expected_rows,
                         "rows_received": fetched.received, "duplicate_rows": fetched.duplicates,
                         "adjustment": result.adjustment, "raw_archive": raw,
                         "latency_ms": round(pending.latency_ms, 3), "error_message": plan.note}
                res = SymbolResult(symbol, SUCCESS, provider=name, rows_received=fetched.received,
                                   duplicate_rows=fetched.duplicates, tried=pending.tried)
                yield SymbolFetch(plan, res, write=SymbolWrite(symbol, name, fetched.frame, audit),
                                  quality=fetched.quality, outcome=outcome)
                continue
            code = getattr(error, "code", "PROVIDER_ERROR")
            message = redact(str(error))
            pending.tried.append({"provider": name, "outcome": FAILED, "error_code": code,
                                  "error": message, "attempts": outcome.attempts})
            event("provider_failed", level="WARNING", symbol=symbol, provider=name, error_code=code, error=message)
            pending.candidates = [p for p in pending.candidates[1:] if router.still_usable(p, plan.request)]
            if pending.candidates:
                pool.submit(pending.candidates[0], [pending])
            else:
                res = SymbolResult(symbol, FAILED, error_code=code, error_message=message, tried=pending.tried)
                yield SymbolFetch(plan, res, audit=_audit_row(plan, res, tried=pending.tried,
                                                              latency=pending.latency_ms), outcome=outcome)
    finally:
        pool.close()


def fetch_with_fallback(router: DataRouter, requests: Sequence[FetchRequest], *, raw_dir: Path | None = None
                        ) -> dict[str, tuple[FetchOutcome, list[tuple[str, str]]]]:
    """``fetch_symbols`` for bare requests, without a store or a trail: the
    fallback loop the runs use, for the vendor tests and the fault matrix.

    Returns ``{symbol: (outcome, tried)}`` in request order: ``outcome`` is
    the serving provider's outcome (its frame trimmed, deduplicated and
    sorted as a run would write it), the last error, or ``NO_VALID_PROVIDER``
    (attempts=0) when no provider could be asked; ``tried`` lists
    ``(provider, error_code)`` of the providers that failed it, in order.
    Raw payloads are archived under ``raw_dir`` when given, else left on the
    results.  Feeds the router's run state (``DataRouter.record_outcome``)."""
    plans = [SymbolPlan(UniverseEntry(r.symbol, r.asset_class, calendar=r.calendar), r.calendar, r, 0)
             for r in requests]
    resolved: dict[str, tuple[FetchOutcome, list[tuple[str, str]]]] = {}
    for fetched in fetch_symbols(router, plans, settings=router.settings, raw_dir=raw_dir, trail=None):
        tried = [(t["provider"], t["error_code"]) for t in fetched.result.tried if t["outcome"] == FAILED]
        resolved[fetched.result.symbol] = (fetched.outcome, tried)
    return {r.symbol: resolved[r.symbol] for r in requests}


# ---------------------------------------------------------------------- run
def run_ingestion(db: Database, universe: Universe, settings: Settings, paths: RuntimePaths,
                  options: IngestOptions, *, router: DataRouter | None = None,
                  progress: ProgressCallback | None = None,
                  run_id: str | None = None) -> RunReport:
    """Run one Stage 1 ingestion and return its report.  Never raises for a
    symbol's failure; raises IngestionError when the run cannot start."""
    if options.mode not in MODES:
        raise IngestionError(f"unknown mode {options.mode!r}; expected one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    now = options.now or dt.datetime.now(dt.timezone.utc)
    as_of = options.as_of or now.date()
    run_id = run_id or new_run_id(now)
    started_at = now.strftime("%Y-%m-%dT%H:%M:%SZ") if options.now else \
        dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = universe.select(list(options.tickers) or None)
    trail = AuditTrail(paths.audit_jsonl, module="ingestion", run_id=run_id)
    raw_dir = paths.raw_dir(run_id)

    if options.mode == "verify":
        return _verify_run(db, universe, entries, settings, paths, options, as_of, run_id, started_at, trail, t0)

    if options.provider:
        try:
            db.check_origin(options.provider)
        except MixedOriginError as exc:
            raise IngestionError(str(exc)) from exc

    for symbol in db.fetch_state.revive_dead_letters(options.revive, started_at):
        db.governance.record_event("REVIVED", run_id=run_id, symbol=symbol, reason="OPERATOR")
        trail.append("dead_letter_revived", symbol=symbol, by="operator")
    plans = plan_symbols(db, entries, settings, options, as_of)
    own_router = router is None
    try:
        router = router or DataRouter(settings, only=options.provider, data_dir=options.data_dir)
    except ValueError as exc:
        raise IngestionError(str(exc)) from exc

    db.runs.begin(run_id, options.mode, as_of.isoformat(), options.params(), started_at, len(plans))
    trail.append("run_started", mode=options.mode, as_of=as_of.isoformat(), symbols=len(plans),
                 provider=options.provider, priority=router.priority)

    results: dict[str, SymbolResult] = {}
    writes: list[SymbolWrite] = []
    audit_only: list[dict[str, Any]] = []   # symbols that wrote no bars this run
    rows_written = 0
    providers_used: collections.Counter[str] = collections.Counter()
    duplicates: dict[str, int] = {}
    critical: dict[str, str] = {}
    scored: dict[str, tuple[QualityReport, str, FetchRequest, int]] = {}
    batch_size = int(settings.get("ingest.symbols_per_transaction", 100))

    def flush() -> None:
        nonlocal rows_written, writes, audit_only
        if writes or audit_only:
            rows_written += db.bars.write_symbols(run_id, started_at, writes, audit_only)
            writes, audit_only = [], []

    scorer = PayloadScorer(settings, as_of) if options.mode == "deep_backfill" else None
    stats = ProviderStats()
    cross_checking = options.cross_check or bool(settings.get("cross_check.enabled", False))
    sample_sessions = int(settings.get("cross_check.sample_sessions", 60))
    tails: dict[str, tuple[str, SymbolPlan, pd.DataFrame]] = {}
    try:
        for done, fetched in enumerate(fetch_symbols(router, plans, settings=settings, raw_dir=raw_dir,
                                                     trail=trail, scorer=scorer, stats=stats), start=1):
            res = fetched.result
            results[res.symbol] = res
            if fetched.write is not None:
                if cross_checking:
                    tails[res.symbol] = (res.provider, fetched.plan, fetched.write.frame.tail(sample_sessions).copy())
                writes.append(fetched.write)
                duplicates[res.symbol] = res.duplicate_rows
                providers_used[res.provider] += 1
                if fetched.quality is not None:
                    scored[res.symbol] = (fetched.quality, res.provider, fetched.plan.request,
                                          len(fetched.write.frame))
            else:
                audit_only.append(fetched.audit)
            if res.outcome == NO_VALID_PROVIDER:
                critical[res.symbol] = NO_VALID_PROVIDER
                db.governance.record_event(NO_VALID_PROVIDER, run_id=run_id, symbol=res.symbol, reason=NO_VALID_PROVIDER,
                                           detail={"skipped": fetched.skipped, "asset_class": fetched.plan.entry.asset_class,
                                        "window": [str(fetched.plan.request.start), str(fetched.plan.request.end)]})
            if progress:
                progress(res.symbol, done, len(plans))
            if len(writes) + len(audit_only) >= batch_size:
                flush()
        flush()
        drift = cross_check(router, tails, settings, trail, raw_dir) if cross_checking else {}
    except MixedOriginError as exc:
        db.runs.finish(run_id, status="FAILED", symbols_succeeded=0, symbols_failed=len(plans),
                       rows_written=rows_written, providers_used=dict(providers_used))
        raise IngestionError(str(exc)) from exc
    finally:
        health_rows = stats.rows(router)
        if own_router:
            router.close()
    db.runs.write_provider_health(run_id, health_rows)
    for row in health_rows:
        if row["circuit_open"] or row["failures"]:
            trail.append("provider_health", level="WARNING", **{k: row[k] for k in
                         ("provider", "requests", "successes", "failures", "circuit_open", "entitled")})

    threshold = int(settings.get("ingest.dead_letter_after_failures", 3))
    fingerprints = {e.symbol: entry_fingerprint(e) for e in entries}
    dead_lettered = db.fetch_state.mark_dead_letters(threshold, started_at, fingerprints)
    for symbol in dead_lettered:
        db.governance.record_event("DEAD_LETTER", run_id=run_id, symbol=symbol, reason="NO_PROVIDER_SERVED",
                                   detail={"consecutive_failures_at_least": threshold})
        trail.append("dead_letter", level="ERROR", symbol=symbol)

    # rows_written per symbol comes back from the audit rows the store wrote.
    for row in db.runs.audit_rows(run_id):
        if row["symbol"] in results:
            results[row["symbol"]].rows_written = row["rows_written"]
    ordered = [results[p.entry.symbol] for p in plans]
    failed = [r for r in ordered if r.outcome not in (SUCCESS, UP_TO_DATE)]
    status = "SUCCESS" if not failed else ("FAILED" if len(failed) == len(ordered) else "PARTIAL")

    # A payload scored in the worker stands for the stored window only when
    # the store holds exactly its rows there (nothing older left in the window).
    precomputed = {}
    for symbol, (quality, provider, request, rows) in scored.items():
        if db.bars.count(symbol, str(request.start), str(request.end)) == rows:
            precomputed[symbol] = (quality, provider)
    touched = [r.symbol for r in ordered if r.outcome != SKIPPED_DEAD_LETTER]
    verdict = govern_and_verify(db, universe, settings, paths, run_id=run_id, as_of=as_of, symbols=touched,
                                fetch_failures=[r.symbol for r in failed], payload_duplicates=duplicates,
                                critical=critical, precomputed=precomputed, trail=trail, now=options.now,
                                dead_lettered=dead_lettered,
                                extra_findings={s: [d.finding] for s, d in drift.items() if d.finding})
    db.runs.finish(run_id, status=status, symbols_succeeded=len(ordered) - len(failed),
                   symbols_failed=len(failed), rows_written=rows_written, providers_used=dict(providers_used),
                   verification=verdict.verification)
    elapsed = time.perf_counter() - t0
    trail.append("run_finished", level="INFO" if not failed else "ERROR", status=status,
                 rows_written=rows_written, symbols=len(ordered), failed=[r.symbol for r in failed],
                 providers_used=dict(providers_used), verification=verdict.verification,
                 elapsed_s=round(elapsed, 3))
    code = exit_codes.OK
    if failed:
        code = exit_codes.FAILURE
    elif options.fail_on_quality and verdict.governance.has_error_findings:
        code = exit_codes.GATE_FAILED
    return RunReport(run_id, options.mode, as_of.isoformat(), status, ordered, rows_written,
                     dict(providers_used), str(raw_dir) if raw_dir.exists() else None, elapsed,
                     code, duplicates, critical, verdict, {s: d.to_dict() for s, d in drift.items()})


def cross_check(router: DataRouter, tails: Mapping[str, tuple[str, SymbolPlan, pd.DataFrame]],
                settings: Settings, trail: AuditTrail, raw_dir: Path | None) -> dict[str, DriftResult]:
    """Fetch each symbol's recent sessions from the next entitled provider
    that is not the one that served it, and compare closes.  A symbol no
    second provider can serve is not judged (and says so in the trail)."""
    by_primary: dict[str, list[str]] = collections.defaultdict(list)
    for symbol, (primary, _, _) in tails.items():
        by_primary[primary].append(symbol)
    out: dict[str, DriftResult] = {}
    for primary, symbols in by_primary.items():
        second = router.second_opinion(primary)
        plans = []
        for symbol in symbols:
            _, plan, tail = tails[symbol]
            start = pd.Timestamp(tail["date"].iloc[0]).date()
            plans.append(SymbolPlan(plan.entry, plan.calendar, FetchRequest(
                symbol, plan.entry.asset_class, start, plan.request.end, plan.calendar), len(tail)))
        try:
            for fetched in fetch_symbols(second, plans, settings=settings,
                                         raw_dir=raw_dir / "cross_check" if raw_dir else None, trail=trail):
                symbol = fetched.result.symbol
                if fetched.write is None:
                    trail.append("cross_check_unavailable", level="WARNING", symbol=symbol, primary=primary,
                                 outcome=fetched.result.outcome, error_code=fetched.result.error_code)
                    continue
                result = close_drift(tails[symbol][2], fetched.write.frame, primary_name=primary,
                                     secondary_name=fetched.result.provider,
                                     warn_pct=float(settings.get("cross_check.warn_pct", 1.0)),
                                     error_pct=float(settings.get("cross_check.error_pct", 2.5)),
                                     min_overlap=int(settings.get("cross_check.min_overlap", 20)))
                out[symbol] = result
                detail = result.to_dict()
                trail.append("cross_check", level="WARNING" if result.finding else "INFO", symbol=symbol,
                             drift_level=detail.pop("level"), **detail)
        finally:
            second.close()
    return out


@dataclass
class Verification:
    """Governance and freshness after a run."""

    governance: GovernanceReport
    freshness: dict[str, Any]
    verification: str                  # PASSED / FAILED
    problems: list[str]
    alerts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        gov = self.governance
        return {"verification": self.verification, "problems": self.problems,
                "states": gov.counts, "rejected": len(gov.rejected), "rejection_pct": round(gov.rejection_pct, 3),
                "has_error_findings": gov.has_error_findings, "state_changes": gov.changes,
                "price_health": self.freshness["price_health"], "freshness_counts": self.freshness["counts"],
                "stale_symbols": [s["symbol"] for s in self.freshness["stale_symbols"]],
                "alerts": self.alerts}


def govern_and_verify(db: Database, universe: Universe, settings: Settings, paths: RuntimePaths, *,
                      run_id: str, as_of: dt.date, symbols: Sequence[str], fetch_failures: Sequence[str] = (),
                      payload_duplicates: Mapping[str, int] | None = None,
                      critical: Mapping[str, str] | None = None,
                      precomputed: Mapping[str, tuple[QualityReport, str | None]] | None = None,
                      trail: AuditTrail | None = None, now: dt.datetime | None = None,
                      dead_lettered: Sequence[str] = (),
                      extra_findings: Mapping[str, Sequence[Any]] | None = None) -> Verification:
    """Score and govern ``symbols``, check freshness over the whole universe
    whatever the fetch reported, record INGEST_SUCCESS or
    INGEST_VERIFICATION_FAILED, and alert.  Used after every ingest run,
    by ``--mode=verify`` and by repairs."""
    gov = govern_symbols(db, universe_entries=universe.entries, run_id=run_id, as_of=as_of, settings=settings,
                         payload_duplicates=payload_duplicates, critical=critical, symbols=symbols,
                         precomputed=precomputed, extra_findings=extra_findings)
    fresh = freshness(universe.enabled, db.bars.history_summary(universe.symbols), settings, as_of, now)
    problems = []
    if fetch_failures:
        problems.append(f"{len(fetch_failures)} symbol(s) failed to fetch: {', '.join(list(fetch_failures)[:10])}")
    not_active = [v for v in gov.verdicts if v.state != ACTIVE]
    if not_active:
        problems.append(f"{len(not_active)} symbol(s) not ACTIVE: "
                        + ", ".join(f"{v.symbol} {v.state} {v.reason}" for v in not_active[:10]))
    if fresh["price_health"] == "RED":
        stale = [s["symbol"] for s in fresh["stale_symbols"] if s["health"] == "RED"]
        problems.append(f"price health RED: {len(stale)} symbol(s) stale or empty: {', '.join(stale[:10])}")
    verification = "FAILED" if problems else "PASSED"
    event = "INGEST_SUCCESS" if not problems else "INGEST_VERIFICATION_FAILED"
    db.governance.record_event(event, run_id=run_id, reason=verification,
                               detail={"states": gov.counts, "problems": problems, "price_health": fresh["price_health"],
                            "governed": len(gov.verdicts), "rejection_pct": round(gov.rejection_pct, 3)})
    if trail is not None:
        trail.append(event.lower(), level="INFO" if not problems else "ERROR", states=gov.counts,
                     problems=problems, price_health=fresh["price_health"])
    messages = gov.alert_messages()
    if dead_lettered:
        messages.append(AlertMessage(
            title=f"{len(dead_lettered)} symbol(s) dead-lettered (no provider served them in consecutive runs)",
            body=", ".join(dead_lettered) + "\nIncremental runs skip them; revive with "
                                           "`ingest_history.py --revive SYMBOL` or by editing the universe entry.",
            severity="error", key="dead-letters", details={"run_id": run_id, "symbols": list(dead_lettered)}))
    if problems:
        messages.append(AlertMessage(title=f"Ingest verification failed (run {run_id})", body="\n".join(problems),
                                     severity="error", key="verification-failed",
                                     details={"run_id": run_id, "states": gov.counts}))
    alerter = Alerter(run_id=run_id, settings=settings, store=db.alerts, audit=trail, alerts_dir=paths.alerts_dir)
    alerts = [{"title": m.title, "severity": m.severity, "outcome": r.outcome}
              for m, r in zip(messages, alerter.send_all(messages))]
    return Verification(gov, fresh, verification, problems, alerts)


def _audit_row(plan: SymbolPlan, res: SymbolResult, *, count_failure: bool = True,
               tried: list[dict[str, Any]] | None = None, latency: float | None = None) -> dict[str, Any]:
    req = plan.request
    return {"symbol": plan.entry.symbol, "asset_class": plan.entry.asset_class,
            "providers_tried": tried or [], "provider_used": None, "outcome": res.outcome,
            "error_code": res.error_code, "error_message": res.error_message,
            "window_start": req.start if req else None, "window_end": req.end if req else None,
            "expected_rows": plan.expected_rows, "latency_ms": round(latency, 3) if latency else None,
            "count_failure": count_failure and res.outcome not in (UP_TO_DATE, SKIPPED_DEAD_LETTER)}


def _verify_run(db: Database, universe: Universe, entries: Sequence[UniverseEntry], settings: Settings,
                paths: RuntimePaths, options: IngestOptions, as_of: dt.date, run_id: str, started_at: str,
                trail: AuditTrail, t0: float) -> RunReport:
    """Fetch nothing: re-score and re-govern every selected symbol from what
    the store holds, check freshness, record the verdict."""
    db.runs.begin(run_id, "verify", as_of.isoformat(), options.params(), started_at, len(entries))
    verdict = govern_and_verify(db, universe, settings, paths, run_id=run_id, as_of=as_of,
                                symbols=[e.symbol for e in entries], trail=trail, now=options.now)
    results = [SymbolResult(v.symbol, SUCCESS if v.state == ACTIVE else FAILED,
                            error_code=None if v.state == ACTIVE else v.reason,
                            error_message=None if v.state == ACTIVE else f"{v.state}: {v.rows} rows, "
                                                                         f"score {v.quality_score:.3f}",
                            rows_received=v.rows)
               for v in verdict.governance.verdicts]
    failed = [r for r in results if r.outcome != SUCCESS]
    status = "SUCCESS" if verdict.verification == "PASSED" else "FAILED"
    db.runs.finish(run_id, status=status, symbols_succeeded=len(results) - len(failed),
                   symbols_failed=len(failed), rows_written=0, providers_used={},
                   verification=verdict.verification)
    trail.append("verify_finished", status=status, failed=[r.symbol for r in failed])
    code = exit_codes.OK if verdict.verification == "PASSED" else exit_codes.GATE_FAILED
    return RunReport(run_id, "verify", as_of.isoformat(), status, results, 0, {}, None,
                     time.perf_counter() - t0, code, verification=verdict)


# ------------------------------------------------------------ CLI entry point
def ingest_command(options: IngestOptions, *, db_path: str | None, universe_path: str | None,
                   fail_on_quality: bool = False, as_json: bool = False,
                   settings: Settings | None = None) -> int:
    """What ``ingest_history.py`` does: validate input, open the store, run,
    print the report (JSON on stdout with --json), return the exit code.
    Input problems raise ``core.errors`` exceptions before anything is written."""
    from core.symbols import InvalidSymbolError, normalise_symbol
    from core.universe import UniverseError
    from cli.console import progress_bar
    from core.errors import InputError, MissingInputError
    from core.inputs import load_inputs

    universe, loaded_settings = load_inputs(universe_path)
    settings = settings or loaded_settings
    try:
        tickers = tuple(normalise_symbol(t) for t in options.tickers)
    except InvalidSymbolError as exc:
        raise InputError(f"--tickers: {exc}") from exc
    try:
        universe.select(list(tickers) or None)
    except UniverseError as exc:
        raise InputError(str(exc)) from exc
    if options.data_dir and not Path(options.data_dir).is_dir():
        raise MissingInputError(f"--data-dir {options.data_dir}: directory not found")
    if options.provider and options.provider not in settings.capabilities:
        raise InputError(f"--provider {options.provider!r}: unknown; known: {', '.join(sorted(settings.capabilities))}")
    if (options.start or options.end) and options.mode not in ("deep_backfill", "range"):
        raise InputError(f"--start/--end go with --mode=range (or deep_backfill), not --mode={options.mode}")
    try:
        revive = tuple(normalise_symbol(t) for t in options.revive)
    except InvalidSymbolError as exc:
        raise InputError(f"--revive: {exc}") from exc
    unknown = [t for t in revive if universe.get(t) is None]
    if unknown:
        raise InputError(f"--revive: not in the universe: {', '.join(unknown)}")
    mode = "range" if (options.start or options.end) else options.mode
    options = IngestOptions(**{**options.__dict__, "mode": mode, "tickers": tickers, "revive": revive,
                               "fail_on_quality": fail_on_quality or options.fail_on_quality})

    paths = RuntimePaths.resolve(db_path)
    with Database(paths.db) as db:
        try:
            with progress_bar(f"{mode}", enabled=not as_json) as progress:
                report = run_ingestion(db, universe, settings, paths, options, progress=progress)
        except IngestionError as exc:
            raise InputError(str(exc)) from exc
        except cal.CalendarError as exc:
            raise InputError(f"--as-of/--start/--end: {exc}") from exc
    _print_report(report, db_path=str(paths.db), as_json=as_json)
    return report.exit_code


def _print_report(report: RunReport, *, db_path: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**report.to_dict(), "db": db_path}, default=str, indent=2))
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    failed = report.failed
    console.print(f"run {report.run_id}  mode={report.mode}  as_of={report.as_of}  status={report.status}  "
                  f"symbols={len(report.symbols)}  failed={len(failed)}  rows_written={report.rows_written}  "
                  f"elapsed={report.elapsed_s:.1f}s")
    console.print(f"providers used: {', '.join(f'{k}={v}' for k, v in sorted(report.providers_used.items())) or 'none'}"
                  f"  db: {db_path}  raw: {report.raw_dir or '-'}")
    if report.verification is not None:
        v = report.verification
        states = ", ".join(f"{k} {n}" for k, n in v.governance.counts.items())
        console.print(f"governance: {states}; price health {v.freshness['price_health']}; "
                      f"verification {v.verification}")
        for problem in v.problems:
            console.print(f"  {problem}", markup=False)
    if failed:
        # One line per symbol (not a table): the message names the file and
        # line or the vendor's answer, and an operator greps these lines.
        console.print(f"{len(failed)} symbol(s) failed:")
        for res in failed[:50]:
            console.print(f"  {res.symbol}  {res.outcome}  {res.error_code or '-'}  {res.error_message or ''}",
                          markup=False)
        if len(failed) > 50:
            console.print(f"... and {len(failed) - 50} more (see --json or ingestion_audit)")
