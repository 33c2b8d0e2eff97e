"""The fetch guard: a collaborator that refuses a request before any provider
sees it.

A guard is passed to ``DataRouter(..., guard=...)`` (Stage 2 passes
``trading.guard.HistoryGuard``: no multi-year history in the trading loop).
The router hands it to every provider it builds:

* as the ``guard`` keyword where the provider's constructor takes one - the
  process-parallel providers (``file``, ``synthetic``) do, so the guard also
  travels in ``DataRouter.process_spec`` and is in force in the worker
  processes that rebuild them;
* otherwise by wrapping the provider in :class:`GuardedProvider`.

Either way a refusal is a :class:`GuardViolation` raised by ``fetch`` before
anything is read or sent.  Whoever catches it (ingestion turns a provider's
exception into per-symbol outcomes), the violation comes back to the router
as an outcome, from a thread or a worker process alike, and the router
reports it to ``guard.record``: the guard's owner sees every violation.
"""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

from data.providers.base import FetchOutcome, FetchRequest, Provider, ProviderError


class GuardViolation(ProviderError):
    """A request the guard refuses; the message says why, exactly as written.

    A ProviderError (code GUARD_VIOLATION) so that it survives the trip back
    from a worker process as an outcome and reaches the router, which tells
    the guard; stopping on it is the guard owner's decision."""

    code = "GUARD_VIOLATION"

    def __str__(self) -> str:
        return Exception.__str__(self)


@runtime_checkable
class FetchGuard(Protocol):
    """What the router and its providers ask before fetching.

    A guard given to process-parallel providers is pickled into worker
    processes: it must be picklable, and copies of one guard should compare
    equal (a worker keeps one provider per distinct spec)."""

    def check(self, requests: Sequence[FetchRequest]) -> None:
        """Raise :class:`GuardViolation` for the first request refused
        (and record it)."""
        ...

    def record(self, violation: GuardViolation) -> None:
        """Remember a violation; the router calls this for every violation
        that comes back as an outcome (the same object may come twice)."""
        ...


def checked(guard: FetchGuard | None, requests: Sequence[FetchRequest]) -> list[FetchRequest]:
    """``requests`` as a list, after ``guard`` (if any) let every one pass.
    For providers that take a ``guard``: call it first thing in ``fetch``."""
    requests = list(requests)
    if guard is not None:
        guard.check(requests)
    return requests


class GuardedProvider:
    """A provider behind a guard: a refused batch raises before the wrapped
    provider sees any of its requests."""

    def __init__(self, provider: Provider, guard: FetchGuard):
        self._provider = provider
        self.guard = guard
        self.name = getattr(provider, "name", type(provider).__name__)

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        # Checked eagerly (not inside a generator) so the violation surfaces
        # at the call, before the wrapped provider sees any request.
        return iter(self._provider.fetch(checked(self.guard, requests)))

    def test(self) -> str:
        return self._provider.test()

    def close(self) -> None:
        closer = getattr(self._provider, "close", None)
        if callable(closer):
            closer()

    def __getattr__(self, name: str):
        return getattr(self._provider, name)
