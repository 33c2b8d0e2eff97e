"""GUARD VIOLATION: Stage 2 never pulls multi-year history from a vendor.

Stage 2 decides from the database.  The only provider traffic it may cause
is the daemon's incremental refresh, which asks for a few days.  The guard
makes any longer request fail loudly instead of quietly re-downloading years
of bars in the trading loop.

Three ways to put it in front of a provider:

* ``GuardedProvider(provider, max_days)`` - wrap one provider;
* ``guard_router(router, max_days)`` - every provider this router hands out
  is wrapped (an instance-level change; other routers are untouched);
* ``with HistoryGuard(max_days).installed():`` - for the duration of the
  block every ``DataRouter`` in the process hands out guarded providers
  (Stage 2 installs this around its whole run, refresh included).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, Sequence

from data.providers.base import FetchOutcome, FetchRequest, Provider


class GuardViolation(RuntimeError):
    """A Stage 2 provider request spans more than the allowed days.

    Deliberately not a ``ProviderError``: it must not be turned into a
    per-symbol outcome and fallen back from - it is a bug to stop on."""


def check_request(request: FetchRequest, max_days: int) -> None:
    """Raise GuardViolation when ``request`` spans more than ``max_days``."""
    if request.span_days > max_days:
        raise GuardViolation(
            f"GUARD VIOLATION: {request.symbol}: request for {request.span_days} days of history "
            f"({request.start} to {request.end}) exceeds the Stage 2 limit of {max_days} days; "
            "Stage 2 reads history from the database only")


class GuardedProvider:
    """A provider that refuses, before any network traffic, a long request.

    ``on_violation`` is told every violation: a caller that catches provider
    exceptions wholesale (ingestion turns them into per-symbol failures)
    cannot make one disappear."""

    def __init__(self, provider: Provider, max_days: int, on_violation: Callable[[str], None] | None = None):
        self._provider = provider
        self.max_days = int(max_days)
        self.on_violation = on_violation
        self.name = getattr(provider, "name", type(provider).__name__)

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        requests = list(requests)
        # Checked eagerly (not inside a generator) so the violation surfaces
        # at the call, before the wrapped provider sees any request.
        for request in requests:
            try:
                check_request(request, self.max_days)
            except GuardViolation as exc:
                if self.on_violation is not None:
                    self.on_violation(str(exc))
                raise
        return iter(self._provider.fetch(requests))

    def test(self) -> str:
        return self._provider.test()

    def close(self) -> None:
        closer = getattr(self._provider, "close", None)
        if callable(closer):
            closer()

    def __getattr__(self, name: str):
        return getattr(self._provider, name)


def guard_router(router, max_days: int):
    """Make ``router`` hand out only guarded providers; returns the router."""
    original = router.provider

    def guarded(name: str):
        inst = original(name)
        return inst if isinstance(inst, GuardedProvider) else GuardedProvider(inst, max_days)

    router.provider = guarded
    return router


class HistoryGuard:
    """Process-wide guard over ``DataRouter.provider`` while installed."""

    _lock = threading.Lock()
    _depth = 0
    _original = None

    def __init__(self, max_days: int):
        self.max_days = int(max_days)
        self._violations: list[str] = []
        self._violations_lock = threading.Lock()

    def record(self, message: str) -> None:
        with self._violations_lock:
            self._violations.append(message)

    def take_violations(self) -> list[str]:
        """Violations seen since the last call (and forget them)."""
        with self._violations_lock:
            out, self._violations = self._violations, []
        return out

    @contextlib.contextmanager
    def installed(self) -> Iterator["HistoryGuard"]:
        from data.collectors.data_router import DataRouter

        guard = self
        with HistoryGuard._lock:
            if HistoryGuard._depth == 0:
                HistoryGuard._original = DataRouter.provider
            original = HistoryGuard._original
            HistoryGuard._depth += 1

            def provider(router, name: str):
                inst = original(router, name)
                if isinstance(inst, GuardedProvider):
                    return inst
                return GuardedProvider(inst, guard.max_days, on_violation=guard.record)

            previous = DataRouter.provider
            DataRouter.provider = provider
        try:
            yield self
        finally:
            with HistoryGuard._lock:
                DataRouter.provider = previous
                HistoryGuard._depth -= 1
                if HistoryGuard._depth == 0:
                    DataRouter.provider = HistoryGuard._original
                    HistoryGuard._original = None
