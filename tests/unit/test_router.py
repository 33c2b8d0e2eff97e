import datetime as dt

from data.collectors.data_router import DataRouter
from data.providers.base import FetchRequest, ProviderUnavailable
from data.providers.policy import provider_entitled
from core.settings import Settings

DEEP = (dt.date(2021, 11, 15), dt.date(2026, 11, 20))
DAYS = (dt.date(2026, 11, 18), dt.date(2026, 11, 20))


def req(symbol, asset_class, window=DEEP):
    return FetchRequest(symbol, asset_class, *window)


def test_entitlement_reads_enabled_flags_and_keys():
    caps = Settings().providers.capabilities
    assert provider_entitled("yahoo", caps, {}) == (True, "entitled")
    assert provider_entitled("yahoo", caps, {"YAHOO_ENABLED": "false"})[0] is False
    assert provider_entitled("polygon", caps, {"POLYGON_ENABLED": "true"}) == (False, "missing POLYGON_API_KEY")
    assert provider_entitled("polygon", caps, {"POLYGON_ENABLED": "true", "POLYGON_API_KEY": "k"})[0]
    assert provider_entitled("alpaca", caps, {"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"})[0] is False


ALL_ON = {"POLYGON_ENABLED": "true", "POLYGON_API_KEY": "k", "ALPACA_ENABLED": "true",
          "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}


def test_capability_matrix_and_priority(settings):
    router = DataRouter(settings, env=ALL_ON)
    assert router.candidates(req("AAPL", "stocks")).providers == ["yahoo", "polygon"]  # alpaca: > 730 days
    assert router.candidates(req("AAPL", "stocks", DAYS)).providers == ["yahoo", "polygon", "alpaca"]
    assert router.candidates(req("GC=F", "commodities")).providers == ["yahoo"]
    assert router.candidates(req("EURUSD=X", "fx", DAYS)).providers == ["yahoo", "polygon"]
    skipped = router.candidates(req("AAPL", "stocks")).skipped
    assert "exceeds max_history_days 730" in skipped["alpaca"]


def test_no_candidate_explains_every_provider(settings):
    router = DataRouter(settings, env={"YAHOO_ENABLED": "false"})
    cands = router.candidates(req("GC=F", "commodities"))
    assert cands.providers == []
    assert set(cands.skipped) == {"yahoo", "polygon", "alpaca"}
    assert "YAHOO_ENABLED=false" in cands.decision


def test_run_state_entitlement_and_circuit_breaker(settings):
    router = DataRouter(settings, env=ALL_ON)
    router.mark_not_entitled("polygon", "ENTITLEMENT")
    assert router.candidates(req("AAPL", "stocks")).providers == ["yahoo"]
    for _ in range(router.circuit_threshold):
        router.record_outcome("yahoo", ProviderUnavailable("HTTP 503"))
    assert router.candidates(req("AAPL", "stocks")).providers == []


def test_file_provider_joins_when_a_directory_is_configured(settings, tmp_path):
    router = DataRouter(settings, env={}, data_dir=str(tmp_path))
    assert router.candidates(req("AAPL", "stocks")).providers == ["yahoo", "file"]
    only = DataRouter(settings, env={}, only="synthetic")
    assert only.candidates(req("AAPL", "stocks")).providers == ["synthetic"]
    assert "synthetic" not in DataRouter(settings, env={}).priority
