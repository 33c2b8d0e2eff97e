"""Retries of one unit of vendor requests (tenacity).

A 429 is retried up to ``rate_limit_retries`` times, waiting Retry-After when
the vendor says (a longer wait than ``max_retry_after_seconds`` gives up at
once) and the whole provider pauses meanwhile; 5xx, timeouts and connection
failures up to ``unavailable_retries`` with exponential backoff; nothing else
is retried (400/401/403 never).  A 429 is not retried either once the
provider's rate-limit budget for the run (``policy.RateLimitBudget``) is
spent, or when its wait would overspend it; a retry's sleep ends early when
the budget is spent meanwhile.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from tenacity import Retrying, retry_if_exception

from data.providers.base import ProviderError, RateLimitError
from data.providers.policy import RateLimitBudget


def unit_retrying(quirks: Mapping[str, Any], *, pause: Callable[[float], float | None],
                  record_retry: Callable[[float, bool], None],
                  budget: RateLimitBudget | None = None) -> Retrying:
    """tenacity policy for one unit.  tenacity computes the wait before it
    asks stop, so ``wait`` counts the failures and ``stop`` reads them.
    ``pause(seconds)`` holds the whole provider after a 429;
    ``record_retry(seconds, rate_limited)`` feeds the health numbers;
    ``budget``, the provider's rate-limit budget, ends 429 retries once spent."""
    q = quirks
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
            if counts["rate"] > int(q["rate_limit_retries"]):
                return True
            return budget is not None and not budget.allows(state.upcoming_sleep)
        return counts["other"] > int(q["unavailable_retries"])

    def before_sleep(state) -> None:
        rate_limited = isinstance(state.outcome.exception(), RateLimitError)
        if rate_limited:
            # The whole provider waits, not only this worker.
            added = pause(state.upcoming_sleep)
            if budget is not None:
                budget.add_wait(added or 0.0)
        record_retry(state.upcoming_sleep, rate_limited)

    return Retrying(retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
                    stop=stop, wait=wait, before_sleep=before_sleep, reraise=True,
                    **({"sleep": budget.sleep} if budget is not None else {}))
