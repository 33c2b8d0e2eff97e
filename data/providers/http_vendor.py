"""What the three network vendors share: quirks, pacing, retries, circuit
breaker, health numbers, secrets and timestamps.

A vendor module (``yahoo``, ``polygon``, ``alpaca``) subclasses
:class:`HttpVendorProvider` and implements ``_fetch_unit``: one vendor call
for a *unit* of requests (one symbol for Yahoo and Polygon, many symbols for
Alpaca) that returns a result or a typed error per symbol, or raises a typed
error for the whole unit.  Everything around that call lives here:

* **quirks** - a per-vendor dict (rate limits, batch size, workers, deadline,
  retry budgets, base URL) merged ``BASE_QUIRKS`` <- the module's wire facts
  <- settings ``[providers.<name>]`` <- ``<NAME>_BASE_URL`` env <- keyword
  arguments of the constructor;
* **pacing** - one pyrate-limiter ``Limiter`` per provider instance, every
  window of the vendor's published limits enforced (sliding window), plus a
  provider-wide pause after a 429 so the other workers do not keep knocking;
* **retries** - tenacity: 429 retried up to ``rate_limit_retries`` honouring
  Retry-After, 5xx/timeouts up to ``unavailable_retries`` with exponential
  backoff, nothing else retried (400/401/403 never);
* **entitlement** - keys read from env at construction; a 400/401/403 marks
  the provider not entitled for the rest of the run and every later request
  fails without being sent.  Until the first answer arrives, units go out one
  at a time, so a bad key costs exactly one request;
* **circuit breaker** - after ``circuit_breaker_failures`` consecutive failed
  units (429s do not count) the remaining requests fail fast;
* **health** - requests sent, failures by code, latency p50/p95, retries,
  429 waits, circuit state (``provider.health.summary()``, one
  ``provider_health`` row per run).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate
from tenacity import Retrying, retry_if_exception

from data.providers.base import (PRICE_COLUMNS, CapabilityError, EntitlementError, FetchOutcome,
                                 FetchRequest, FetchResult, MalformedDataError, NoDataError, ProviderError,
                                 ProviderUnavailable, RateLimitError, SchemaError, chunks, normalise_bars)
from core.symbols import classify_symbol
from core.redaction import MASK, register_secret
from core.settings import Settings, load_settings

# Generic defaults; core/settings.py DEFAULTS carries each vendor's published
# numbers, the vendor modules carry their wire facts (default base URL).
BASE_QUIRKS: dict[str, Any] = {
    "base_url": None,
    "batch_size": 1,
    "workers": 1,
    "rate_limits": [],                 # [[requests, seconds], ...]
    "deadline_seconds": 30.0,          # per HTTP request, connect + response
    "rate_limit_retries": 8,           # 429s absorbed per unit before giving up
    "unavailable_retries": 2,          # 5xx / timeout / connection retries per unit
    "backoff_initial_seconds": 1.0,
    "backoff_max_seconds": 60.0,
    "max_retry_after_seconds": 300.0,  # a longer Retry-After gives up (fall back) at once
    "circuit_breaker_failures": 5,
    "test_symbol": "SPY",
    "test_days": 10,
}

# Env variables that point a vendor elsewhere (the loopback fake in tests).
BASE_URL_ENV: dict[str, str] = {
    "yahoo": "YAHOO_BASE_URL",
    "polygon": "POLYGON_BASE_URL",
    "alpaca": "ALPACA_DATA_URL",
}

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNIT_FAILURES = (ProviderUnavailable, SchemaError, MalformedDataError)
_REFUSED = (400, 401, 402, 403)


class QuirksError(ValueError):
    """A vendor option that does not exist or has the wrong shape."""


def resolve_quirks(name: str, vendor_quirks: Mapping[str, Any], overrides: Mapping[str, Any], *,
                   settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """Merge the layers of a vendor's quirks (see the module docstring).
    Unknown keys raise :class:`QuirksError`: a typo must not be ignored."""
    quirks = dict(BASE_QUIRKS)
    quirks["circuit_breaker_failures"] = int(settings.get("providers.circuit_breaker_failures",
                                                          BASE_QUIRKS["circuit_breaker_failures"]))
    quirks.update(vendor_quirks)
    layers = [("settings [providers.%s]" % name, settings.get(f"providers.{name}") or {}),
              ("constructor", {k: v for k, v in overrides.items() if v is not None})]
    env_url = env.get(BASE_URL_ENV.get(name, ""), "").strip()
    for where, layer in layers:
        unknown = sorted(set(layer) - set(quirks))
        if unknown:
            raise QuirksError(f"{name}: unknown option(s) {', '.join(unknown)} in {where}; "
                              f"known: {', '.join(sorted(quirks))}")
        quirks.update(layer)
        if where.startswith("settings") and env_url:
            quirks["base_url"] = env_url   # env beats the file, the constructor beats env
    for limit in quirks["rate_limits"]:
        if len(limit) != 2 or float(limit[0]) < 1 or float(limit[1]) <= 0:
            raise QuirksError(f"{name}: rate_limits entries are [requests, seconds], got {limit!r}")
    return quirks


# ---------------------------------------------------------------- secrets
class SecretSet:
    """The key values one provider holds; ``redact`` masks them in any text,
    bytes or exception chain.  Each value is also registered with
    ``core.redaction`` so the audit trail, logs and alerts mask it even when
    the key reached the provider through an explicit ``env`` mapping."""

    MASK = MASK

    def __init__(self, values: Iterable[str | None] = ()):
        self._values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)
        for value in self._values:
            register_secret(value)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, self.MASK)
        return text

    def redact_bytes(self, payload: bytes) -> bytes:
        for value in self._values:
            raw = value.encode()
            if raw in payload:
                payload = payload.replace(raw, self.MASK.encode())
        return payload

    def scrub(self, exc: BaseException | None) -> None:
        """Redact the args of ``exc`` and of its cause/context chain in place,
        so a traceback printed anywhere later carries no key."""
        seen = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            try:
                exc.args = tuple(self.redact(a) if isinstance(a, str) else
                                 (self.redact(a.decode("utf-8", "replace")) if isinstance(a, bytes) else a)
                                 for a in exc.args)
                # Vendor exceptions keep the body too (alpaca's APIError._error).
                for name, value in list(vars(exc).items()):
                    if isinstance(value, str):
                        setattr(exc, name, self.redact(value))
                    elif isinstance(value, bytes):
                        setattr(exc, name, self.redact_bytes(value))
            except (AttributeError, TypeError):  # exotic exceptions with read-only args
                pass
            exc = exc.__cause__ or exc.__context__


# ----------------------------------------------------------------- health
@dataclass
class ProviderHealth:
    """Per-run numbers of one provider, for the ``provider_health`` table."""

    provider: str
    requests: int = 0                    # HTTP requests sent
    successes: int = 0                   # symbols served
    failures: Counter = field(default_factory=Counter)          # error code -> symbols
    http_statuses: Counter = field(default_factory=Counter)     # status or "timeout"/"connection"
    latencies_ms: list[float] = field(default_factory=list)     # per HTTP request
    retries: int = 0
    rate_limit_waits: list[float] = field(default_factory=list) # seconds waited after 429s
    circuit_open: bool = False
    entitled: bool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_request(self, latency_ms: float, status: int | str) -> None:
        with self._lock:
            self.requests += 1
            self.latencies_ms.append(latency_ms)
            self.http_statuses[str(status)] += 1

    def record_outcome(self, outcome: FetchOutcome) -> None:
        with self._lock:
            if outcome.error is None:
                self.successes += 1
            else:
                self.failures[outcome.error.code] += 1

    def record_retry(self, waited: float, rate_limited: bool) -> None:
        with self._lock:
            self.retries += 1
            if rate_limited:
                self.rate_limit_waits.append(waited)

    def summary(self) -> dict[str, Any]:
        """Plain dict: the columns of ``provider_health`` plus detail."""
        with self._lock:
            lat = np.asarray(self.latencies_ms, dtype="float64")
            return {
                "provider": self.provider,
                "requests": self.requests,
                "successes": self.successes,
                "failures": dict(self.failures),
                "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
                "p95_ms": round(float(np.percentile(lat, 95)), 3) if lat.size else None,
                "circuit_open": self.circuit_open,
                "entitled": self.entitled,
                "retries": self.retries,
                "rate_limited": int(self.http_statuses.get("429", 0)),
                "rate_limit_wait_s": round(sum(self.rate_limit_waits), 3),
                "http_statuses": dict(self.http_statuses),
            }


# ----------------------------------------------------------------- pacing
class RequestPacer:
    """One rate limiter per provider, a cap on requests in flight, and a
    provider-wide pause after a 429.

    The cap is ``workers`` and adapts like TCP's window: a 429 halves it, each
    answered request raises it by one back to ``workers``.  Without that, the
    workers that waited out a pause together hit the vendor together again,
    and one unlucky symbol can lose every race until its retries run out."""

    # Requests reach the vendor a few ms after we admit them, and not always
    # in the order admitted: each window is widened by 2 % + 20 ms so that
    # the vendor's own count never sees n + 1 requests in its window.
    MARGIN_FRACTION = 0.02
    MARGIN_SECONDS = 0.02
    POLL_SECONDS = 0.005

    def __init__(self, name: str, rate_limits: Sequence[Sequence[float]], max_in_flight: int = 1):
        rates = sorted((Rate(int(n), max(1, int(round((float(s) * (1 + self.MARGIN_FRACTION) + self.MARGIN_SECONDS)
                                                      * Duration.SECOND)))) for n, s in rate_limits),
                       key=lambda r: r.interval)
        # A sliding window never lets more than ``n`` requests into any
        # ``s`` seconds, which is what a vendor counting per window checks.
        self._limiter = Limiter(InMemoryBucket(rates), buffer_ms=1) if rates else None
        self._name = name
        self._paused_until = 0.0
        self._max = max(1, int(max_in_flight))
        self._allowed = self._max
        self._in_flight = 0
        self._cond = threading.Condition()

    def pause(self, seconds: float) -> None:
        with self._cond:
            self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def acquire(self) -> None:
        """Wait for a slot in flight, the end of any pause, and the limiter."""
        with self._cond:
            while self._in_flight >= self._allowed:
                self._cond.wait()
            self._in_flight += 1
        while True:
            with self._cond:
                delay = self._paused_until - time.monotonic()
            if delay <= 0:
                break
            time.sleep(delay)
        if self._limiter is not None:
            # Polled rather than blocking: a blocking acquire records the
            # *planned* wake-up time, and a thread that oversleeps (GIL, load)
            # is then counted earlier than it really went out.
            while not self._limiter.try_acquire(self._name, blocking=False):
                time.sleep(self.POLL_SECONDS)

    def release(self, status: int | str) -> None:
        with self._cond:
            self._in_flight -= 1
            if status == 429:
                self._allowed = max(1, self._allowed // 2)
            elif isinstance(status, int) and self._allowed < self._max:
                self._allowed += 1
            self._cond.notify_all()

    def close(self) -> None:
        if self._limiter is not None:
            with contextlib.suppress(Exception):
                self._limiter.close()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds (decimals accepted) or
    an HTTP date.  ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def http_status_error(status: int, *, provider: str, symbol: str | None, detail: str,
                      retry_after: float | None = None) -> ProviderError:
    """The typed error for an HTTP status (what the router should do next)."""
    text = f"HTTP {status}: {detail}"[:500]
    if status in (400, 401, 402, 403):
        return EntitlementError(text, provider=provider, symbol=symbol)
    if status == 429:
        return RateLimitError(text, retry_after=retry_after, provider=provider, symbol=symbol)
    if status in (404, 410):
        return NoDataError(text, provider=provider, symbol=symbol)
    err = ProviderUnavailable(text, provider=provider, symbol=symbol)
    if 400 <= status < 500 and status not in (408, 425):
        err.retryable = False   # the request itself was refused: asking again changes nothing
    return err


def payload_error(body: bytes, *, provider: str, symbol: str | None, url: str,
                  exc: Exception | None = None) -> ProviderError:
    """A 200 whose body is not JSON: an HTML page (captcha, consent, outage
    notice) means the service is not serving data; anything else is a broken
    payload, named by URL and position."""
    head = body.lstrip()[:200].lower()
    if head.startswith(b"<") or b"<html" in head:
        return ProviderUnavailable(f"{url}: answered HTTP 200 with an HTML page, not data",
                                   provider=provider, symbol=symbol)
    where = ""
    if isinstance(exc, json.JSONDecodeError):
        where = f" at line {exc.lineno} column {exc.colno} (char {exc.pos} of {len(body)})"
    return MalformedDataError(f"{url}: unparseable JSON{where}", provider=provider, symbol=symbol)


def decode_json(body: bytes, *, provider: str, symbol: str | None, url: str) -> Any:
    """Parse a vendor body; non-JSON becomes a typed error (never ``[]``)."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise payload_error(body, provider=provider, symbol=symbol, url=url, exc=exc) from exc


# ------------------------------------------------------------- timestamps
def nearest_midnight_dates(utc: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Session dates of daily bars stamped at (about) local midnight.

    Polygon and Alpaca stamp a daily bar at the start of its day in the
    exchange's zone (New York midnight = 05:00Z in winter).  Rounding to the
    nearest local midnight instead of truncating keeps the date right when a
    vendor shifts its stamps by up to 11 hours (UTC midnight instead of New
    York midnight, a DST slip)."""
    local = utc.tz_convert(tz).tz_localize(None)
    return (local + pd.Timedelta(hours=12)).floor("D").to_numpy(dtype="datetime64[ns]")


def reference_tz(asset_class: str) -> str:
    """The zone whose midnight starts a daily bar for the class."""
    return "America/New_York" if asset_class in ("stocks", "commodities") else "UTC"


def frame_notes(frame: pd.DataFrame) -> list[str]:
    """Traces of suspicious content the provider passes on for quality to
    score (NaN or non-positive prices, duplicate or unsorted dates)."""
    notes = []
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    nan_rows = int(np.isnan(prices).any(axis=1).sum())
    if nan_rows:
        notes.append(f"{nan_rows} row(s) with a missing price")
    bad_rows = int((prices <= 0).any(axis=1).sum())
    if bad_rows:
        notes.append(f"{bad_rows} row(s) with a zero or negative price")
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    dups = int(pd.Index(dates).duplicated().sum())
    if dups:
        notes.append(f"{dups} duplicate date(s) kept for ingestion to count")
    if len(dates) > 1 and (np.diff(dates.astype("int64")) < 0).any():
        notes.append("dates not in ascending order")
    return notes


def env_entitlement_problem(name: str, required_keys: Sequence[str], requires_entitlement: bool,
                            env: Mapping[str, str]) -> str | None:
    """Why the environment does not entitle ``name`` (None when it does).
    Mirrors ``data_router.provider_entitled`` without importing upwards."""
    flag = env.get(f"{name.upper()}_ENABLED", "").strip().lower()
    if flag in _FALSE:
        return f"{name.upper()}_ENABLED={flag}"
    if requires_entitlement and flag not in _TRUE:
        return f"{name.upper()}_ENABLED not set to true"
    missing = [k for k in required_keys if not env.get(k)]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


@dataclass
class CapturedResponse:
    """One HTTP exchange seen by a vendor transport (for validation/archive)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


# --------------------------------------------------------------- provider
class HttpVendorProvider:
    """Base of the network vendors: fetch loop, retries, pacing, breaker."""

    name = "vendor"
    VENDOR_QUIRKS: dict[str, Any] = {}
    REQUIRED_KEYS: tuple[str, ...] = ()
    REQUIRES_ENTITLEMENT = False

    def __init__(self, *, settings: Settings | None = None, env: Mapping[str, str] | None = None,
                 **options: Any):
        env = dict(os.environ if env is None else env)
        settings = settings or load_settings()
        self.quirks = resolve_quirks(self.name, self.VENDOR_QUIRKS, options, settings=settings, env=env)
        self.capabilities = dict(settings.capabilities.get(self.name, {}))
        self.batch_size = max(1, int(self.quirks["batch_size"]))
        self.deadline = float(self.quirks["deadline_seconds"])
        self.health = ProviderHealth(self.name)
        self.secrets = SecretSet(env.get(k) for k in self.REQUIRED_KEYS)
        self.entitlement_problem = env_entitlement_problem(self.name, self.REQUIRED_KEYS,
                                                           self.REQUIRES_ENTITLEMENT, env)
        if self.entitlement_problem:
            self.health.entitled = False
        self._env = env
        self._pacer = RequestPacer(self.name, self.quirks["rate_limits"], int(self.quirks["workers"]))
        self._state_lock = threading.Lock()
        # Set at the vendor's first data answer that is not 400/401/403 (or
        # when the first unit ends): until then one unit at a time goes out.
        self._first_answer = threading.Event()
        self._probe_lock = threading.Lock()
        self._not_entitled: str | None = None
        self._consecutive_failures = 0
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

    # ------------------------------------------------------------ state
    def _blocked(self, request: FetchRequest) -> ProviderError | None:
        if self.entitlement_problem:
            return EntitlementError(f"not entitled: {self.entitlement_problem}; nothing sent",
                                    provider=self.name, symbol=request.symbol)
        if self._not_entitled:
            return EntitlementError(f"not entitled for this run after {self._not_entitled}; nothing sent",
                                    provider=self.name, symbol=request.symbol)
        if self.health.circuit_open:
            err = ProviderUnavailable(f"circuit open after {self.quirks['circuit_breaker_failures']} consecutive "
                                      f"failures; nothing sent", provider=self.name, symbol=request.symbol)
            err.retryable = False
            return err
        return None

    def _refusal(self, request: FetchRequest) -> ProviderError | None:
        blocked = self._blocked(request)
        if blocked:
            return blocked
        caps = self.capabilities
        if caps and not caps.get(request.asset_class, False):
            return CapabilityError(f"does not serve {request.asset_class}; nothing sent",
                                   provider=self.name, symbol=request.symbol)
        limit = caps.get("max_history_days")
        if limit is not None and request.span_days > int(limit):
            return CapabilityError(f"window of {request.span_days} days exceeds max_history_days {limit}; "
                                   f"nothing sent", provider=self.name, symbol=request.symbol)
        return None

    def _mark_not_entitled(self, why: str) -> None:
        with self._state_lock:
            if not self._not_entitled:
                self._not_entitled = why
            self.health.entitled = False

    def _note_unit(self, error: ProviderError | None, answered: bool) -> None:
        with self._state_lock:
            if answered and self.health.entitled is None:
                self.health.entitled = True
            if error is None:
                self._consecutive_failures = 0
            elif isinstance(error, _UNIT_FAILURES) and "circuit open" not in str(error):
                self._consecutive_failures += 1
                if self._consecutive_failures >= int(self.quirks["circuit_breaker_failures"]):
                    self.health.circuit_open = True

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
            unit_error = ProviderError(f"unexpected {type(exc).__name__}: {exc}", provider=self.name)
            unit_error.code = "PROVIDER_CRASH"
        sent = self._tls.sent
        if isinstance(unit_error, EntitlementError) and sent:
            self._mark_not_entitled(self.secrets.redact(str(unit_error)))
        else:
            per_symbol = [v for v in results.values() if isinstance(v, ProviderError)]
            all_failed = bool(results) and len(per_symbol) == len(results) and \
                all(isinstance(v, _UNIT_FAILURES) for v in per_symbol)
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
        """tenacity policy for one unit.  tenacity computes the wait before
        it asks stop, so ``wait`` counts the failures and ``stop`` reads them."""
        q = self.quirks
        counts = {"rate": 0, "other": 0}

        def wait(state) -> float:
            exc = state.outcome.exception()
            rate_limited = isinstance(exc, RateLimitError)
            counts["rate" if rate_limited else "other"] += 1
            if rate_limited and exc.retry_after is not None:
                return float(exc.retry_after)
            n = counts["rate" if rate_limited else "other"]
            return min(float(q["backoff_max_seconds"]), float(q["backoff_initial_seconds"]) * (2 ** (n - 1)))

        def stop(state) -> bool:
            exc = state.outcome.exception()
            if isinstance(exc, RateLimitError):
                if exc.retry_after is not None and exc.retry_after > float(q["max_retry_after_seconds"]):
                    return True
                return counts["rate"] > int(q["rate_limit_retries"])
            return counts["other"] > int(q["unavailable_retries"])

        def before_sleep(state) -> None:
            rate_limited = isinstance(state.outcome.exception(), RateLimitError)
            if rate_limited:
                # The whole provider waits, not only this worker.
                self._pacer.pause(state.upcoming_sleep)
            self.health.record_retry(state.upcoming_sleep, rate_limited)

        return Retrying(retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
                        stop=stop, wait=wait, before_sleep=before_sleep, reraise=True)

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


def _copy_error(error: ProviderError, symbol: str) -> ProviderError:
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    clone.args = error.args
    clone.symbol = symbol
    clone.__cause__ = error.__cause__
    return clone


def result_frame(columns: Mapping[str, Any], *, provider: str, symbol: str,
                 fill_adj_close: bool = False) -> pd.DataFrame:
    """Build and check a bars frame from vendor columns (see base.normalise_bars)."""
    return normalise_bars(pd.DataFrame(dict(columns)), provider=provider, symbol=symbol,
                          fill_adj_close=fill_adj_close)


__all__ = ["BASE_QUIRKS", "BASE_URL_ENV", "CapturedResponse", "HttpVendorProvider", "ProviderHealth",
           "QuirksError", "RequestPacer", "SecretSet", "decode_json", "env_entitlement_problem",
           "frame_notes", "http_status_error", "nearest_midnight_dates", "parse_retry_after",
           "payload_error", "reference_tz", "resolve_quirks", "result_frame"]
