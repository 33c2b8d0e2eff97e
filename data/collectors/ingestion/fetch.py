"""The fallback loop: every planned symbol through the router's candidate
providers, one after the other, until one serves it or none is left.

``fetch_symbols`` is the only fallback loop; ingest runs, cross-checks and
repairs all use it.  It writes nothing to the store: each symbol comes out
once as a ``SymbolFetch`` holding its audit row and, when served, its
prepared ``Payload``.  ``ProviderStats`` collects what the run saw of each
provider for ``provider_health``.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from core.logs import AuditTrail
from core.process import StopRequest
from core.redaction import redact
from core.settings import Settings
from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter, NoValidProviderError
from data.collectors.ingestion.payload import Payload, PayloadPrep, PayloadScorer
from data.collectors.ingestion.plan import FAILED, SKIPPED_DEAD_LETTER, SUCCESS, UP_TO_DATE, SymbolPlan
from data.collectors.ingestion.pool import FetchPool, Pending
from data.providers.base import EntitlementError, FetchOutcome, ProviderUnreachable, RateLimitError
from database import SymbolWrite


@dataclass
class SymbolResult:
    """One symbol's line of a run report."""

    symbol: str
    outcome: str
    provider: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    rows_received: int = 0
    duplicate_rows: int = 0
    rows_written: int = 0
    rows_corrected: int = 0           # stored bars this run's write changed (old values kept, D-B4)
    tried: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class SymbolFetch:
    """One symbol after fallback: its audit row and, when a provider served
    it, the prepared payload to write."""

    plan: SymbolPlan
    result: SymbolResult
    audit: dict[str, Any]                     # ingestion_audit columns
    payload: Payload | None = None
    skipped: dict[str, str] | None = None     # NO_VALID_PROVIDER: why each provider was passed over
    # The final provider outcome: the serving one, the last error, or a
    # NoValidProviderError (attempts=0) when no provider could be asked;
    # None for a plan with a pre-decided outcome (nothing fetched).
    outcome: FetchOutcome | None = None

    @property
    def write(self) -> SymbolWrite | None:
        """What the store writes for a served symbol (bars and audit row in
        one transaction); None when nothing was served."""
        if self.payload is None:
            return None
        return SymbolWrite(self.result.symbol, self.result.provider, self.payload.frame, self.audit)


# A provider's verdict for the run (``ProviderStats.verdicts``).
PROVIDER_OK, PROVIDER_PARTIAL = "ok", "partial"
PROVIDER_UNREACHABLE, PROVIDER_DOWN = "unreachable", "unavailable"
PROVIDER_NOT_ENTITLED, PROVIDER_RATE_LIMITED, PROVIDER_FAILED = "not entitled", "rate limited", "failed"

ProgressCallback = Callable[[str, int, int], None]


class ProviderStats:
    """Per provider, what the run saw: symbols asked, served, failures by
    code, per-symbol latency, the first message of each failure code.
    Vendors add their HTTP-level numbers."""

    def __init__(self) -> None:
        self.by_provider: dict[str, dict[str, Any]] = {}

    def record(self, name: str, outcome: FetchOutcome) -> None:
        entry = self.by_provider.setdefault(name, {"asked": 0, "served": 0, "failures": collections.Counter(),
                                                   "latencies_ms": [], "causes": {}, "kinds": collections.Counter()})
        entry["asked"] += 1
        entry["latencies_ms"].append(outcome.latency_ms)
        error = outcome.error
        if error is None:
            entry["served"] += 1
            return
        entry["failures"][error.code] += 1
        kind = (PROVIDER_UNREACHABLE if isinstance(error, ProviderUnreachable) else
                PROVIDER_NOT_ENTITLED if isinstance(error, EntitlementError) else
                PROVIDER_RATE_LIMITED if isinstance(error, RateLimitError) else
                PROVIDER_DOWN if error.code == "PROVIDER_UNAVAILABLE" else PROVIDER_FAILED)
        entry["kinds"][kind] += 1
        # The first message of a kind is its cause: later ones are often the
        # consequence ("circuit open after 5 consecutive failures").
        entry["causes"].setdefault(kind, redact(str(getattr(error, "cause", None) or Exception.__str__(error))))

    def verdicts(self) -> list[dict[str, Any]]:
        """One line of data per provider asked: ``provider``, ``status``
        (ok, partial, unreachable, unavailable, not entitled, rate limited,
        failed), ``asked``, ``served``, ``failures`` (code -> symbols),
        ``failure`` (the commonest kind of failure, as a status word) and
        ``cause`` (its first message; both None when all were served), in
        the order the providers were first asked.  The edge renders it with
        a hint."""
        out = []
        for name in self.by_provider:   # in the order first asked
            seen = self.by_provider[name]
            kinds: collections.Counter[str] = seen["kinds"]
            main = kinds.most_common(1)[0][0] if kinds else None
            status = PROVIDER_OK if main is None else (main if seen["served"] == 0 else PROVIDER_PARTIAL)
            out.append({"provider": name, "status": status, "asked": seen["asked"], "served": seen["served"],
                        "failures": dict(seen["failures"]), "failure": main,
                        "cause": seen["causes"].get(main) if main else None})
        return out

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
                "detail": {k: vendor[k] for k in ("retries", "rate_limited", "rate_limit_wait_s", "http_statuses",
                                                           "rate_limit_exhausted")
                           if k in vendor} | {"symbols_asked": seen["asked"]},
            })
        return rows


def _unserved_audit(plan: SymbolPlan, res: SymbolResult, *, count_failure: bool = True,
                    tried: list[dict[str, Any]] | None = None, latency: float | None = None) -> dict[str, Any]:
    req = plan.request
    return {"symbol": plan.entry.symbol, "asset_class": plan.entry.asset_class,
            "providers_tried": tried or [], "provider_used": None, "outcome": res.outcome,
            "error_code": res.error_code, "error_message": res.error_message,
            "window_start": req.start if req else None, "window_end": req.end if req else None,
            "expected_rows": plan.expected_rows, "latency_ms": round(latency, 3) if latency else None,
            "count_failure": count_failure and res.outcome not in (UP_TO_DATE, SKIPPED_DEAD_LETTER)}


def _served(pending: Pending, name: str, outcome: FetchOutcome, payload: Payload) -> SymbolFetch:
    plan = pending.plan
    pending.tried.append({"provider": name, "outcome": SUCCESS, "attempts": outcome.attempts})
    audit = {"asset_class": plan.entry.asset_class, "providers_tried": pending.tried,
             "provider_used": name, "outcome": SUCCESS, "window_start": plan.request.start,
             "window_end": plan.request.end, "expected_rows": plan.expected_rows,
             "rows_received": payload.rows_received, "duplicate_rows": payload.duplicate_rows,
             "adjustment": outcome.result.adjustment,
             "raw_archive": str(payload.raw_archive) if payload.raw_archive is not None else None,
             "latency_ms": round(pending.latency_ms, 3), "error_message": plan.note}
    res = SymbolResult(plan.entry.symbol, SUCCESS, provider=name, rows_received=payload.rows_received,
                       duplicate_rows=payload.duplicate_rows, tried=pending.tried)
    return SymbolFetch(plan, res, audit, payload=payload, outcome=outcome)


def fetch_symbols(router: DataRouter, plans: Sequence[SymbolPlan], *, settings: Settings,
                  raw_dir: Path | None, trail: AuditTrail | None, scorer: PayloadScorer | None = None,
                  stats: ProviderStats | None = None, stop: StopRequest | None = None,
                  progress: ProgressCallback | None = None) -> Iterable[SymbolFetch]:
    """Fetch every plan through the router, falling back provider by
    provider, and yield each symbol once as it resolves.  Nothing is written
    to the store here; raw payloads are archived under ``raw_dir`` (None: not
    archived, as in a dry run, and left on the outcome's result).  ``trail``
    None: no audit-trail events.  Feeds the router's run state
    (``DataRouter.record_outcome``) and ``stats``.  ``stop``: raise
    ``RunInterrupted`` promptly when it is requested; leaving early (that,
    any exception, or the caller closing the generator) abandons the fetches
    in flight instead of waiting for them.

    ``progress(label, done, total)`` counts provider attempts: ``total``,
    known before the first request, is one per candidate provider of each
    symbol (one for a symbol with nothing to fetch); ``done`` advances as
    each attempt resolves, and by the candidates a symbol no longer needs
    once it is served (or they became unusable), so it ends at ``total``.
    It is called once with ``done == 0`` before anything is sent."""
    def event(name: str, **fields: Any) -> None:
        if trail is not None:
            trail.append(name, **fields)

    counter = _AttemptCounter(progress, len(plans))
    prep = PayloadPrep(raw_dir, settings.ingest.raw_archive_compresslevel, scorer)
    pool = FetchPool(router, prep, settings.providers.fetch_workers,
                     settings.providers.process_workers or None, stop=stop)
    try:
        by_provider: dict[str, list[Pending]] = collections.defaultdict(list)
        immediate: list[SymbolFetch] = []
        for plan in plans:
            symbol = plan.entry.symbol
            if plan.request is None:
                res = SymbolResult(symbol, plan.outcome or UP_TO_DATE, error_message=plan.note)
                immediate.append(SymbolFetch(plan, res, _unserved_audit(plan, res, count_failure=False)))
                continue
            cands = router.candidates(plan.request)
            if not cands.providers:
                res = SymbolResult(symbol, NO_VALID_PROVIDER, error_code=NO_VALID_PROVIDER,
                                   error_message=cands.decision)
                event("no_valid_provider", level="ERROR", symbol=symbol, skipped=cands.skipped)
                error = NoValidProviderError(cands.decision or "no provider in the priority list", symbol=symbol)
                immediate.append(SymbolFetch(plan, res, _unserved_audit(plan, res), skipped=cands.skipped,
                                             outcome=FetchOutcome(plan.request, error=error, attempts=0)))
                continue
            counter.total += len(cands.providers)
            by_provider[cands.providers[0]].append(Pending(plan, cands.providers, cands.skipped))
        counter.total += len(immediate)
        counter.start()
        for fetched in immediate:
            counter.advance(1, f"{fetched.result.symbol}: {fetched.result.outcome}", resolved=True)
            yield fetched
        for name, items in by_provider.items():
            pool.submit(name, items)

        for pending, (outcome, payload) in pool.results():
            plan = pending.plan
            name = pending.candidates[0]
            pending.latency_ms += outcome.latency_ms
            if stats is not None:
                stats.record(name, outcome)
            error = outcome.error
            router.record_outcome(name, error)
            if error is None:
                counter.advance(len(pending.candidates), f"{plan.entry.symbol}: served by {name}", resolved=True)
                yield _served(pending, name, outcome, payload)
                continue
            code = error.code
            message = redact(str(error))
            pending.tried.append({"provider": name, "outcome": FAILED, "error_code": code,
                                  "error": message, "attempts": outcome.attempts})
            event("provider_failed", level="WARNING", symbol=plan.entry.symbol, provider=name, error_code=code,
                  error=message)
            left = pending.candidates[1:]
            pending.candidates = [p for p in left if router.still_usable(p, plan.request)]
            if pending.candidates:
                counter.advance(1 + len(left) - len(pending.candidates),
                                f"{plan.entry.symbol}: {name} {code}, trying {pending.candidates[0]}")
                pool.submit(pending.candidates[0], [pending])
            else:
                counter.advance(1 + len(left), f"{plan.entry.symbol}: {name} {code}, no provider left",
                                resolved=True)
                res = SymbolResult(plan.entry.symbol, FAILED, error_code=code, error_message=message,
                                   tried=pending.tried)
                yield SymbolFetch(plan, res, _unserved_audit(plan, res, tried=pending.tried,
                                                             latency=pending.latency_ms), outcome=outcome)
    except BaseException:   # interrupted, failed, or closed by the caller (GeneratorExit)
        pool.abort()
        raise
    pool.close()


class _AttemptCounter:
    """The progress of ``fetch_symbols``: provider attempts done of a total
    known up front, with the symbols resolved in the label."""

    def __init__(self, progress: ProgressCallback | None, symbols: int):
        self.progress, self.symbols = progress, symbols
        self.total = self.done = self.resolved = 0

    def start(self) -> None:
        if self.progress is not None:
            self.progress(f"0/{self.symbols} symbols", 0, self.total)

    def advance(self, attempts: int, label: str, *, resolved: bool = False) -> None:
        self.done += attempts
        self.resolved += int(resolved)
        if self.progress is not None:
            self.progress(f"{self.resolved}/{self.symbols} symbols  {label}", self.done, self.total)
