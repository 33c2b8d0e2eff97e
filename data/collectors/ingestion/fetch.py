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
from typing import Any, Iterable, Sequence

import numpy as np

from core.logs import AuditTrail
from core.process import StopRequest
from core.redaction import redact
from core.settings import Settings
from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter, NoValidProviderError
from data.collectors.ingestion.payload import Payload, PayloadPrep, PayloadScorer
from data.collectors.ingestion.plan import FAILED, SKIPPED_DEAD_LETTER, SUCCESS, UP_TO_DATE, SymbolPlan
from data.collectors.ingestion.pool import FetchPool, Pending
from data.providers.base import FetchOutcome
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
            entry["failures"][outcome.error.code] += 1

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
                  stats: ProviderStats | None = None, stop: StopRequest | None = None) -> Iterable[SymbolFetch]:
    """Fetch every plan through the router, falling back provider by
    provider, and yield each symbol once as it resolves.  Nothing is written
    to the store here; raw payloads are archived under ``raw_dir`` (None: not
    archived, as in a dry run, and left on the outcome's result).  ``trail``
    None: no audit-trail events.  Feeds the router's run state
    (``DataRouter.record_outcome``) and ``stats``.  ``stop``: raise
    ``RunInterrupted`` promptly when it is requested; leaving early (that,
    any exception, or the caller closing the generator) abandons the fetches
    in flight instead of waiting for them."""
    def event(name: str, **fields: Any) -> None:
        if trail is not None:
            trail.append(name, **fields)

    prep = PayloadPrep(raw_dir, settings.ingest.raw_archive_compresslevel, scorer)
    pool = FetchPool(router, prep, settings.providers.fetch_workers,
                     settings.providers.process_workers or None, stop=stop)
    try:
        by_provider: dict[str, list[Pending]] = collections.defaultdict(list)
        for plan in plans:
            symbol = plan.entry.symbol
            if plan.request is None:
                res = SymbolResult(symbol, plan.outcome or UP_TO_DATE, error_message=plan.note)
                yield SymbolFetch(plan, res, _unserved_audit(plan, res, count_failure=False))
                continue
            cands = router.candidates(plan.request)
            if not cands.providers:
                res = SymbolResult(symbol, NO_VALID_PROVIDER, error_code=NO_VALID_PROVIDER,
                                   error_message=cands.decision)
                event("no_valid_provider", level="ERROR", symbol=symbol, skipped=cands.skipped)
                error = NoValidProviderError(cands.decision or "no provider in the priority list", symbol=symbol)
                yield SymbolFetch(plan, res, _unserved_audit(plan, res), skipped=cands.skipped,
                                  outcome=FetchOutcome(plan.request, error=error, attempts=0))
                continue
            by_provider[cands.providers[0]].append(Pending(plan, cands.providers, cands.skipped))
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
                yield _served(pending, name, outcome, payload)
                continue
            code = error.code
            message = redact(str(error))
            pending.tried.append({"provider": name, "outcome": FAILED, "error_code": code,
                                  "error": message, "attempts": outcome.attempts})
            event("provider_failed", level="WARNING", symbol=plan.entry.symbol, provider=name, error_code=code,
                  error=message)
            pending.candidates = [p for p in pending.candidates[1:] if router.still_usable(p, plan.request)]
            if pending.candidates:
                pool.submit(pending.candidates[0], [pending])
            else:
                res = SymbolResult(plan.entry.symbol, FAILED, error_code=code, error_message=message,
                                   tried=pending.tried)
                yield SymbolFetch(plan, res, _unserved_audit(plan, res, tried=pending.tried,
                                                             latency=pending.latency_ms), outcome=outcome)
    except BaseException:   # interrupted, failed, or closed by the caller (GeneratorExit)
        pool.abort()
        raise
    pool.close()
