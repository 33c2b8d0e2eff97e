"""The base class of the network vendors: the fetch loop around one vendor call.

A vendor module (``yahoo``, ``polygon``, ``alpaca``) subclasses
:class:`HttpVendorProvider` and implements ``_fetch_unit``: one vendor call
for a *unit* of requests (one symbol for Yahoo and Polygon, many symbols for
Alpaca) that returns a result or a typed error per symbol, or raises a typed
error for the whole unit.  Around that call: refusals before anything is
sent (``data.providers.policy``), one unit alone until the vendor first
answers (a bad key costs one request), pacing, retries, the run state and
the health numbers.  A 429 storm ends within the provider's rate-limit
budget for the run (``rate_limit_budget_seconds`` / ``rate_limit_budget_429s``):
once spent, every later request fails RATE_LIMITED ("rate-limit budget
exhausted", nothing sent) and the router falls back at once.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from tenacity import Retrying

from core.library_logs import release_stdout_handlers
from core.settings import Settings, load_settings
from core.symbols import classify_symbol
from data.providers.base import (CapabilityError, EntitlementError, FetchOutcome, FetchRequest, FetchResult,
                                 NoDataError, ProviderCrash, ProviderError, ProviderUnavailable, RateLimitError,
                                 chunks)
from data.providers.http_vendor.answers import CapturedResponse
from data.providers.http_vendor.pacing import RequestPacer
from data.providers.http_vendor.quirks import resolve_quirks
from data.providers.http_vendor.retry import unit_retrying
from data.providers.http_vendor.secret_set import SecretSet
from data.providers.policy import (REQUIRED_KEYS, ProviderHealth, ProviderRunState, RateLimitBudget,
                                   capability_refusal, counts_toward_breaker, entitlement_problem)

logger = logging.getLogger(__name__)

_REFUSED = (400, 401, 402, 403)


class HttpVendorProvider:
    """Base of the network vendors: fetch loop, retries, pacing, breaker."""

    name = "vendor"
    VENDOR_QUIRKS: dict[str, Any] = {}
    # The loggers of the vendor's client library: their console handlers are
    # taken off stdout when the provider is built (core.library_logs).
    LIBRARY_LOGGERS: tuple[str, ...] = ()

    def __init__(self, *, settings: Settings | None = None, env: Mapping[str, str] | None = None,
                 **options: Any):
        env = dict(os.environ if env is None else env)
        # A client library may log to stdout on its own (polygon's RESTClient
        # does): its records go to the root logger, i.e. stderr, instead.
        release_stdout_handlers(self.LIBRARY_LOGGERS)
        settings = settings or load_settings()
        self.quirks = resolve_quirks(self.name, self.VENDOR_QUIRKS, options, settings=settings, env=env)
        self.capabilities = dict(settings.providers.capabilities.get(self.name, {}))
        self.batch_size = max(1, int(self.quirks["batch_size"]))
        self.deadline = float(self.quirks["deadline_seconds"])
        self.health = ProviderHealth(self.name)
        self.secrets = SecretSet(env.get(k) for k in REQUIRED_KEYS.get(self.name, ()))
        self.entitlement_problem = entitlement_problem(self.name, settings.providers.capabilities, env)
        if self.entitlement_problem:
            self.health.entitled = False
        # The run state the router keeps per provider name, kept here for
        # this instance: its own workers stop asking as soon as it changes.
        self.state = ProviderRunState(int(self.quirks["circuit_breaker_failures"]))
        self.rate_budget = RateLimitBudget(float(self.quirks["rate_limit_budget_seconds"]),
                                           int(self.quirks["rate_limit_budget_429s"]))
        self._env = env
        self._pacer = RequestPacer(self.name, self.quirks["rate_limits"], int(self.quirks["workers"]))
        self._state_lock = threading.Lock()
        # Set at the vendor's first data answer that is not 400/401/403 (or
        # when the first unit ends): until then one unit at a time goes out.
        self._first_answer = threading.Event()
        self._probe_lock = threading.Lock()
        self._capture = threading.local()
        self._tls = threading.local()     # requests sent by the current unit

    # ------------------------------------------------------------ hooks
    def _fetch_unit(self, unit: Sequence[FetchRequest]) -> dict[str, FetchResult | ProviderError]:
        """One vendor call for ``unit``; per-symbol results or errors, or
        raise a ProviderError for the whole unit."""
        raise NotImplementedError

    def _units(self, requests: Sequence[FetchRequest]) -> list[list[FetchRequest]]:
        return [list(c) for c in chunks(list(requests), self.batch_size)]

    def base_url_text(self) -> str:
        return str(self.quirks.get("base_url"))

    def host_text(self) -> str:
        """``host:port`` of the base URL, as a failed connection names it."""
        parts = urlsplit(self.base_url_text())
        if not parts.hostname:
            return self.base_url_text()
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    # ------------------------------------------------------------ state
    def _blocked(self, request: FetchRequest) -> ProviderError | None:
        if self.entitlement_problem:
            return EntitlementError(f"not entitled: {self.entitlement_problem}; nothing sent",
                                    provider=self.name, symbol=request.symbol)
        if self.state.not_entitled:
            return EntitlementError(f"not entitled for this run after {self.state.not_entitled}; nothing sent",
                                    provider=self.name, symbol=request.symbol)
        if self.state.rate_limit_exhausted:
            return _budget_error(f"rate-limit budget exhausted this run ({self.state.rate_limit_exhausted}); "
                                 f"nothing sent", self.state.rate_limit_exhausted, self.name, request.symbol)
        if self.state.circuit_open:
            err = ProviderUnavailable(f"circuit open after {self.quirks['circuit_breaker_failures']} consecutive "
                                      f"failures; nothing sent", provider=self.name, symbol=request.symbol)
            err.retryable = False
            return err
        return None

    def _refusal(self, request: FetchRequest) -> ProviderError | None:
        blocked = self._blocked(request)
        if blocked:
            return blocked
        why = capability_refusal(self.capabilities, request) if self.capabilities else None
        if why:
            return CapabilityError(f"{why}; nothing sent", provider=self.name, symbol=request.symbol)
        return None

    def _mark_not_entitled(self, why: str) -> None:
        with self._state_lock:
            self.state.mark_not_entitled(why)
            self.health.entitled = False

    def _note_unit(self, error: ProviderError | None, answered: bool) -> None:
        with self._state_lock:
            if answered and self.health.entitled is None:
                self.health.entitled = True
            self.state.record(error)
            self.health.circuit_open = self.state.circuit_open

    # ------------------------------------------------------------ fetch
    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        """One outcome per request, in completion order; never raises for a
        symbol's failure (see the module docstring for what happens)."""
        seen: set[str] = set()
        ready = []
        for request in requests:
            refusal = self._refusal(request)
            if refusal is None and request.symbol in seen:
                refusal = CapabilityError("symbol asked twice in one batch", provider=self.name,
                                          symbol=request.symbol)
            if refusal is not None:
                yield self._finish(request, error=refusal, attempts=0, latency_ms=0.0)
                continue
            seen.add(request.symbol)
            ready.append(request)
        units = self._units(ready)
        if not units:
            return
        workers = max(1, min(int(self.quirks["workers"]), len(units)))
        if workers == 1:
            for unit in units:
                yield from self._run_unit(unit)
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.name}-fetch")
        try:
            futures = [pool.submit(self._run_unit, unit) for unit in units]
            for fut in as_completed(futures):
                yield from fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_unit(self, unit: list[FetchRequest]) -> list[FetchOutcome]:
        if not self._first_answer.is_set():
            # Until the vendor has answered once, one unit probes alone: a bad
            # key then costs exactly one request, not one per worker.  The
            # others start at its first good answer, not at its end.
            if self._probe_lock.acquire(blocking=False):
                try:
                    return self._run_unit_now(unit)
                finally:
                    self._first_answer.set()
                    self._probe_lock.release()
            self._first_answer.wait()
        return self._run_unit_now(unit)

    def _run_unit_now(self, unit: list[FetchRequest]) -> list[FetchOutcome]:
        t0 = time.perf_counter()
        if self._blocked(unit[0]) is not None:
            return [self._finish(r, error=self._blocked(r), attempts=0, latency_ms=0.0) for r in unit]
        attempts = 0
        self._tls.sent = 0
        self._tls.memo = {}

        def attempt() -> dict[str, FetchResult | ProviderError]:
            nonlocal attempts
            blocked_now = self._blocked(unit[0])
            if blocked_now is not None:
                raise blocked_now
            attempts += 1
            return self._fetch_unit(unit)

        unit_error: ProviderError | None = None
        results: dict[str, FetchResult | ProviderError] = {}
        try:
            results = self._retrying()(attempt)
        except ProviderError as exc:
            unit_error = exc
        except Exception as exc:  # a bug here or in a client: this unit fails, the batch goes on
            self.secrets.scrub(exc)
            logger.exception("%s: unexpected failure on %d symbol(s)", self.name, len(unit))
            unit_error = ProviderCrash.wrapping(exc, provider=self.name, prefix="unexpected ")
        sent = self._tls.sent
        if isinstance(unit_error, RateLimitError) and self.rate_budget.exhausted \
                and not getattr(unit_error, "budget_exhausted", None):
            unit_error = self._budget_spent(unit_error)
        if isinstance(unit_error, EntitlementError):
            if sent:   # refused by the vendor; nothing sent: our own refusal, already in the state
                self._mark_not_entitled(self.secrets.redact(str(unit_error)))
        else:
            per_symbol = [v for v in results.values() if isinstance(v, ProviderError)]
            all_failed = bool(results) and len(per_symbol) == len(results) and \
                all(counts_toward_breaker(v) for v in per_symbol)
            self._note_unit(unit_error or (per_symbol[0] if all_failed else None), answered=sent > 0)
        latency_ms = (time.perf_counter() - t0) * 1000
        outcomes = []
        for request in unit:
            value = unit_error if unit_error is not None else results.get(request.symbol)
            if value is None:
                value = NoDataError("the vendor's answer holds nothing for this symbol",
                                    provider=self.name, symbol=request.symbol)
            if isinstance(value, ProviderError):
                outcomes.append(self._finish(request, error=value, attempts=attempts, latency_ms=latency_ms))
            else:
                outcomes.append(self._finish(request, result=value, attempts=attempts, latency_ms=latency_ms))
        return outcomes

    def _finish(self, request: FetchRequest, *, result: FetchResult | None = None,
                error: ProviderError | None = None, attempts: int, latency_ms: float) -> FetchOutcome:
        if error is not None:
            # A unit-level error is shared by the unit's symbols: give each its own copy.
            if error.symbol not in (None, request.symbol):
                error = _copy_error(error, request.symbol)
            error.provider = error.provider or self.name
            error.symbol = error.symbol or request.symbol
            self.secrets.scrub(error)
        if result is not None and result.raw_payload is not None:
            result.raw_payload = self.secrets.redact_bytes(result.raw_payload)
        outcome = FetchOutcome(request, result=result, error=error, latency_ms=latency_ms, attempts=attempts)
        self.health.record_outcome(outcome)
        return outcome

    def _retrying(self) -> Retrying:
        return unit_retrying(self.quirks, pause=self._pacer.pause, record_retry=self.health.record_retry,
                             budget=self.rate_budget)

    def _budget_spent(self, last: RateLimitError) -> RateLimitError:
        """The rate-limit budget is spent: the provider is unavailable for
        the rest of the run; ``last`` (the 429 that ended it) as its error."""
        why = str(self.rate_budget.exhausted)
        with self._state_lock:
            self.state.mark_rate_limit_exhausted(why)
            self.health.rate_limit_exhausted = self.health.rate_limit_exhausted or why
        logger.warning("%s: rate-limit budget exhausted (%s); unavailable for the rest of the run", self.name, why)
        err = _budget_error(f"rate-limit budget exhausted ({why}); last answer: {last}", why, self.name, last.symbol)
        err.__cause__ = last
        return err

    # ------------------------------------------------------------ transport helpers
    @contextlib.contextmanager
    def paced_request(self, *, data: bool = True) -> Iterator[dict[str, Any]]:
        """Wrap one HTTP request: wait for the limiter, then time it.  The
        body sets ``slot["status"]`` (an int, or "timeout"/"connection").
        ``data=False`` for handshakes, which say nothing about entitlement."""
        self._pacer.acquire()
        self._tls.sent = getattr(self._tls, "sent", 0) + 1
        slot: dict[str, Any] = {"status": "error"}
        t0 = time.perf_counter()
        try:
            yield slot
        finally:
            status = slot["status"]
            self._pacer.release(status)
            if status == 429:
                self.rate_budget.record_429()
            self.health.record_request((time.perf_counter() - t0) * 1000, status)
            if data and isinstance(status, int) and status not in _REFUSED:
                self._first_answer.set()

    @property
    def unit_memo(self) -> dict[Any, Any]:
        """Answers kept across the retries of the current unit, so that a
        unit of several requests does not resend the ones that succeeded
        (under a 429 storm it would never complete otherwise)."""
        memo = getattr(self._tls, "memo", None)
        if memo is None:
            memo = self._tls.memo = {}
        return memo

    def start_capture(self) -> list[CapturedResponse]:
        self._capture.items = []
        return self._capture.items

    def captured(self, response: CapturedResponse) -> None:
        items = getattr(self._capture, "items", None)
        if items is not None:
            items.append(response)

    # ------------------------------------------------------------ runbook check
    def test(self) -> str:
        """One line: reachable? entitled?  Fetches a few recent bars of
        ``test_symbol`` (quirk) through the normal path."""
        base = self.base_url_text()
        if self.entitlement_problem:
            return f"{self.name}: NOT entitled ({self.entitlement_problem}); nothing sent"
        symbol = str(self.quirks["test_symbol"])
        end = dt.date.today() - dt.timedelta(days=1)
        start = end - dt.timedelta(days=int(self.quirks["test_days"]))
        request = FetchRequest(symbol, classify_symbol(symbol), start, end)
        outcome = next(iter(self.fetch([request])))
        ms = f"{outcome.latency_ms:.0f} ms"
        err = outcome.error
        if err is None:
            rows = len(outcome.result.frame)
            line = f"{self.name}: reachable, entitled ({symbol} {rows} bars {start}..{end}, {ms}) via {base}"
        elif isinstance(err, EntitlementError):
            line = f"{self.name}: reachable, NOT entitled ({err}) via {base}"
        elif isinstance(err, RateLimitError):
            line = f"{self.name}: reachable, entitled, rate limited ({err}) via {base}"
        elif isinstance(err, NoDataError):
            line = f"{self.name}: reachable, entitled (no bars for {symbol} {start}..{end}) via {base}"
        elif isinstance(err, ProviderUnavailable):
            line = f"{self.name}: UNREACHABLE ({err}) via {base}"
        else:
            line = f"{self.name}: reachable, answer not understood ({err.code}: {err}) via {base}"
        return self.secrets.redact(line)

    def close(self) -> None:
        self._pacer.close()


def _budget_error(message: str, why: str, provider: str, symbol: str | None) -> RateLimitError:
    """RATE_LIMITED, not retried, and marked so that the router's run state
    (``ProviderRunState.record``) takes the provider out for the run."""
    err = RateLimitError(message, provider=provider, symbol=symbol)
    err.retryable = False
    err.budget_exhausted = why
    return err


def _copy_error(error: ProviderError, symbol: str) -> ProviderError:
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    clone.args = error.args
    clone.symbol = symbol
    clone.__cause__ = error.__cause__
    return clone
