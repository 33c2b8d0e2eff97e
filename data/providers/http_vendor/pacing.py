"""Pacing: one rate limiter per provider, a cap on requests in flight, and a
provider-wide pause after a 429; Retry-After read in both of its forms."""
from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import threading
import time
from typing import Sequence

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate


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

    def pause(self, seconds: float) -> float:
        """Hold the provider ``seconds`` from now; returns the seconds this
        adds to the pause already running (overlapping pauses count once)."""
        with self._cond:
            now = time.monotonic()
            until = now + max(0.0, seconds)
            added = max(0.0, until - max(self._paused_until, now))
            self._paused_until = max(self._paused_until, until)
            return added

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
