"""GUARD VIOLATION: Stage 2 never asks a provider for more than a few days."""
from __future__ import annotations

import datetime as dt

import pytest

from data.collectors.data_router import DataRouter
from data.providers.base import FetchOutcome, FetchRequest
from core.settings import load_settings
from trading.guard import GuardedProvider, GuardViolation, HistoryGuard, guard_router


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


def _request(days: int) -> FetchRequest:
    end = dt.date(2024, 6, 28)
    return FetchRequest("AAA", "stocks", end - dt.timedelta(days=days - 1), end)


def test_short_request_passes_long_request_raises_before_the_provider_sees_it():
    inner = RecordingProvider()
    guarded = GuardedProvider(inner, max_days=10)
    assert len(list(guarded.fetch([_request(3)]))) == 1
    with pytest.raises(GuardViolation, match=r"^GUARD VIOLATION: AAA: request for 1827 days"):
        guarded.fetch([_request(3), _request(1827)])
    assert [r.span_days for r in inner.seen] == [3], "no part of a violating batch reaches the provider"


def test_installed_guard_covers_every_router_and_is_removed_after():
    inner = RecordingProvider()
    router = DataRouter(load_settings(), env={}, factories={"yahoo": lambda: inner})
    with HistoryGuard(10).installed():
        provider = router.provider("yahoo")
        with pytest.raises(GuardViolation):
            provider.fetch([_request(400)])
        fresh = DataRouter(load_settings(), env={}, factories={"yahoo": RecordingProvider})
        with pytest.raises(GuardViolation):
            fresh.provider("yahoo").fetch([_request(30)])
    unguarded = router.provider("yahoo")
    assert unguarded is inner
    assert len(list(unguarded.fetch([_request(400)]))) == 1


def test_nested_installs_restore_the_original():
    original = DataRouter.provider
    with HistoryGuard(10).installed():
        with HistoryGuard(5).installed():
            pass
        assert DataRouter.provider is not original
    assert DataRouter.provider is original


def test_guard_router_wraps_one_router_only():
    router = guard_router(DataRouter(load_settings(), env={}, factories={"yahoo": RecordingProvider}), 7)
    other = DataRouter(load_settings(), env={}, factories={"yahoo": RecordingProvider})
    with pytest.raises(GuardViolation):
        router.provider("yahoo").fetch([_request(8)])
    assert len(list(other.provider("yahoo").fetch([_request(8)]))) == 1


def test_refresh_surfaces_a_violation_that_ingestion_would_swallow(tmp_path):
    """Ingestion catches provider exceptions into per-symbol failures; the
    daemon's refresh still fails loudly and logs GUARD_VIOLATION."""
    import json

    from core.runtime import RuntimePaths
    from core.structured_log import StructuredLog
    from trading.daemon import ingestion_refresh

    log = StructuredLog(tmp_path, run_id="g", console=None)
    router = DataRouter(load_settings(), env={}, factories={"yahoo": RecordingProvider})

    def swallowing_ingest():
        try:
            router.provider("yahoo").fetch([_request(1260)])
        except Exception:  # what a per-symbol failure handler does
            pass

    guard = HistoryGuard(10)
    with guard.installed():
        refresh = ingestion_refresh(None, None, None, RuntimePaths.resolve(tmp_path / "x.db"), log, guard,
                                    ingest=swallowing_ingest)
        with pytest.raises(GuardViolation, match="GUARD VIOLATION"):
            refresh()
        ok = ingestion_refresh(None, None, None, RuntimePaths.resolve(tmp_path / "x.db"), log, guard,
                               ingest=lambda: list(router.provider("yahoo").fetch([_request(3)])))
        ok()
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [e["event"] for e in errors] == ["GUARD_VIOLATION"]
    assert "1260 days" in errors[0]["message"]
