"""The provider policy, written once: who may be asked, for what, and what an
answer does to a provider for the rest of the run.

Two callers hold this policy, each at its own scale.  The router
(``data.collectors.data_router``) keeps one :class:`ProviderRunState` per
provider name and skips a provider before asking it; the network vendors'
base class (``data.providers.http_vendor``) keeps one for itself and fails
the rest of a batch fast, without sending.

=====================  ======================================================
rule                   what it says
=====================  ======================================================
entitlement            ``<NAME>_ENABLED=false`` disables any provider; one
                       that ``requires_entitlement`` (capability matrix) also
                       needs ``<NAME>_ENABLED=true``; every provider needs
                       its keys (:data:`REQUIRED_KEYS`)
capability             the asset class must be served and the window no
                       longer than ``max_history_days``; else never asked
not entitled (run)     an ENTITLEMENT answer (400/401/403) marks the provider
                       not entitled for the rest of the run (first cause kept)
circuit breaker        PROVIDER_UNAVAILABLE, SCHEMA_ERROR, MALFORMED_DATA and
                       PROVIDER_CRASH count; ``circuit_breaker_failures``
                       (5) in a row open the circuit for the run; a success
                       resets the count.  RATE_LIMITED (slow down, not
                       broken), NO_DATA and WRONG_SYMBOL (about the symbol,
                       not the provider) do not count
rate-limit budget      per provider per run: ``rate_limit_budget_seconds``
                       of provider-wide 429 pause (wall clock) or
                       ``rate_limit_budget_429s`` 429 answers; past either,
                       the provider is unavailable for the rest of the run
                       (RATE_LIMITED "rate-limit budget exhausted", nothing
                       sent) and every remaining symbol falls back at once
health numbers         requests, successes, failures by code, latency
                       p50/p95, retries, 429 waits, circuit and entitlement
                       (:class:`ProviderHealth`, one ``provider_health`` row)
=====================  ======================================================
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from data.providers.base import (EntitlementError, FetchOutcome, FetchRequest, MalformedDataError, ProviderCrash,
                                 ProviderError, ProviderUnavailable, SchemaError)

# Keys each vendor needs in the environment (also the values its errors mask).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "polygon": ("POLYGON_API_KEY",),
    "alpaca": ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# ------------------------------------------------------------ entitlement
def entitlement_problem(name: str, capabilities: Mapping[str, Mapping[str, Any]],
                        env: Mapping[str, str]) -> str | None:
    """Why the environment does not entitle ``name`` (one phrase), or None."""
    flag = env.get(f"{name.upper()}_ENABLED", "").strip().lower()
    if flag in _FALSE:
        return f"{name.upper()}_ENABLED={flag}"
    if capabilities.get(name, {}).get("requires_entitlement") and flag not in _TRUE:
        return f"{name.upper()}_ENABLED not set to true"
    missing = [k for k in REQUIRED_KEYS.get(name, ()) if not env.get(k)]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


def provider_entitled(name: str, capabilities: Mapping[str, Mapping[str, Any]],
                      env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether ``name`` may be used, and why (one phrase); ``env`` defaults
    to the process environment."""
    problem = entitlement_problem(name, capabilities, os.environ if env is None else env)
    return (False, problem) if problem else (True, "entitled")


# ------------------------------------------------------------- capability
def capability_refusal(capabilities: Mapping[str, Any], request: FetchRequest) -> str | None:
    """Why a provider with these capabilities may not be asked ``request``
    (one phrase), or None."""
    if not capabilities.get(request.asset_class, False):
        return f"does not serve {request.asset_class}"
    limit = capabilities.get("max_history_days")
    if limit is not None and request.span_days > int(limit):
        return f"window of {request.span_days} days exceeds max_history_days {limit}"
    return None


# ------------------------------------------------------ run state, breaker
def counts_toward_breaker(error: ProviderError) -> bool:
    """Whether a failure says the provider is unwell (see the table above)."""
    return isinstance(error, (ProviderUnavailable, SchemaError, ProviderCrash)) or type(error) is MalformedDataError


class ProviderRunState:
    """One provider's state for one run: not entitled (and why), consecutive
    failures, circuit open.  Thread-safe."""

    def __init__(self, circuit_threshold: int):
        self.circuit_threshold = int(circuit_threshold)
        self.not_entitled: str | None = None
        self.consecutive_failures = 0
        self.circuit_open = False
        self.rate_limit_exhausted: str | None = None
        self._lock = threading.Lock()

    def record(self, error: ProviderError | None) -> None:
        """What one answer does to the provider for the rest of the run."""
        if getattr(error, "budget_exhausted", None):
            self.mark_rate_limit_exhausted(str(error.budget_exhausted))
        if error is None:
            with self._lock:
                self.consecutive_failures = 0
        elif isinstance(error, EntitlementError):
            self.mark_not_entitled(f"{error.code}: {error}")
        elif counts_toward_breaker(error):
            with self._lock:
                self.consecutive_failures += 1
                if self.consecutive_failures >= self.circuit_threshold:
                    self.circuit_open = True

    def mark_not_entitled(self, why: str) -> None:
        """Not entitled for the rest of the run; the first cause is kept."""
        with self._lock:
            if not self.not_entitled:
                self.not_entitled = why

    def mark_rate_limit_exhausted(self, why: str) -> None:
        """Rate-limit budget spent: unavailable for the rest of the run."""
        with self._lock:
            if not self.rate_limit_exhausted:
                self.rate_limit_exhausted = why

    def refusal(self) -> str | None:
        """Why the provider may not be asked again in this run, or None."""
        if self.not_entitled:
            return f"not entitled this run ({self.not_entitled})"
        if self.rate_limit_exhausted:
            return f"rate-limit budget exhausted this run ({self.rate_limit_exhausted})"
        if self.circuit_open:
            return "circuit open after consecutive failures"
        return None


class RateLimitBudget:
    """One provider's rate-limit budget for one run: seconds of
    provider-wide 429 pause (wall clock, overlapping pauses counted once)
    and 429 answers.  ``exhausted`` is the one-phrase reason once either is
    spent; :meth:`sleep` (the retries' sleep) wakes at once when it is.
    Thread-safe."""

    def __init__(self, seconds: float, answers: int):
        self.seconds = float(seconds)
        self.answers = int(answers)
        self.waited = 0.0
        self.count = 0
        self.exhausted: str | None = None
        self._lock = threading.Lock()
        self._spent = threading.Event()

    def _exhaust(self, why: str) -> None:
        if not self.exhausted:
            self.exhausted = why
        self._spent.set()

    def record_429(self) -> None:
        """One 429 answer received."""
        with self._lock:
            self.count += 1
            if self.count >= self.answers:
                self._exhaust(f"{self.count} 429 answers, budget {self.answers}")

    def allows(self, wait: float) -> bool:
        """Whether pausing ``wait`` more seconds stays within the budget;
        if not, the budget is spent now (waiting would only end in a
        fallback later)."""
        with self._lock:
            if self.exhausted:
                return False
            if self.waited + max(0.0, wait) > self.seconds:
                self._exhaust(f"{self.waited:.1f} s waited on 429s and {wait:.1f} s more asked, "
                              f"budget {self.seconds:g} s")
                return False
            return True

    def add_wait(self, seconds: float) -> None:
        """``seconds`` more of provider-wide pause."""
        with self._lock:
            self.waited += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the budget is spent meanwhile."""
        self._spent.wait(max(0.0, seconds))


# ---------------------------------------------------------------- health
def latency_percentiles(latencies_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p95) in ms, rounded to the microsecond; (None, None) when empty."""
    lat = np.asarray(latencies_ms, dtype="float64")
    if not lat.size:
        return None, None
    return round(float(np.percentile(lat, 50)), 3), round(float(np.percentile(lat, 95)), 3)


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
    rate_limit_exhausted: str | None = None                     # why the 429 budget is spent
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
            p50, p95 = latency_percentiles(self.latencies_ms)
            return {
                "provider": self.provider,
                "requests": self.requests,
                "successes": self.successes,
                "failures": dict(self.failures),
                "p50_ms": p50,
                "p95_ms": p95,
                "circuit_open": self.circuit_open,
                "entitled": self.entitled,
                "retries": self.retries,
                "rate_limited": int(self.http_statuses.get("429", 0)),
                "rate_limit_wait_s": round(sum(self.rate_limit_waits), 3),
                "rate_limit_exhausted": self.rate_limit_exhausted,
                "http_statuses": dict(self.http_statuses),
            }
