"""GUARD VIOLATION: Stage 2 never pulls multi-year history from a vendor.

Stage 2 decides from the database.  The only provider traffic it may cause
is the daemon's incremental refresh, which asks for a few days.  The guard
makes any longer request fail loudly instead of quietly re-downloading years
of bars in the trading loop.

The guard is an explicit collaborator, nothing is patched:
``DataRouter(settings, guard=HistoryGuard(max_days))`` hands it to every
provider the router builds - the process-parallel ones (files, synthetic)
take it as a keyword, also when they are rebuilt in a worker process; the
others are wrapped in ``GuardedProvider`` - and reports to it every
violation that comes back as an outcome.  Stage 2 builds the daemon's
refresh router this way (``trading.daemon.ingestion_refresh``).
"""
from __future__ import annotations

import threading
import uuid
from typing import Sequence

from data.providers.base import FetchRequest
from data.providers.guard import GuardedProvider, GuardViolation

__all__ = ["GuardViolation", "GuardedProvider", "HistoryGuard", "check_request"]


def check_request(request: FetchRequest, max_days: int) -> None:
    """Raise GuardViolation when ``request`` spans more than ``max_days``."""
    if request.span_days > max_days:
        raise GuardViolation(
            f"GUARD VIOLATION: {request.symbol}: request for {request.span_days} days of history "
            f"({request.start} to {request.end}) exceeds the Stage 2 limit of {max_days} days; "
            "Stage 2 reads history from the database only")


class HistoryGuard:
    """Refuses any request longer than ``max_days`` and keeps the violations
    it saw (raised here, or reported back by the router from any process)
    until ``take_violations``.

    Picklable: a worker process gets a copy with the same identity (copies
    compare equal) and no violations; what it refuses comes back to the
    router as an outcome and is recorded on the original."""

    def __init__(self, max_days: int):
        self.max_days = int(max_days)
        self._identity = uuid.uuid4().hex
        self._violations: list[str] = []
        self._seen: dict[int, GuardViolation] = {}   # by id: each violation once
        self._lock = threading.Lock()

    def check(self, requests: Sequence[FetchRequest]) -> None:
        """Raise GuardViolation for the first request over the limit (recorded)."""
        for request in requests:
            try:
                check_request(request, self.max_days)
            except GuardViolation as exc:
                self.record(exc)
                raise

    def record(self, violation: GuardViolation) -> None:
        with self._lock:
            if id(violation) in self._seen:
                return
            self._seen[id(violation)] = violation
            self._violations.append(str(violation))

    def take_violations(self) -> list[str]:
        """Violations seen since the last call (and forget them)."""
        with self._lock:
            out, self._violations, self._seen = self._violations, [], {}
        return out

    def __getstate__(self) -> dict:
        return {"max_days": self.max_days, "identity": self._identity}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_days"])
        self._identity = state["identity"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HistoryGuard) and other._identity == self._identity

    def __hash__(self) -> int:
        return hash(self._identity)
