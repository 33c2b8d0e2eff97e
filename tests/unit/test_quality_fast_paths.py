"""The numpy/scipy fast paths of data.quality against the pandas algorithms
they replaced, on many random inputs: the same values bit for bit.

The ``_reference_*`` functions are the implementations as they stood before
the speed work (pandas rolling medians, drop_duplicates, one event at a
time), kept here as the specification the fast code must reproduce.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.quality import assess_quality, checks, components
from data.quality import findings as F
from tests.quality_cases import CASES

_MAD_TO_SIGMA = 1.4826


def _reference_false_tick_mask(prices, window=11, mad_z=8.0, min_move=0.05, scale_window=63):
    n = len(prices)
    out = np.zeros(n, dtype=bool)
    window = max(3, int(window) | 1)
    usable = np.isfinite(prices) & (prices > 0)
    idx = np.flatnonzero(usable)
    if len(idx) < window:
        return out
    x = pd.Series(np.log(prices[idx]))
    median = x.rolling(window, center=True, min_periods=window // 2 + 1).median().to_numpy()
    returns = x.diff()
    spread = (returns - returns.rolling(scale_window, center=True, min_periods=window).median()).abs()
    sigma = _MAD_TO_SIGMA * spread.rolling(scale_window, center=True, min_periods=window).median().to_numpy()
    values = x.to_numpy()
    dev = np.abs(values - median)
    to_prev = values - np.r_[np.nan, values[:-1]]
    to_next = values - np.r_[values[1:], np.nan]
    to_prev = np.where(np.isnan(to_prev), to_next, to_prev)
    to_next = np.where(np.isnan(to_next), to_prev, to_next)
    isolated = (np.sign(to_prev) == np.sign(to_next)) & (np.minimum(np.abs(to_prev), np.abs(to_next)) > dev / 2)
    with np.errstate(invalid="ignore"):
        flagged = (dev > np.log1p(min_move)) & (dev > mad_z * sigma) & isolated
    out[idx[np.nan_to_num(flagged, nan=False).astype(bool)]] = True
    return out


def _reference_actions_per_bar(dates: pd.DatetimeIndex, corporate_actions, split_ratio, dividend_column):
    n = len(dates)
    split = np.ones(n)
    dividend = np.zeros(n)
    events = []
    if corporate_actions is not None and not corporate_actions.empty:
        for d, action, value in zip(pd.DatetimeIndex(components.date_values(corporate_actions["date"])), corporate_actions["action"],
                                    pd.to_numeric(corporate_actions["value"], errors="coerce")):
            events.append((d, str(action), float(value)))
    for values, action, neutral in ((split_ratio, "split", 1.0), (dividend_column, "dividend", 0.0)):
        if values is not None:
            keep = np.isfinite(values) & (values != neutral) & (values != 0.0)
            events.extend((d, action, float(v)) for d, v in zip(dates[keep], values[keep]))
    seen = set()
    for d, action, value in events:
        if (d, action) in seen or not np.isfinite(value):
            continue
        seen.add((d, action))
        i = int(dates.searchsorted(d, side="left"))
        if i >= n:
            continue
        if action == "split" and value > 0:
            split[i] *= value
        elif action == "dividend":
            dividend[i] += value
    return split, dividend


def _random_series(rng, n):
    x = rng.normal(size=n)
    if rng.random() < 0.3:
        x = np.round(x, 1)                   # ties
    if n and rng.random() < 0.5:
        x[rng.choice(n, int(rng.integers(0, n + 1)), replace=False)] = np.nan
    return x


def test_rolling_median_centered_is_pandas_rolling_median():
    rng = np.random.default_rng(20240628)
    for _ in range(1500):
        n = int(rng.integers(0, 160))
        size = int(rng.integers(1, 80))
        min_periods = int(rng.integers(0, size + 1))
        x = _random_series(rng, n)
        expected = pd.Series(x, dtype="float64").rolling(size, center=True, min_periods=min_periods).median()
        got = checks.rolling_median_centered(x, size, min_periods)
        assert np.array_equal(got, expected.to_numpy(), equal_nan=True), (n, size, min_periods)


def test_rolling_median_refuses_min_periods_beyond_the_window_like_pandas():
    with pytest.raises(ValueError):
        pd.Series(np.ones(20)).rolling(5, center=True, min_periods=11).median()
    with pytest.raises(ValueError):
        checks.rolling_median_centered(np.ones(20), 5, 11)


def test_median_at_is_the_rolling_median_at_those_positions():
    rng = np.random.default_rng(5)
    for _ in range(500):
        n = int(rng.integers(1, 200))
        size = int(rng.integers(1, 70))
        min_periods = int(rng.integers(0, size + 1))
        x = _random_series(rng, n)
        positions = np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
        full = checks.rolling_median_centered(x, size, min_periods)
        assert np.array_equal(checks.median_at(x, size, min_periods, positions), full[positions], equal_nan=True)


def _random_prices(rng):
    n = int(rng.integers(0, 700))
    vol = float(rng.choice([0.003, 0.01, 0.02, 0.04, 0.08]))
    prices = 100 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    for _ in range(int(rng.integers(0, 6))):            # false ticks, both ways
        if n:
            prices[int(rng.integers(0, n))] *= float(rng.choice([0.7, 0.85, 0.93, 1.07, 1.15, 1.4, 3.0]))
    if n and rng.random() < 0.3:                         # nulls and non-positive prices are skipped
        prices[rng.choice(n, min(n, 4), replace=False)] = rng.choice([np.nan, 0.0, -1.0, np.inf], size=min(n, 4))
    return prices


def test_false_tick_mask_is_the_pandas_algorithm():
    rng = np.random.default_rng(11)
    regimes = {"none": 0, "few": 0, "many": 0}
    flagged = 0
    for _ in range(600):
        prices = _random_prices(rng)
        window = int(rng.choice([3, 5, 8, 11, 15]))
        scale_window = int(rng.choice([15, 21, 40, 63, 64]))
        mad_z = float(rng.choice([3.0, 5.0, 8.0]))
        min_move = float(rng.choice([0.0, 0.01, 0.02, 0.05, 0.1]))
        if max(3, window | 1) > scale_window:
            continue
        expected = _reference_false_tick_mask(prices, window, mad_z, min_move, scale_window)
        got = checks.false_tick_mask(prices, window, mad_z, min_move, scale_window)
        assert np.array_equal(got, expected), (len(prices), window, mad_z, min_move, scale_window)
        flagged += int(expected.sum())
        # Which path the fast code took: bars whose both steps exceed half the floor.
        usable = prices[np.isfinite(prices) & (prices > 0)]
        if len(usable) >= max(3, window | 1):
            steps = np.diff(np.log(usable))
            both = np.sign(steps[:-1]) == -np.sign(steps[1:])
            count = int((both & (np.minimum(np.abs(steps[:-1]), np.abs(steps[1:])) > np.log1p(min_move) / 2)).sum())
            regimes["none" if count == 0 else "few" if count <= 128 else "many"] += 1
    assert all(v >= 20 for v in regimes.values()), regimes
    assert flagged >= 50


def test_unique_last_order_and_bar_arrays_are_drop_duplicates_then_sort():
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(0, 60))
        days = rng.integers(0, 40, n).astype("datetime64[D]").astype("datetime64[ns]")
        if n and rng.random() < 0.3:
            days[rng.choice(n, min(n, 3), replace=False)] = np.datetime64("NaT")
        if rng.random() < 0.3:
            days = np.unique(days)                      # the store's case: already in order
        frame = pd.DataFrame({"date": days, "row": np.arange(len(days))})
        expected = frame.drop_duplicates("date", keep="last")
        if not expected["date"].is_monotonic_increasing:
            expected = expected.sort_values("date", kind="stable")
        order, dropped = components.unique_last_order(days)
        rows = np.arange(len(days)) if order is None else order
        assert rows.tolist() == expected["row"].tolist()
        assert dropped == len(days) - len(expected)
        # bar_arrays (what assess_quality reads) keeps those rows, in that order.
        bars_frame = frame.assign(**{k: frame["row"].astype("float64")
                                     for k in ("open", "high", "low", "close", "adj_close", "volume")})
        bars, duplicates = components.bar_arrays(bars_frame)
        assert duplicates == dropped
        assert bars.dates.view("i8").tolist() == expected["date"].to_numpy().view("i8").tolist()   # NaT too
        for column in (bars.open, bars.high, bars.low, bars.close, bars.adj_close, bars.volume):
            assert column.tolist() == expected["row"].tolist()


def test_actions_per_bar_is_one_event_at_a_time():
    rng = np.random.default_rng(17)
    base = pd.Timestamp("2024-01-01")
    for _ in range(400):
        n = int(rng.integers(1, 40))
        dates = np.sort(rng.choice(80, n, replace=False)).astype("timedelta64[D]") + np.datetime64(base, "D")
        dates = dates.astype("datetime64[ns]")
        k = int(rng.integers(0, 12))
        actions = pd.DataFrame({
            "date": (rng.integers(-3, 85, k).astype("timedelta64[D]") + np.datetime64(base, "D")).astype(
                "datetime64[ns]"),
            "action": rng.choice(["split", "dividend", "spinoff"], k),
            "value": rng.choice([2.0, 3.0, 0.5, 0.25, -1.0, 0.0, np.nan, 1.5], k),
        }) if k or rng.random() < 0.5 else None
        split_ratio = np.where(rng.random(n) < 0.1, rng.choice([2.0, 0.0, np.nan, 4.0], n), 1.0) \
            if rng.random() < 0.5 else None
        dividend = np.where(rng.random(n) < 0.15, rng.choice([0.3, -0.1, np.nan, np.inf], n), 0.0) \
            if rng.random() < 0.5 else None
        expected_split, expected_cash = _reference_actions_per_bar(pd.DatetimeIndex(dates), actions, split_ratio,
                                                                   dividend)
        split, cash = components.actions_per_bar(dates, actions, split_ratio, dividend)
        if split is None:     # nothing applies: the reference left the neutral factors
            split, cash = np.ones(n), np.zeros(n)
        assert np.array_equal(split, expected_split) and np.array_equal(cash, expected_cash)


def test_date_values_gives_session_midnights_in_ns_for_every_input_kind():
    sessions = np.array(["2024-06-27", "2024-06-28"], dtype="datetime64[ns]")
    ns = pd.DatetimeIndex(sessions)
    inputs = [ns, pd.Series(ns), sessions, ["2024-06-27", "2024-06-28"],
              pd.Series(ns + pd.Timedelta(hours=15)),                     # intraday stamps: the session day
              pd.Series(ns.tz_localize("America/New_York")),
              pd.Series(ns.astype("datetime64[s]"))]
    for values in inputs:
        got = components.date_values(values)
        assert got.dtype == np.dtype("datetime64[ns]")
        assert np.array_equal(got, sessions)


def test_sample_dates_of_a_datetime_array_are_the_timestamp_dates():
    days = np.array(["1700-03-01T00:00", "1969-12-31T13:30", "2024-06-28", "NaT", "2262-04-11"],
                    dtype="datetime64[ns]")
    assert F.sample_dates(days) == tuple(str(pd.Timestamp(d).date()) for d in days)
    assert F.sample_dates(days, 2) == ("1700-03-01", "1969-12-31")
    assert F.sample_dates(days[:0]) == ()


def test_assess_quality_leaves_its_inputs_as_they_were():
    # The fast paths read the frame's own buffers (no copies): none may be written.
    for name, build in CASES.items():
        frame, kwargs = build()
        before = frame.copy(deep=True)
        actions = kwargs.get("corporate_actions")
        actions_before = None if actions is None else actions.copy(deep=True)
        sessions_before = kwargs["expected_sessions"].copy()
        assess_quality(frame, **kwargs)
        pd.testing.assert_frame_equal(frame, before, obj=name)
        if actions is not None:
            pd.testing.assert_frame_equal(actions, actions_before, obj=name)
        assert kwargs["expected_sessions"].equals(sessions_before), name
