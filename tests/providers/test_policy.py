"""The one provider policy (data/providers/policy.py), as the router and the
vendor base class both apply it."""
from __future__ import annotations

import datetime as dt

import pytest

from core.settings import Settings
from data.collectors.data_router import DataRouter
from data.providers.base import (EntitlementError, FetchRequest, MalformedDataError, NoDataError, ProviderError,
                                 ProviderUnavailable, RateLimitError, SchemaError, WrongSymbolError)
from data.providers.policy import (ProviderHealth, ProviderRunState, capability_refusal, counts_toward_breaker,
                                   entitlement_problem, latency_percentiles)
from data.providers.polygon import PolygonDataProvider
from tests.providers.vendor_setup import fast_settings

CAPABILITIES = Settings().providers.capabilities


def _crash() -> ProviderError:
    err = ProviderError("unexpected KeyError: 'x'")
    err.code = "PROVIDER_CRASH"
    return err


@pytest.mark.parametrize("error, counts", [
    (ProviderUnavailable("HTTP 503"), True),
    (SchemaError("missing close"), True),
    (MalformedDataError("line 3"), True),
    (_crash(), True),
    (RateLimitError("HTTP 429"), False),
    (NoDataError("nothing"), False),
    (WrongSymbolError("asked AAPL, got MSFT"), False),
])
def test_which_failures_count_toward_the_breaker(error, counts):
    assert counts_toward_breaker(error) is counts


def test_run_state_breaker_opens_after_n_in_a_row_and_a_success_resets_it():
    state = ProviderRunState(3)
    for _ in range(2):
        state.record(ProviderUnavailable("down"))
    state.record(None)
    for _ in range(2):
        state.record(SchemaError("drift"))
    state.record(RateLimitError("slow down"))   # neither counts nor resets
    assert not state.circuit_open and state.refusal() is None
    state.record(MalformedDataError("bad row"))
    assert state.circuit_open
    assert state.refusal() == "circuit open after consecutive failures"


def test_run_state_not_entitled_keeps_the_first_cause():
    state = ProviderRunState(5)
    state.record(EntitlementError("HTTP 401: bad key", provider="polygon"))
    state.record(EntitlementError("HTTP 403: other"))
    assert state.not_entitled == "ENTITLEMENT: polygon: HTTP 401: bad key"
    assert state.refusal() == "not entitled this run (ENTITLEMENT: polygon: HTTP 401: bad key)"


def test_entitlement_rule():
    caps = CAPABILITIES
    assert entitlement_problem("yahoo", caps, {}) is None
    assert entitlement_problem("yahoo", caps, {"YAHOO_ENABLED": "off"}) == "YAHOO_ENABLED=off"
    assert entitlement_problem("polygon", caps, {"POLYGON_API_KEY": "k"}) == "POLYGON_ENABLED not set to true"
    assert entitlement_problem("alpaca", caps, {"ALPACA_ENABLED": "true", "ALPACA_API_KEY": "k"}) == \
        "missing ALPACA_SECRET_KEY"


def test_capability_rule():
    end = dt.date(2026, 11, 20)
    deep = FetchRequest("AAPL", "stocks", end - dt.timedelta(days=1825), end)
    assert capability_refusal(CAPABILITIES["alpaca"], deep) == \
        "window of 1826 days exceeds max_history_days 730"
    assert capability_refusal(CAPABILITIES["alpaca"], FetchRequest("GC=F", "commodities", end, end)) == \
        "does not serve commodities"
    assert capability_refusal(CAPABILITIES["yahoo"], deep) is None


def test_router_and_vendor_refuse_with_the_same_words():
    """The same policy answers the router (skip reason) and the vendor
    (CapabilityError / EntitlementError, nothing sent)."""
    end = dt.date(2026, 11, 20)
    deep = FetchRequest("AAPL", "stocks", end - dt.timedelta(days=1825), end)
    env = {"POLYGON_ENABLED": "true"}
    router = DataRouter(fast_settings(priority=["polygon"]), env=env)
    vendor = PolygonDataProvider(settings=fast_settings(), env=env)
    outcome = next(iter(vendor.fetch([deep])))
    assert router.candidates(deep).skipped["polygon"] == "not entitled (missing POLYGON_API_KEY)"
    assert isinstance(outcome.error, EntitlementError)
    assert "missing POLYGON_API_KEY; nothing sent" in str(outcome.error)

    env = {"ALPACA_ENABLED": "true", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}
    router = DataRouter(fast_settings(priority=["alpaca"]), env=env)
    from data.providers.alpaca import AlpacaDataProvider

    outcome = next(iter(AlpacaDataProvider(settings=fast_settings(), env=env).fetch([deep])))
    why = router.candidates(deep).skipped["alpaca"]
    assert str(outcome.error).endswith(f"{why}; nothing sent") and outcome.attempts == 0


def test_router_health_summary_folds_in_the_run_state():
    router = DataRouter(fast_settings(), env={}, factories={"yahoo": _HealthOnly})
    router.provider("yahoo")
    assert router.health_summary("yahoo")["circuit_open"] is False
    for _ in range(router.circuit_threshold):
        router.record_outcome("yahoo", ProviderUnavailable("down"))
    router.record_outcome("yahoo", EntitlementError("HTTP 401"))
    summary = router.health_summary("yahoo")
    assert summary["circuit_open"] is True and summary["entitled"] is False
    assert latency_percentiles([]) == (None, None)
    assert latency_percentiles([1.0, 2.0, 3.0]) == (2.0, 2.9)


class _HealthOnly:
    name = "yahoo"

    def __init__(self):
        self.health = ProviderHealth("yahoo")

    def fetch(self, requests):
        return iter(())

    def test(self) -> str:
        return "ok"
