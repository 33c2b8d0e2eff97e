"""GUARD VIOLATION: Stage 2 never asks a provider for more than a few days.

The guard is a collaborator of the router (``DataRouter(..., guard=...)``),
handed to every provider the router builds, worker processes included."""
from __future__ import annotations

import datetime as dt
import json
import os
import pickle

import pytest

from core.settings import load_settings
from data.collectors.data_router import DataRouter
from data.providers.base import FetchOutcome, FetchRequest
from data.providers.file import FileDataProvider
from data.providers.synthetic import SyntheticDataProvider
from trading.guard import GuardedProvider, GuardViolation, HistoryGuard


class RecordingProvider:
    """A provider that answers nothing and records what it was asked."""

    name = "recording"

    def __init__(self):
        self.seen: list[FetchRequest] = []

    def fetch(self, requests):
        for r in requests:
            self.seen.append(r)
            yield FetchOutcome(r)

    def test(self) -> str:
        return "ok"


class CountingGuard(HistoryGuard):
    """A history guard that also notes which process ran each check."""

    def __init__(self, max_days: int):
        super().__init__(max_days)
        self.checked_in: list[int] = []

    def check(self, requests):
        self.checked_in.append(os.getpid())
        super().check(requests)


def _request(days: int, symbol: str = "AAA") -> FetchRequest:
    end = dt.date(2024, 6, 28)
    return FetchRequest(symbol, "stocks", end - dt.timedelta(days=days - 1), end)


def test_short_request_passes_long_request_raises_before_the_provider_sees_it():
    inner = RecordingProvider()
    guard = HistoryGuard(10)
    guarded = GuardedProvider(inner, guard)
    assert len(list(guarded.fetch([_request(3)]))) == 1
    with pytest.raises(GuardViolation, match=r"^GUARD VIOLATION: AAA: request for 1827 days"):
        guarded.fetch([_request(3), _request(1827)])
    assert [r.span_days for r in inner.seen] == [3], "no part of a violating batch reaches the provider"
    assert len(guard.take_violations()) == 1 and guard.take_violations() == []


def test_a_router_given_the_guard_guards_every_provider_it_builds(tmp_path):
    original = DataRouter.provider
    inner = RecordingProvider()
    guard = HistoryGuard(10)
    router = DataRouter(load_settings(), env={}, data_dir=str(tmp_path), factories={"yahoo": lambda: inner},
                        guard=guard)
    with pytest.raises(GuardViolation):
        router.provider("yahoo").fetch([_request(400)])
    assert inner.seen == []
    # A provider that takes the guard gets it as a keyword, not a wrapper.
    files = router.provider("file")
    assert isinstance(files, FileDataProvider) and files.guard is guard
    with pytest.raises(GuardViolation, match="^GUARD VIOLATION: AAA: request for 30 days"):
        files.fetch([_request(30)])
    # The cross-check's second router carries the same guard.
    with pytest.raises(GuardViolation):
        router.second_opinion("file").provider("yahoo").fetch([_request(11)])
    assert len(guard.take_violations()) == 3
    # Nothing patched: another router, built without a guard, is untouched.
    plain = DataRouter(load_settings(), env={}, factories={"yahoo": RecordingProvider})
    assert len(list(plain.provider("yahoo").fetch([_request(400)]))) == 1
    assert DataRouter.provider is original


def test_the_guard_travels_in_the_worker_process_spec():
    guard = HistoryGuard(10)
    target, options = DataRouter(load_settings(), env={}, only="synthetic", guard=guard).process_spec("synthetic")
    assert target == "data.providers.synthetic:SyntheticDataProvider" and options["guard"] is guard
    assert DataRouter(load_settings(), env={}, only="synthetic").process_spec("synthetic")[1] == {}
    copy = pickle.loads(pickle.dumps(guard))
    assert copy == guard and hash(copy) == hash(guard) and copy.max_days == 10
    assert copy != HistoryGuard(10)


def test_a_worker_process_provider_is_refused_and_the_violation_reaches_the_guard(runtime, settings, tmp_path):
    """The synthetic provider fetches in worker processes (parallelism =
    "process"); the guard in its spec refuses there, and the violation comes
    back to the router and onto the guard in this process."""
    from core.universe import load_universe
    from data.collectors.ingestion import IngestOptions, run_ingestion
    from database.manager import Database

    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in ("AAPL", "MSFT")]}))
    guard = CountingGuard(10)
    router = DataRouter(settings, env={}, only="synthetic", guard=guard)
    assert SyntheticDataProvider.parallelism == "process" and router.process_spec("synthetic") is not None
    with Database(runtime.db) as db:
        report = run_ingestion(db, load_universe(path), settings, runtime,
                               IngestOptions(as_of=dt.date(2026, 11, 19), provider="synthetic"), router=router)
    router.close()
    assert report.rows_written == 0
    assert {s.symbol: s.error_code for s in report.symbols} == {"AAPL": "GUARD_VIOLATION", "MSFT": "GUARD_VIOLATION"}
    assert guard.checked_in == [], "the check ran in a worker process, not here"
    violations = guard.take_violations()
    assert violations and all(v.startswith("GUARD VIOLATION: ") for v in violations)
    assert "exceeds the Stage 2 limit of 10 days" in violations[0]


def test_the_daemon_refresh_builds_a_guarded_router(runtime, settings, tmp_path):
    """The refresh Stage 2 installs fetches through a router given the guard:
    an empty store's incremental run asks for years and is refused before
    any provider is reached."""
    from core.logs import OperatorLog
    from core.universe import load_universe
    from database.manager import Database
    from trading.daemon import ingestion_refresh

    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": "AAPL"}]}))
    log = OperatorLog(tmp_path / "logs", run_id="g")
    started = []
    with Database(runtime.db) as db:
        refresh = ingestion_refresh(load_universe(path), settings, runtime, log, HistoryGuard(10))
        with pytest.raises(GuardViolation, match="^GUARD VIOLATION: AAPL: request for") as caught:
            refresh(db, started.append)
        # The fix is named: a store this far behind needs a run of its own.
        assert "run python ingest_history.py --mode=incremental" in str(caught.value)
        # Ingestion swallowed the violation into AAPL's outcome; the refresh still failed loudly.
        assert [r["error_code"] for r in db.runs.audit_rows(started[0])] == ["GUARD_VIOLATION"]
    errors = [json.loads(x) for x in (tmp_path / "logs" / "errors.jsonl").read_text().splitlines()]
    assert {e["event"] for e in errors} == {"GUARD_VIOLATION"}
