"""How each vendor's failures degrade: typed errors, retry budgets, a bad
key costing one request, 429 storms losing nothing, the circuit breaker,
the deadline, and the router's fallback yahoo -> polygon -> alpaca."""
from __future__ import annotations

import datetime as dt

import pytest

from data.collectors.data_router import DataRouter
from data.collectors.ingestion import fetch_symbols
from data.providers.alpaca import AlpacaDataProvider
from data.providers.base import (EntitlementError, FetchRequest, NoDataError, ProviderUnavailable,
                                 RateLimitError)
from data.providers.polygon import PolygonDataProvider
from data.providers.yahoo import YahooDataProvider
from tests.providers.vendor_setup import WINDOW, by_symbol, failed_tries, fast_settings, plans_for

pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword")

VENDORS = {"yahoo": YahooDataProvider, "polygon": PolygonDataProvider, "alpaca": AlpacaDataProvider}
STOCKS = ("AAPL", "MSFT", "BRK-B", "JPM")


def make(vendor: str, server, **quirks):
    settings = fast_settings(**{vendor: quirks})
    return VENDORS[vendor](settings=settings, base_url=server.url)


def reqs(*symbols: str, start: dt.date = WINDOW[0], end: dt.date = WINDOW[1]) -> list[FetchRequest]:
    classes = {"GC=F": "commodities", "EURUSD=X": "fx", "BTC-USD": "crypto"}
    return [FetchRequest(s, classes.get(s, "stocks"), start, end) for s in symbols]


def fall_back(router: DataRouter, requests: list[FetchRequest], raw_dir=None):
    """The run's fallback loop (``fetch_symbols``) over ``requests``, without
    a store or a trail: each symbol's SymbolFetch, in request order."""
    return by_symbol(fetch_symbols(router, plans_for(requests), settings=router.settings, raw_dir=raw_dir,
                                   trail=None), requests)


@pytest.mark.parametrize("status", ["401", "403"])
@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_bad_key_costs_exactly_one_request_and_is_never_retried(vendor_runtime, server, vendor, status):
    provider = make(vendor, server, workers=4, batch_size=1)
    for symbol in STOCKS:     # a bad key fails every request
        server.fault(vendor, symbol, status, times=None)
    outcomes = list(provider.fetch(reqs(*STOCKS)))
    assert len(outcomes) == len(STOCKS)
    assert all(isinstance(o.error, EntitlementError) and o.error.code == "ENTITLEMENT" for o in outcomes)
    assert sorted(o.attempts for o in outcomes) == [0, 0, 0, 1]
    assert server.count(vendor) == 1
    health = provider.health.summary()
    assert health["retries"] == 0 and health["entitled"] is False and health["requests"] >= 1
    # Not entitled for the rest of the run: nothing more is sent.
    later = list(provider.fetch(reqs("MSFT")))
    assert isinstance(later[0].error, EntitlementError) and "nothing sent" in str(later[0].error)
    assert server.count(vendor) == 1


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_429_storm_slows_the_run_but_loses_no_symbol(vendor_runtime, server, vendor):
    # The vendor allows 2 requests per 0.25 s; our limiter is switched off so
    # every burst meets 429s, which must all be absorbed by retries.
    server.enforce_rate_limit(vendor, [(2, 0.25)], whole_seconds=False)
    provider = make(vendor, server, workers=3, batch_size=1, rate_limit_retries=12)
    symbols = STOCKS + ("EURUSD=X",) if vendor != "alpaca" else STOCKS
    outcomes = list(provider.fetch(reqs(*symbols)))
    assert {o.request.symbol for o in outcomes} == set(symbols)
    timeline = [(round(r.at - server.log[0].at, 3), r.status, r.symbols) for r in server.log]
    assert [o.error for o in outcomes] == [None] * len(symbols), \
        ([(o.request.symbol, o.attempts) for o in outcomes], timeline)
    health = provider.health.summary()
    assert health["rate_limited"] >= 2 and server.statuses(vendor)[429] == health["rate_limited"]
    assert health["failures"] == {} and health["successes"] == len(symbols)
    assert not health["circuit_open"]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_retry_after_is_honoured_and_backoff_used_without_it(vendor_runtime, server, vendor):
    server.fault(vendor, "AAPL", "429", times=2, retry_after="0.2")
    provider = make(vendor, server)
    outcome, = provider.fetch(reqs("AAPL"))
    assert outcome.error is None and outcome.attempts == 3
    assert provider.health.rate_limit_waits == [0.2, 0.2]

    server.fault(vendor, "MSFT", "429", times=2, retry_after=None)
    provider = make(vendor, server)
    outcome, = provider.fetch(reqs("MSFT"))
    assert outcome.error is None and outcome.attempts == 3
    assert provider.health.rate_limit_waits == [0.01, 0.02]     # backoff_initial_seconds doubling


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_rate_limit_beyond_budget_or_too_long_a_wait_gives_up_for_fallback(vendor_runtime, server, vendor):
    server.fault(vendor, "AAPL", "429", times=None, retry_after=None)
    provider = make(vendor, server)
    outcome, = provider.fetch(reqs("AAPL"))
    assert isinstance(outcome.error, RateLimitError) and outcome.attempts == 4   # 1 + rate_limit_retries

    server.clear_faults()
    server.fault(vendor, "MSFT", "429", times=None, retry_after="3600")
    provider = make(vendor, server)
    outcome, = provider.fetch(reqs("MSFT"))
    assert isinstance(outcome.error, RateLimitError) and outcome.error.retry_after == 3600
    assert outcome.attempts == 1 and provider.health.rate_limit_waits == []


def test_an_empty_yahoo_frame_is_an_error_with_a_code(vendor_runtime, server):
    server.fault("yahoo", "AAPL", "empty", times=None)
    provider = make("yahoo", server)
    outcome, = provider.fetch(reqs("AAPL"))
    assert outcome.result is None
    assert isinstance(outcome.error, NoDataError) and outcome.error.code == "NO_DATA"
    # A window the vendor has nothing for: the same, never success with 0 rows.
    outcome, = provider.fetch(reqs("MSFT", start=dt.date(2030, 1, 2), end=dt.date(2030, 1, 31)))
    assert outcome.result is None and outcome.error.code == "NO_DATA"


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_stalled_vendor_is_cut_at_the_deadline(vendor_runtime, server, vendor):
    server.fault(vendor, "AAPL", "stall", times=None)
    provider = make(vendor, server)
    outcome, = provider.fetch(reqs("AAPL"))
    assert isinstance(outcome.error, ProviderUnavailable)
    assert "0.4 s" in str(outcome.error)
    assert outcome.attempts == 3
    assert provider.health.summary()["http_statuses"].get("timeout") == 3


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_circuit_breaker_skips_the_provider_after_consecutive_failures(vendor_runtime, server, vendor):
    symbols = STOCKS + ("EURUSD=X", "BTC-USD") if vendor != "alpaca" else STOCKS + ("BTC-USD",)
    for symbol in symbols:
        server.fault(vendor, symbol, "500", times=None)
    provider = make(vendor, server, workers=1, batch_size=1, circuit_breaker_failures=2)
    outcomes = list(provider.fetch(reqs(*symbols)))
    assert all(isinstance(o.error, ProviderUnavailable) for o in outcomes)
    assert [o.attempts for o in outcomes] == [3, 3] + [0] * (len(symbols) - 2)
    assert all("circuit open" in str(o.error) for o in outcomes[2:])
    assert server.count(vendor) == 6
    assert provider.health.summary()["circuit_open"] is True


def test_router_falls_back_yahoo_polygon_alpaca_per_the_capability_matrix(vendor_runtime, server, point_env_at):
    point_env_at(server)
    router = DataRouter(fast_settings(), provider_options={})
    long_start = dt.date(2021, 1, 4)
    requests = reqs("AAPL", "MSFT", "GC=F") + [FetchRequest("SPY", "stocks", long_start, WINDOW[1])]
    server.fault("yahoo", "AAPL", "500", times=None)
    server.fault("polygon", "AAPL", "401", times=None)
    server.fault("yahoo", "GC=F", "503", times=None)
    server.fault("yahoo", "SPY", "truncated_json", times=None)
    results = fall_back(router, requests)
    try:
        outcome, tried = results["AAPL"].outcome, failed_tries(results["AAPL"])
        assert outcome.error is None and outcome.result.provider == "alpaca"
        assert tried == [("yahoo", "PROVIDER_UNAVAILABLE"), ("polygon", "ENTITLEMENT")]

        outcome, tried = results["MSFT"].outcome, failed_tries(results["MSFT"])
        assert outcome.error is None and outcome.result.provider == "yahoo" and tried == []

        # Commodities: only yahoo serves them; nobody else is asked.
        outcome, tried = results["GC=F"].outcome, failed_tries(results["GC=F"])
        assert outcome.error.code == "PROVIDER_UNAVAILABLE" and tried == [("yahoo", "PROVIDER_UNAVAILABLE")]
        assert server.count("polygon", "GC=F") == server.count("alpaca", "GC=F") == 0

        # A multi-year window: polygon is not entitled any more this run and
        # alpaca (730 days) is never asked.
        tried = failed_tries(results["SPY"])
        assert tried == [("yahoo", "MALFORMED_DATA"), ("polygon", "ENTITLEMENT")]
        assert server.count("alpaca", "SPY") == 0
        assert "polygon" in router.not_entitled
        assert server.count("polygon") == 1          # the one 401, nothing after it
    finally:
        router.close()


def test_no_symbol_is_lost_when_another_provider_can_serve_it(vendor_runtime, server, point_env_at):
    point_env_at(server)
    router = DataRouter(fast_settings(), provider_options={})
    symbols = ("AAPL", "MSFT", "BRK-B", "JPM", "EURUSD=X", "BTC-USD")
    for symbol in symbols:     # yahoo is down for everyone, polygon for half
        server.fault("yahoo", symbol, "502", times=None)
    for symbol in symbols[::2]:
        server.fault("polygon", symbol, "html_200", times=None)
    results = fall_back(router, reqs(*symbols))
    router.close()
    served = {s: (f.outcome.result.provider if f.outcome.result else None) for s, f in results.items()}
    # EURUSD=X is lost only because alpaca does not serve fx: nobody else could.
    assert served == {"AAPL": "alpaca", "MSFT": "polygon", "BRK-B": "alpaca", "JPM": "polygon",
                      "EURUSD=X": None, "BTC-USD": "polygon"}
    assert failed_tries(results["EURUSD=X"])[-1] == ("polygon", "PROVIDER_UNAVAILABLE")
    # Yahoo's circuit opened after its consecutive failures: not asked again.
    assert "yahoo" in router.circuit_open


def test_fallback_hands_back_what_the_run_would_write(vendor_runtime, server, point_env_at, tmp_path):
    # The run's own loop (fetch_symbols): the served frame is deduplicated
    # and sorted, the payload archived when a raw_dir is given (and then
    # dropped from memory, its path on the payload), else left on the result.
    point_env_at(server)
    server.fault("polygon", "MSFT", "duplicate_timestamps", times=None)
    server.fault("polygon", "AAPL", "unsorted_timestamps", times=None)
    router = DataRouter(fast_settings(priority=["polygon", "yahoo", "alpaca"]), provider_options={})
    kept = fall_back(router, reqs("AAPL", "MSFT"))
    archived = fall_back(router, reqs("AAPL", "MSFT"), raw_dir=tmp_path / "raw")
    router.close()
    assert list(kept) == ["AAPL", "MSFT"]
    for symbol in ("AAPL", "MSFT"):
        outcome, tried = kept[symbol].outcome, failed_tries(kept[symbol])
        assert outcome.error is None and outcome.result.provider == "polygon" and tried == []
        dates = outcome.result.frame["date"]
        assert dates.is_unique and dates.is_monotonic_increasing
        assert outcome.result.raw_payload
        assert kept[symbol].payload.raw_archive is None
        outcome = archived[symbol].outcome
        assert outcome.result.raw_payload is None
        archive = archived[symbol].payload.raw_archive
        assert archive.parent == tmp_path / "raw" and archive.exists()
        assert archived[symbol].audit["raw_archive"] == str(archive)
        assert not any(n.startswith("raw:") for n in outcome.result.notes)
    assert len(list((tmp_path / "raw").glob("polygon__*.gz"))) == 2
    assert any("duplicate date" in n for n in kept["MSFT"].outcome.result.notes)
