"""A 429 storm ends within its budget (issue 10, failure 16).

The real client libraries against the loopback vendor answering 429 forever:
once the provider's rate-limit budget for the run is spent (seconds of 429
pause or 429 answers), the provider is unavailable for the rest of the run,
every remaining symbol falls back to the next provider at once (or fails
RATE_LIMITED "rate-limit budget exhausted" when none is left), and provider
health says so.  Before the budget, each symbol was retried to its own
limit: 70-105 s per symbol at Polygon's pacing, hours for a universe.
"""
from __future__ import annotations

import time

import pytest

from data.collectors.data_router import DataRouter
from data.collectors.ingestion import FAILED, SUCCESS, ProviderStats, fetch_symbols
from tests.fakes.vendor_server import sample_frame
from tests.providers.test_vendor_failures import reqs
from tests.providers.vendor_setup import by_symbol, failed_tries, fast_settings, plans_for

pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword")

SYMBOLS = tuple(f"ST{c}" for c in "ABCDEFGHIJKL")        # 12 stocks
NEXT = {"yahoo": "polygon", "polygon": "yahoo", "alpaca": "yahoo"}
# Without a budget each symbol would absorb 8 429s of 0.25 s: about 12 s of
# storm for the 12 symbols; the budget is 1 s of pause.
STORM = {"rate_limit_retries": 8, "rate_limit_budget_seconds": 1.0, "workers": 2, "batch_size": 1}


def _storm(server, vendor: str) -> None:
    for i, symbol in enumerate(SYMBOLS):
        server.register(symbol, sample_frame(seed=20 + i))
        server.fault(vendor, symbol, "429", times=None, retry_after="0.25")


def _run(router: DataRouter):
    stats = ProviderStats()
    requests = reqs(*SYMBOLS)
    t0 = time.monotonic()
    results = by_symbol(fetch_symbols(router, plans_for(requests), settings=router.settings, raw_dir=None,
                                      trail=None, stats=stats), requests)
    return results, stats, time.monotonic() - t0


@pytest.mark.parametrize("vendor", ["yahoo", "polygon", "alpaca"])
def test_a_429_storm_ends_within_its_budget_and_every_symbol_falls_back(vendor_runtime, server, point_env_at,
                                                                        vendor):
    point_env_at(server)
    _storm(server, vendor)
    settings = fast_settings(priority=[vendor, NEXT[vendor]], **{vendor: STORM})
    router = DataRouter(settings, provider_options={})
    try:
        results, stats, elapsed = _run(router)
        rows = {r["provider"]: r for r in stats.rows(router)}
    finally:
        router.close()
    assert elapsed < 1.0 + 6.0, elapsed                      # the budget plus slack (client start-up)
    # No symbol lost: the next provider served every one.
    assert {s: f.result.outcome for s, f in results.items()} == dict.fromkeys(SYMBOLS, SUCCESS)
    assert {f.result.provider for f in results.values()} == {NEXT[vendor]}
    for symbol, fetched in results.items():
        assert failed_tries(fetched) == [(vendor, "RATE_LIMITED")], symbol
    messages = [t["error"] for f in results.values() for t in f.result.tried if t["outcome"] == FAILED]
    assert all("rate-limit budget exhausted" in m for m in messages), messages
    # Most symbols were never sent: the storm ended with the budget.
    assert sum("nothing sent" in m for m in messages) >= len(SYMBOLS) - 4, messages
    assert server.count(vendor) <= 4 * (STORM["rate_limit_retries"] + 1)
    health = rows[vendor]
    assert "budget" in health["detail"]["rate_limit_exhausted"]
    assert health["failures"] == {"RATE_LIMITED": len(SYMBOLS)} and health["successes"] == 0
    assert "rate-limit budget exhausted" in router.run_state(vendor).refusal()


@pytest.mark.parametrize("vendor", ["polygon", "alpaca"])
def test_a_429_count_budget_fails_the_rest_with_the_reason_when_no_provider_is_left(vendor_runtime, server,
                                                                                   point_env_at, vendor):
    point_env_at(server)
    _storm(server, vendor)
    quirks = {**STORM, "rate_limit_budget_seconds": 3600.0, "rate_limit_budget_429s": 5}
    router = DataRouter(fast_settings(priority=[vendor], **{vendor: quirks}), provider_options={})
    try:
        results, stats, elapsed = _run(router)
    finally:
        router.close()
    assert elapsed < 6.0, elapsed
    for symbol, fetched in results.items():
        res = fetched.result
        assert res.outcome == FAILED and res.error_code == "RATE_LIMITED", symbol
        assert "rate-limit budget exhausted" in res.error_message and "429 answers, budget 5" in res.error_message
    # At most the budget, plus one answer per worker already in flight.
    assert server.statuses(vendor)[429] <= 5 + STORM["workers"]
