"""The synthetic market: determinism, calendars, plausibility, corporate
actions under the forward-adjusted convention, and every injectable defect."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from core.calendar import backfill_window, expected_sessions
from data.providers.base import (ADJ_VENDOR, FetchRequest, NoDataError, Provider, ProviderUnavailable,
                                 normalise_bars)
from data.providers.synthetic import (DEFECTS, ENV_VAR, EPOCH, SyntheticDataProvider, frame_from_payload,
                                      parse_defect_spec)

AS_OF = dt.date(2025, 6, 30)
MARKETS = [("AAPL", "stocks", "XNYS"), ("EURUSD=X", "fx", "24/5"),
           ("BTC-USD", "crypto", "24/7"), ("GC=F", "commodities", "CMES")]


def deep_request(symbol: str = "AAPL", asset_class: str = "stocks", calendar: str = "XNYS",
                 as_of: dt.date = AS_OF) -> FetchRequest:
    window = backfill_window(calendar, as_of, 1260)
    return FetchRequest(symbol, asset_class, window.start, window.end, calendar)


def fetch(provider: SyntheticDataProvider, request: FetchRequest):
    (outcome,) = list(provider.fetch([request]))
    assert outcome.error is None, outcome.error
    return outcome.result


def frame_of(request: FetchRequest, defects=None, seed: int = 0) -> pd.DataFrame:
    return fetch(SyntheticDataProvider(defects or {}, seed=seed), request).frame


def returns(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype="float64")
    return values[1:] / values[:-1] - 1.0


def stock_with(event_column: str, neutral: float, request_for) -> tuple[str, pd.DataFrame]:
    """First of S0000..S0399 whose deep window carries an event (the model
    makes them common enough that this always finds one)."""
    for i in range(400):
        frame = frame_of(request_for(f"S{i:04d}"))
        if (frame[event_column] != neutral).any():
            return f"S{i:04d}", frame
    raise AssertionError(f"no stock with a {event_column} event in 400 symbols")


# ------------------------------------------------------------ contract
def test_is_a_provider_labelled_synthetic_with_vendor_adjustment_and_json_payload():
    provider = SyntheticDataProvider({})
    assert isinstance(provider, Provider)
    result = fetch(provider, deep_request())
    assert result.provider == "synthetic" and provider.name == "synthetic"
    assert result.adjustment == ADJ_VENDOR
    assert result.raw_suffix == "json"
    doc = json.loads(result.raw_payload)
    assert doc["vendor"] == "synthetic" and doc["symbol"] == "AAPL"
    assert len(doc["bars"]["close"]) == len(result.frame)
    assert "ok" in provider.test() and "\n" not in provider.test()


def test_fetch_yields_one_outcome_per_request():
    requests = [deep_request(s, c, cal) for s, c, cal in MARKETS]
    outcomes = list(SyntheticDataProvider({}).fetch(requests))
    assert [o.request.symbol for o in outcomes] == [s for s, _, _ in MARKETS]
    assert all(o.result is not None and o.result.symbol == o.request.symbol for o in outcomes)


def test_frame_already_satisfies_the_bars_contract():
    frame = frame_of(deep_request())
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "adj_close", "volume",
                                   "dividend", "split_ratio"]
    pd.testing.assert_frame_equal(normalise_bars(frame, provider="synthetic", symbol="AAPL"), frame)


@pytest.mark.parametrize("defects", [{}, {"AAPL": ["duplicate_rows=4", "null_values", "split=2",
                                                   "special_dividend=0.1", "negative_price"]}])
def test_payload_replays_to_the_returned_frame(defects):
    result = fetch(SyntheticDataProvider(defects), deep_request())
    pd.testing.assert_frame_equal(frame_from_payload(result.raw_payload), result.frame)


# ------------------------------------------------------------ determinism
def test_same_request_gives_identical_frame_and_payload():
    a = fetch(SyntheticDataProvider({}), deep_request())
    b = fetch(SyntheticDataProvider({}), deep_request())
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.raw_payload == b.raw_payload


def test_seed_and_symbol_change_the_path():
    base = frame_of(deep_request("AAPL"))
    assert not np.array_equal(base.close, frame_of(deep_request("MSFT")).close)
    assert not np.array_equal(base.close, frame_of(deep_request("AAPL"), seed=1).close)


@pytest.mark.parametrize("symbol,asset_class,calendar", MARKETS)
def test_deep_window_and_incremental_windows_agree_byte_for_byte(symbol, asset_class, calendar):
    deep = frame_of(deep_request(symbol, asset_class, calendar))
    sessions = deep["date"].dt.date.tolist()
    for i in (0, 1, 700, len(sessions) - 1):
        day = sessions[i]
        one = frame_of(FetchRequest(symbol, asset_class, day, day, calendar))
        assert len(one) == 1
        pd.testing.assert_frame_equal(one.reset_index(drop=True), deep.iloc[[i]].reset_index(drop=True))
    # A later deep window (new sessions, new events) never rewrites the past.
    later = frame_of(deep_request(symbol, asset_class, calendar, as_of=AS_OF + dt.timedelta(days=400)))
    overlap = later[later["date"] <= deep["date"].iloc[-1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(overlap, deep[deep["date"] >= later["date"].iloc[0]].reset_index(drop=True))


def test_history_with_events_is_identical_in_overlapping_windows():
    symbol, deep = stock_with("split_ratio", 1.0, deep_request)
    split_at = deep.index[deep["split_ratio"] != 1.0][0]
    # An incremental window starting just before the split.
    start, end = deep["date"].iloc[split_at - 2].date(), deep["date"].iloc[-1].date()
    tail = frame_of(FetchRequest(symbol, "stocks", start, end))
    pd.testing.assert_frame_equal(tail, deep.iloc[split_at - 2:].reset_index(drop=True))


# ------------------------------------------------------------ calendars
@pytest.mark.parametrize("symbol,asset_class,calendar", MARKETS)
def test_rows_are_exactly_the_calendar_sessions(symbol, asset_class, calendar):
    window = backfill_window(calendar, AS_OF, 1260)
    frame = frame_of(deep_request(symbol, asset_class, calendar))
    assert len(frame) == 1260 == window.sessions
    expected = expected_sessions(calendar, window.start, window.end)
    assert (frame["date"].to_numpy() == expected.to_numpy(dtype="datetime64[ns]")).all()


def test_range_with_no_sessions_is_no_data():
    saturday = dt.date(2025, 6, 28)
    with pytest.raises(NoDataError):
        SyntheticDataProvider({}).fetch_one(FetchRequest("AAPL", "stocks", saturday, saturday))
    with pytest.raises(NoDataError, match="opens"):
        SyntheticDataProvider({}).fetch_one(FetchRequest("AAPL", "stocks", dt.date(1998, 1, 1),
                                                         dt.date(1999, 12, 31)))


def test_window_reaching_before_the_epoch_starts_at_the_epoch():
    result = fetch(SyntheticDataProvider({}), FetchRequest("AAPL", "stocks", dt.date(1999, 6, 1),
                                                           dt.date(2000, 3, 1)))
    assert result.frame["date"].iloc[0].date() == EPOCH
    assert any("opens" in note for note in result.notes)


# ------------------------------------------------------------ plausibility
VOLATILITY = {"stocks": (0.010, 0.030), "fx": (0.003, 0.009), "crypto": (0.025, 0.060),
              "commodities": (0.009, 0.028)}
LEVELS = {"stocks": (1.0, 20000.0), "fx": (0.1, 500.0), "crypto": (0.5, 1e6), "commodities": (0.5, 20000.0)}
SYMBOLS = {"stocks": "S{}", "fx": "FX{}=X", "crypto": "C{}-USD", "commodities": "F{}=F"}
CALENDARS = {"stocks": "XNYS", "fx": "24/5", "crypto": "24/7", "commodities": "CMES"}


@pytest.mark.parametrize("asset_class", list(SYMBOLS))
def test_bars_are_consistent_positive_and_plausible_without_defects(asset_class):
    for i in range(12):
        result = fetch(SyntheticDataProvider({}),
                       deep_request(SYMBOLS[asset_class].format(i), asset_class, CALENDARS[asset_class]))
        frame = result.frame
        prices = frame[["open", "high", "low", "close", "adj_close"]]
        assert not prices.isna().any().any()
        assert (prices > 0).all().all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert str(frame["volume"].dtype) == "Int64"
        assert (frame["volume"] > 0).all()  # fx too: a zero volume only comes from a defect
        assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
        vol = np.std(np.diff(np.log(frame["adj_close"].to_numpy())))
        lo, hi = VOLATILITY[asset_class]
        assert lo < vol < hi, (asset_class, i, vol)
        lo, hi = LEVELS[asset_class]
        assert lo < frame["close"].median() < hi
        # Prices sit on the class's tick grid (a few decimals, no float noise).
        scale = json.loads(result.raw_payload)["price_scale"]
        assert scale in (100, 1000, 10000, 100000)
        ticks = frame["close"].to_numpy() * scale
        assert np.allclose(ticks, np.round(ticks), atol=1e-6)


def test_stocks_pay_quarterly_dividends_and_other_classes_do_not():
    payers = [frame_of(deep_request(f"S{i}")) for i in range(20)]
    counts = [(f["dividend"] > 0).sum() for f in payers]
    assert max(counts) in range(18, 22)  # 63-session quarters over 1260 sessions
    assert min(counts) == 0  # not every stock pays
    for symbol, asset_class, calendar in MARKETS[1:]:
        frame = frame_of(deep_request(symbol, asset_class, calendar))
        assert (frame["dividend"] == 0).all() and (frame["split_ratio"] == 1).all()


# ------------------------------------------------------------ corporate actions
def adj_factor(frame: pd.DataFrame) -> np.ndarray:
    return (frame["adj_close"] / frame["close"]).to_numpy()


def test_natural_split_drops_close_but_not_adj_close():
    symbol, frame = stock_with("split_ratio", 1.0, deep_request)
    for i in frame.index[frame["split_ratio"] != 1.0]:
        ratio = frame.at[i, "split_ratio"]
        assert ratio in (2.0, 3.0)
        close_ret = frame.at[i, "close"] / frame.at[i - 1, "close"] - 1
        adj_ret = frame.at[i, "adj_close"] / frame.at[i - 1, "adj_close"] - 1
        assert close_ret < -0.35
        assert abs(adj_ret) < 0.15
        assert adj_factor(frame)[i] / adj_factor(frame)[i - 1] == pytest.approx(ratio, rel=1e-3)


def test_dividend_factor_follows_the_forward_convention():
    symbol, frame = stock_with("dividend", 0.0, deep_request)
    factor = adj_factor(frame)
    ex = frame.index[frame["dividend"] > 0]
    for i in ex:
        prev_close, cash = frame.at[i - 1, "close"], frame.at[i, "dividend"]
        assert factor[i] / factor[i - 1] == pytest.approx(prev_close / (prev_close - cash), rel=1e-3)
    # Between ex-dates adj_close / close does not move (up to tick rounding).
    others = np.setdiff1d(np.arange(1, len(frame)), ex)
    assert np.allclose(factor[others], factor[others - 1], rtol=1e-3)


def test_injected_split_is_explained_and_leaves_the_past_alone():
    request = deep_request()
    clean = frame_of(request)
    for ratio in (2.0, 3.0, 0.5):
        frame = frame_of(request, {"AAPL": [f"split={ratio:g}"]})
        (i,) = frame.index[frame["split_ratio"] == ratio]
        assert frame.at[i, "close"] / frame.at[i - 1, "close"] == pytest.approx(1 / ratio, rel=0.2)
        assert abs(frame.at[i, "adj_close"] / frame.at[i - 1, "adj_close"] - 1) < 0.15
        pd.testing.assert_frame_equal(frame.iloc[:i], clean.iloc[:i])


def test_injected_special_dividend_is_explained():
    frame = frame_of(deep_request("EURUSD=X", "fx", "24/5"), {"EURUSD=X": ["special_dividend=0.2"]})
    (i,) = frame.index[frame["dividend"] > 0]
    assert frame.at[i, "dividend"] == pytest.approx(0.2 * frame.at[i - 1, "close"], rel=1e-3)
    assert frame.at[i, "close"] / frame.at[i - 1, "close"] - 1 < -0.12
    assert abs(frame.at[i, "adj_close"] / frame.at[i - 1, "adj_close"] - 1) < 0.05


# ------------------------------------------------------------ defects
def test_missing_sessions_drops_that_many_spread_sessions():
    clean = frame_of(deep_request())
    frame = frame_of(deep_request(), {"AAPL": ["missing_sessions=30"]})
    assert len(frame) == len(clean) - 30
    gone = np.flatnonzero(~clean["date"].isin(frame["date"]))
    assert len(gone) == 30 and np.diff(gone).min() > 1  # spread, not one hole


def test_duplicate_rows_are_kept_in_the_frame():
    clean = frame_of(deep_request())
    frame = frame_of(deep_request(), {"AAPL": ["duplicate_rows=5"]})
    assert len(frame) == len(clean) + 5
    assert frame["date"].duplicated().sum() == 5
    assert frame.drop_duplicates().reset_index(drop=True).equals(clean)


def test_zero_and_negative_prices():
    zero = frame_of(deep_request(), {"AAPL": ["zero_price"]})
    assert (zero["close"] == 0).sum() == 1
    negative = frame_of(deep_request(), {"AAPL": ["negative_price"]})
    assert (negative[["open", "high", "low", "close"]] < 0).any(axis=1).sum() == 1
    assert (negative["close"] < 0).sum() == 1


def test_spike_is_one_unexplained_jump_and_back():
    frame = frame_of(deep_request(), {"AAPL": ["spike"]})
    close_ret, factor = returns(frame["close"]), adj_factor(frame)
    i = int(np.argmax(close_ret)) + 1
    assert close_ret[i - 1] > 1.0
    assert close_ret[i] < -0.5                       # back the next day
    assert factor[i] == pytest.approx(factor[i - 1], rel=1e-3)  # no corporate action explains it
    assert frame.at[i, "split_ratio"] == 1.0 and frame.at[i, "dividend"] == 0.0
    assert frame.at[i, "high"] >= frame.at[i, "close"] >= frame.at[i, "low"]


def test_ohlc_inversion_and_null_values():
    inverted = frame_of(deep_request(), {"AAPL": ["ohlc_inversion"]})
    assert (inverted["high"] < inverted["low"]).sum() == 3
    nulls = frame_of(deep_request(), {"AAPL": ["null_values"]})
    assert nulls["close"].isna().sum() == 3 and nulls["open"].notna().all()


def test_short_history_and_stale():
    clean = frame_of(deep_request())
    short = frame_of(deep_request(), {"AAPL": ["short_history=900"]})
    pd.testing.assert_frame_equal(short, clean.iloc[-900:].reset_index(drop=True))
    stale = frame_of(deep_request(), {"AAPL": ["stale=5"]})
    pd.testing.assert_frame_equal(stale, clean.iloc[:-5])


def test_no_data_and_unavailable_are_typed_outcomes():
    provider = SyntheticDataProvider({"AAPL": ["no_data"], "MSFT": ["unavailable"]})
    outcomes = {o.request.symbol: o for o in provider.fetch([deep_request("AAPL"), deep_request("MSFT")])}
    assert isinstance(outcomes["AAPL"].error, NoDataError) and outcomes["AAPL"].error.code == "NO_DATA"
    assert isinstance(outcomes["MSFT"].error, ProviderUnavailable) and outcomes["MSFT"].error.retryable
    assert outcomes["MSFT"].error.provider == "synthetic"


def test_stale_beyond_the_window_is_no_data():
    day = deep_request().end
    with pytest.raises(NoDataError):
        SyntheticDataProvider({"AAPL": ["stale=1"]}).fetch_one(FetchRequest("AAPL", "stocks", day, day))


def test_defects_touch_only_named_symbols_and_survive_each_other():
    provider = SyntheticDataProvider({"AAPL": ["missing_sessions=1000", "spike", "zero_price"]})
    pd.testing.assert_frame_equal(fetch(provider, deep_request("MSFT")).frame, frame_of(deep_request("MSFT")))
    frame = fetch(provider, deep_request("AAPL")).frame
    assert len(frame) == 260
    assert (frame["close"] == 0).sum() == 1
    with np.errstate(divide="ignore"):
        assert np.nanmax(returns(frame["close"])) > 1.0
    # Dividend ex-dates are never the dropped sessions.
    assert (frame["dividend"] > 0).sum() == (frame_of(deep_request("AAPL"))["dividend"] > 0).sum() > 0


def test_defect_note_is_recorded():
    result = fetch(SyntheticDataProvider({"AAPL": ["stale=2"]}), deep_request())
    assert any("stale=2" in note for note in result.notes)


# ------------------------------------------------------------ the spec grammar
def test_parse_defect_spec_reads_the_grammar():
    spec = "AAPL:missing_sessions=30; msft:spike,negative_price;TSLA:short_history=900;"
    assert parse_defect_spec(spec) == {"AAPL": ["missing_sessions=30"], "MSFT": ["spike", "negative_price"],
                                       "TSLA": ["short_history=900"]}
    assert parse_defect_spec("") == {} and parse_defect_spec("  ") == {}
    every = ",".join(name if kind is None else f"{name}={ {'count': 3, 'ratio': 2, 'fraction': 0.2}[kind] }"
                     for name, kind in DEFECTS.items())
    assert len(parse_defect_spec(f"X:{every}")["X"]) == len(DEFECTS)


@pytest.mark.parametrize("spec,named", [
    ("AAPL", "AAPL"),
    (":spike", "spike"),
    ("AAPL:", "AAPL"),
    ("AAPL:bogus", "bogus"),
    ("AAPL:spike,,zero_price", "empty"),
    ("AAPL:missing_sessions", "missing_sessions"),
    ("AAPL:spike=3", "spike"),
    ("AAPL:missing_sessions=abc", "abc"),
    ("AAPL:missing_sessions=0", "missing_sessions"),
    ("AAPL:split=1", "split"),
    ("AAPL:special_dividend=1.5", "special_dividend"),
])
def test_bad_spec_is_a_value_error_naming_the_problem(spec, named):
    with pytest.raises(ValueError, match=named) as info:
        parse_defect_spec(spec)
    assert "\n" not in str(info.value)


def test_defects_come_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "AAPL:missing_sessions=30")
    assert len(fetch(SyntheticDataProvider(), deep_request()).frame) == 1230
    assert "AAPL" in SyntheticDataProvider().test()
    assert len(fetch(SyntheticDataProvider({}), deep_request()).frame) == 1260  # explicit {} wins
    monkeypatch.setenv(ENV_VAR, "AAPL:warp_drive")
    with pytest.raises(ValueError, match="warp_drive"):
        SyntheticDataProvider()


def test_constructor_validates_explicit_defects():
    with pytest.raises(ValueError, match="nope"):
        SyntheticDataProvider({"AAPL": ["nope"]})
    with pytest.raises(ValueError, match="seed"):
        SyntheticDataProvider({}, seed=-1)
