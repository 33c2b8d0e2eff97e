"""Each real client (yfinance, polygon-api-client, alpaca-py) fetches daily
bars from the loopback server through our provider class, normalised to the
bars contract."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from data.providers.alpaca import AlpacaDataProvider
from data.providers.base import (ADJ_UNADJUSTED, ADJ_VENDOR, BAR_COLUMNS, CapabilityError, EntitlementError,
                                 FetchRequest)
from core.settings import VENDOR_QUIRK_KEYS
from data.providers.http_vendor import BASE_QUIRKS, QuirksError
from data.providers.polygon import PolygonDataProvider
from data.providers.yahoo import YahooDataProvider
from tests.providers.vendor_setup import FAST, WINDOW, fast_settings

pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword")

START, END = WINDOW


def req(symbol: str, asset_class: str = "stocks", start: dt.date = START, end: dt.date = END) -> FetchRequest:
    return FetchRequest(symbol, asset_class, start, end)


def expected(server, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    frame = server.frames[symbol]
    inside = (frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))
    return frame.loc[inside].reset_index(drop=True)


def assert_bars_match(result_frame: pd.DataFrame, want: pd.DataFrame, *, adj: bool) -> None:
    assert list(result_frame.columns[:len(BAR_COLUMNS)]) == list(BAR_COLUMNS)
    assert result_frame["date"].dtype == "datetime64[ns]"
    assert result_frame["date"].tolist() == want["date"].tolist()
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(result_frame[col].to_numpy(), want[col].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(result_frame["adj_close"].to_numpy(),
                               (want["adj_close"] if adj else want["close"]).to_numpy(), rtol=1e-6)
    assert result_frame["volume"].astype("int64").tolist() == want["volume"].astype("int64").tolist()


def by_symbol(outcomes):
    return {o.request.symbol: o for o in outcomes}


def test_yfinance_fetches_bars_dividends_and_splits_through_the_provider(vendor_runtime, server):
    provider = YahooDataProvider(settings=fast_settings(), base_url=server.url)
    requests = [req("AAPL"), req("BTC-USD", "crypto", START, dt.date(2024, 2, 8)), req("EURUSD=X", "fx"),
                req("GC=F", "commodities")]
    outcomes = by_symbol(provider.fetch(requests))
    assert set(outcomes) == {r.symbol for r in requests}
    for r in requests:
        o = outcomes[r.symbol]
        assert o.error is None, o.error
        assert o.result.adjustment == ADJ_VENDOR
        assert_bars_match(o.result.frame, expected(server, r.symbol, r.start, r.end), adj=True)
    aapl = outcomes["AAPL"].result.frame
    want = expected(server, "AAPL", START, END)
    assert aapl.loc[aapl["dividend"] > 0, "date"].tolist() == want.loc[want["dividend"] > 0, "date"].tolist()
    assert aapl.loc[aapl["split_ratio"] != 1, "split_ratio"].tolist() == [2.0]
    assert outcomes["AAPL"].result.raw_payload.startswith(b'{"chart"')
    # The handshake (cookie page, crumb) then a tz probe and a data request per symbol.
    kinds = [r.kind for r in server.records("yahoo", kinds=("handshake", "probe", "data"))]
    assert kinds.count("data") == 4 and kinds.count("probe") == 4
    assert kinds.count("handshake") == 2, kinds
    assert any("crumb=fakeCrumb" in r.path for r in server.records("yahoo", kinds=("data",)))


def test_yfinance_caches_live_under_the_runtime_dir(vendor_runtime, server):
    from yfinance import cache as yf_cache

    provider = YahooDataProvider(settings=fast_settings(), base_url=server.url)
    assert list(provider.fetch([req("MSFT")]))[0].error is None
    cache_dir = vendor_runtime / "cache" / "yfinance"
    assert yf_cache._TzDBManager.get_location() == str(cache_dir)
    assert (cache_dir / "tkr-tz.db").exists()
    # The tz is cached: a second fetch sends only the data request.
    server.reset_log()
    assert list(provider.fetch([req("MSFT")]))[0].error is None
    assert [r.kind for r in server.records("yahoo")] == ["data"]


def test_polygon_client_follows_next_url_and_maps_tickers(vendor_runtime, server):
    server.polygon_page_size = 15       # three pages for 40 bars
    provider = PolygonDataProvider(settings=fast_settings(), base_url=server.url)
    requests = [req("AAPL"), req("BRK-B"), req("EURUSD=X", "fx"), req("BTC-USD", "crypto", START, dt.date(2024, 2, 8))]
    outcomes = by_symbol(provider.fetch(requests))
    for r in requests:
        o = outcomes[r.symbol]
        assert o.error is None, o.error
        assert o.result.adjustment == ADJ_UNADJUSTED
        assert_bars_match(o.result.frame, expected(server, r.symbol, r.start, r.end), adj=False)
    paths = [rec.path for rec in server.records("polygon", "AAPL")]
    assert len(paths) == 3 and sum("cursor=" in p for p in paths) == 2
    wire = {rec.path.split("/")[4] for rec in server.records("polygon")}
    assert wire == {"AAPL", "BRK.B", "C:EURUSD", "X:BTCUSD"}
    # The key travels as a bearer header, never in a URL.
    assert all(rec.headers.get("Authorization", "").startswith("Bearer ") for rec in server.records("polygon"))


def test_alpaca_batches_many_symbols_per_request_and_pages_across_them(vendor_runtime, server):
    server.alpaca_page_size = 50      # 3 symbols x 40 bars -> 3 pages per adjustment
    provider = AlpacaDataProvider(settings=fast_settings(), base_url=server.url)
    requests = [req("AAPL"), req("MSFT"), req("BRK-B"), req("BTC-USD", "crypto", START, dt.date(2024, 2, 8))]
    outcomes = by_symbol(provider.fetch(requests))
    for r in requests:
        o = outcomes[r.symbol]
        assert o.error is None, o.error
        adjusted = r.asset_class == "stocks"
        assert o.result.adjustment == (ADJ_VENDOR if adjusted else ADJ_UNADJUSTED)
        assert_bars_match(o.result.frame, expected(server, r.symbol, r.start, r.end), adj=adjusted)
    stock_calls = [rec for rec in server.records("alpaca") if "/v2/stocks/bars" in rec.path]
    # raw + adjustment=all, 3 pages each, every call naming all three symbols.
    assert len(stock_calls) == 6
    assert all(set(rec.symbols) == {"AAPL", "MSFT", "BRK-B"} for rec in stock_calls)
    assert sum("adjustment=all" in rec.path for rec in stock_calls) == 3
    crypto_calls = [rec for rec in server.records("alpaca") if "/v1beta3/crypto/us/bars" in rec.path]
    assert len(crypto_calls) == 1 and "BTC%2FUSD" in crypto_calls[0].path


def test_alpaca_is_never_asked_for_more_than_730_days(vendor_runtime, server):
    provider = AlpacaDataProvider(settings=fast_settings(), base_url=server.url)
    long_window = req("AAPL", "stocks", dt.date(2021, 1, 4), dt.date(2024, 2, 26))
    outcome, = provider.fetch([long_window])
    assert isinstance(outcome.error, CapabilityError)
    assert "max_history_days 730" in str(outcome.error)
    assert server.count("alpaca") == 0


@pytest.mark.parametrize("cls, env_missing, expect", [
    (PolygonDataProvider, {"POLYGON_API_KEY": None}, "missing POLYGON_API_KEY"),
    (PolygonDataProvider, {"POLYGON_ENABLED": "false"}, "POLYGON_ENABLED=false"),
    (PolygonDataProvider, {"POLYGON_ENABLED": None}, "POLYGON_ENABLED not set to true"),
    (AlpacaDataProvider, {"ALPACA_SECRET_KEY": None}, "missing ALPACA_SECRET_KEY"),
    (YahooDataProvider, {"YAHOO_ENABLED": "false"}, "YAHOO_ENABLED=false"),
])
def test_entitlement_comes_from_env_and_sends_nothing(vendor_runtime, server, monkeypatch, cls, env_missing,
                                                       expect):
    for name, value in env_missing.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    provider = cls(settings=fast_settings(), base_url=server.url)      # never raises
    outcomes = list(provider.fetch([req("AAPL"), req("MSFT")]))
    assert [type(o.error) for o in outcomes] == [EntitlementError, EntitlementError]
    assert all(expect in str(o.error) and o.attempts == 0 for o in outcomes)
    assert server.count(kinds=("handshake", "probe", "data")) == 0
    assert provider.health.summary()["entitled"] is False
    assert expect in provider.test()


def test_constructors_take_no_arguments_and_read_base_urls_from_env(vendor_runtime, server, point_env_at):
    point_env_at(server)
    for cls in (YahooDataProvider, PolygonDataProvider, AlpacaDataProvider):
        provider = cls()
        assert provider.base_url_text() == server.url
        assert provider.quirks["rate_limits"]      # the published limits from settings


def test_quirks_layering_and_unknown_options(vendor_runtime, monkeypatch):
    monkeypatch.setenv("POLYGON_BASE_URL", "http://127.0.0.1:9")
    settings = fast_settings(polygon={"batch_size": 1, "rate_limits": [[7, 60.0]]})
    provider = PolygonDataProvider(settings=settings)
    assert provider.quirks["rate_limits"] == [[7, 60.0]]          # settings over code defaults
    assert provider.base_url_text() == "http://127.0.0.1:9"       # env over settings
    provider = PolygonDataProvider(settings=settings, base_url="http://127.0.0.1:10", workers=9)
    assert provider.base_url_text() == "http://127.0.0.1:10"      # constructor over env
    assert provider.quirks["workers"] == 9
    with pytest.raises(QuirksError, match="rate_limit "):
        PolygonDataProvider(settings=settings, **{"rate_limit": [[1, 1]]})
    with pytest.raises(QuirksError, match="requests, seconds"):
        PolygonDataProvider(settings=settings, rate_limits=[[5]])
    assert FAST["deadline_seconds"] == provider.deadline


def test_the_settings_schema_lists_exactly_the_keys_each_vendor_has_defaults_for():
    """core.settings.VENDOR_QUIRK_KEYS (what the settings loader accepts)
    and the defaults here name the same keys: a default nobody may set, or a
    settable key with no default, is a mistake."""
    for cls in (YahooDataProvider, PolygonDataProvider, AlpacaDataProvider):
        defaults = set(BASE_QUIRKS) | set(cls.VENDOR_QUIRKS) | {"circuit_breaker_failures"}
        assert defaults == set(VENDOR_QUIRK_KEYS[cls.name]), cls.name


def test_runbook_test_line_answers_reachability_and_entitlement(vendor_runtime, server):
    yahoo = YahooDataProvider(settings=fast_settings(), base_url=server.url)
    line = yahoo.test()
    assert line.startswith("yahoo: reachable, entitled (SPY ") and "\n" not in line and server.url in line

    server.fault("polygon", "SPY", "401")
    line = PolygonDataProvider(settings=fast_settings(), base_url=server.url).test()
    assert line.startswith("polygon: reachable, NOT entitled (") and "HTTP 401" in line

    server.fault("alpaca", "SPY", "503", times=None)
    line = AlpacaDataProvider(settings=fast_settings(), base_url=server.url).test()
    assert line.startswith("alpaca: UNREACHABLE (") and "HTTP 503" in line

    line = PolygonDataProvider(settings=fast_settings(), base_url="http://127.0.0.1:9").test()
    assert line.startswith("polygon: UNREACHABLE (")
