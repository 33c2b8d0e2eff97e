"""Quality components, score and QA checks on hand-built frames."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data.governance.rules import quality_score

from data.quality import assess_quality, components
from data.quality import findings as F
from data.quality.assessment import quality_settings
from core.settings import Settings
from tests import bar_frames as B

SESSIONS = B.window_sessions()
CLEAN = B.clean_bars(SESSIONS)
AS_OF = B.AS_OF


def assess(frame, **kw):
    kw.setdefault("expected_sessions", SESSIONS)
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("settings", Settings())
    return assess_quality(frame, **kw)


def score_of(report):
    """The runbook score of a report's components (a governance rule)."""
    return quality_score(report.components, Settings().quality.weights)


def codes(report):
    return {f.code: f for f in report.findings}


def test_window_is_1260_sessions_of_the_calendar():
    assert len(SESSIONS) == 1260
    assert SESSIONS[-1] == pd.Timestamp(AS_OF)


def test_clean_frame_scores_one_with_no_findings():
    report = assess(CLEAN)
    assert score_of(report) == 1.0
    assert report.components == {"missing_dates_pct": 0.0, "duplicate_pct": 0.0,
                                 "zero_negative_flag": 0.0, "extreme_spike_flag": 0.0}
    assert report.findings == []
    assert report.rows == report.expected_rows == 1260


def test_exact_score_for_a_known_case():
    # 126 of 1260 sessions missing (0.1), 126 payload duplicates over 1134
    # unique rows (126 / 1260 = 0.1), one negative bar (flag 1), no spike.
    frame = B.with_negative_price(B.without_sessions(CLEAN, range(200, 326)), 600)
    report = assess(frame, payload_duplicates=126)
    assert report.components["missing_dates_pct"] == pytest.approx(0.1, abs=1e-15)
    assert report.components["duplicate_pct"] == pytest.approx(0.1, abs=1e-15)
    assert report.components["zero_negative_flag"] == 1.0
    assert report.components["extreme_spike_flag"] == 0.0
    assert score_of(report) == pytest.approx(1 - (0.1 * 0.3 + 0.1 * 0.2 + 1 * 0.2 + 0 * 0.3), abs=1e-12)
    assert score_of(report) == pytest.approx(0.75, abs=1e-12)


def test_quality_score_is_the_runbook_formula_term_by_term():
    comps = {"missing_dates_pct": 0.37, "duplicate_pct": 0.11, "zero_negative_flag": 1.0, "extreme_spike_flag": 1.0}
    expected = 1.0 - (0.37 * 0.3 + 0.11 * 0.2 + 1.0 * 0.2 + 1.0 * 0.3)
    assert quality_score(comps, Settings().quality.weights) == expected


def test_missing_sessions_are_counted_against_the_calendar():
    frame = B.without_sessions(CLEAN, [10, 11, 500])
    report = assess(frame)
    assert report.components["missing_dates_pct"] == pytest.approx(3 / 1260)
    missing = codes(report)[F.MISSING_SESSIONS]
    assert missing.count == 3 and missing.severity == F.WARNING
    assert missing.sample_dates[0] == str(SESSIONS[10].date())


def test_allow_listed_halts_and_closures_are_not_missing():
    frame = B.without_sessions(CLEAN, [100, 101, 102, 700])
    halt = [str(SESSIONS[100].date()), str(SESSIONS[102].date())]
    closure = str(SESSIONS[700].date())
    settings = Settings().with_overrides({"quality": {"halts": {"ACME": [halt]},
                                                      "allowed_missing_sessions": {"XNYS": [closure]}}})
    report = assess(frame, settings=settings, symbol="ACME", calendar="XNYS")
    assert report.components["missing_dates_pct"] == 0.0
    assert report.expected_rows == 1256
    other = assess(frame, settings=settings, symbol="OTHER", calendar="XNYS")
    assert other.components["missing_dates_pct"] == pytest.approx(3 / 1259)


def test_bar_without_close_does_not_cover_its_session():
    frame = B.with_null_prices(CLEAN, [50, 51])
    report = assess(frame)
    assert report.components["missing_dates_pct"] == pytest.approx(2 / 1260)
    nulls = codes(report)[F.NULL_FIELDS]
    assert nulls.count == 2 and nulls.severity == F.WARNING


def test_all_null_prices_are_critical():
    report = assess(B.with_null_prices(CLEAN))
    assert codes(report)[F.ALL_NULL].severity == F.CRITICAL


def test_duplicates_in_payload_and_in_frame_both_count():
    frame = B.with_duplicates(CLEAN, [5, 6, 7])
    report = assess(frame, payload_duplicates=2)
    assert report.rows == 1260
    assert report.components["duplicate_pct"] == pytest.approx(5 / 1265)
    assert codes(report)[F.DUPLICATE_ROWS].count == 5


def test_negative_volume_sets_the_zero_negative_flag():
    frame = CLEAN.copy()
    frame.loc[42, "volume"] = -5
    report = assess(frame)
    assert report.components["zero_negative_flag"] == 1.0
    assert codes(report)[F.NEGATIVE_VOLUME].sample_dates == (str(SESSIONS[42].date()),)


def test_zero_price_sets_the_zero_negative_flag():
    frame = CLEAN.copy()
    frame.loc[42, ["open", "low"]] = 0.0
    report = assess(frame)
    assert report.components["zero_negative_flag"] == 1.0
    assert codes(report)[F.ZERO_NEGATIVE_PRICE].severity == F.ERROR


def test_unexplained_jump_is_a_spike():
    frame = B.with_price_level_shift(CLEAN, 800, 1.8)
    report = assess(frame)
    assert report.components["extreme_spike_flag"] == 1.0
    spike = codes(report)[F.EXTREME_SPIKE]
    assert spike.severity == F.ERROR and spike.count == 1
    assert spike.sample_dates == (str(SESSIONS[800].date()),)


def test_a_drop_to_less_than_two_thirds_is_a_spike_for_stocks():
    # Moves are measured symmetrically: -40% undoes +66.7%.
    assert assess(B.with_price_level_shift(CLEAN, 800, 0.6)).components["extreme_spike_flag"] == 1.0
    assert assess(B.with_price_level_shift(CLEAN, 800, 0.7)).components["extreme_spike_flag"] == 0.0


def test_spike_threshold_is_per_asset_class():
    frame = B.with_price_level_shift(CLEAN, 800, 1.2)
    assert assess(frame, asset_class="stocks").components["extreme_spike_flag"] == 0.0
    assert assess(frame, asset_class="fx").components["extreme_spike_flag"] == 1.0


def test_split_with_continuous_adj_close_is_not_a_spike():
    frame = B.with_split(CLEAN, 600, 2.0, adjusted=True)
    report = assess(frame)
    assert report.components["extreme_spike_flag"] == 0.0
    assert codes(report)[F.EXPLAINED_MOVE].sample_dates == (str(SESSIONS[600].date()),)
    assert F.FALSE_TICK not in codes(report)


def test_unadjusted_split_is_explained_by_a_stored_split():
    frame = B.with_split(CLEAN, 600, 2.0, adjusted=False)
    assert assess(frame).components["extreme_spike_flag"] == 1.0
    actions = pd.DataFrame({"date": [SESSIONS[600]], "action": ["split"], "value": [2.0]})
    report = assess(frame, corporate_actions=actions)
    assert report.components["extreme_spike_flag"] == 0.0
    assert F.EXPLAINED_MOVE in codes(report)


def test_split_ratio_column_in_the_payload_explains_the_move():
    frame = B.with_split(CLEAN, 600, 3.0, adjusted=False, column=True)
    assert assess(frame).components["extreme_spike_flag"] == 0.0


def test_split_dated_on_a_weekend_applies_to_the_next_bar():
    monday = next(i for i in range(600, 700)
                  if SESSIONS[i].day_of_week == 0 and (SESSIONS[i] - SESSIONS[i - 1]).days == 3)
    frame = B.with_split(CLEAN, monday, 2.0, adjusted=False)
    saturday = SESSIONS[monday] - pd.Timedelta(days=2)
    actions = pd.DataFrame({"date": [saturday], "action": ["split"], "value": [2.0]})
    assert assess(frame, corporate_actions=actions).components["extreme_spike_flag"] == 0.0
    late = pd.DataFrame({"date": [SESSIONS[monday + 1]], "action": ["split"], "value": [2.0]})
    assert assess(frame, corporate_actions=late).components["extreme_spike_flag"] == 1.0


def test_large_special_dividend_is_not_a_spike():
    frame = B.with_special_dividend(CLEAN, 1200, 0.45)
    close = frame["close"].to_numpy()
    assert close[1200] / close[1199] < 0.6      # the raw close falls by more than 40%
    report = assess(frame)
    assert report.components["extreme_spike_flag"] == 0.0
    assert F.EXPLAINED_MOVE in codes(report)


def test_special_dividend_without_adjustment_is_explained_by_a_stored_dividend():
    frame = B.with_special_dividend(CLEAN, 1200, 0.45)
    frame["adj_close"] = frame["close"]
    assert assess(frame).components["extreme_spike_flag"] == 1.0
    actions = pd.DataFrame({"date": [SESSIONS[1200]], "action": ["dividend"], "value": [frame.attrs["dividend"]]})
    assert assess(frame, corporate_actions=actions).components["extreme_spike_flag"] == 0.0


def test_adj_close_jump_without_close_move_is_reported():
    frame = CLEAN.copy()
    frame.loc[900:, "adj_close"] = frame.loc[900:, "adj_close"] * 2.5
    report = assess(frame)
    assert report.components["extreme_spike_flag"] == 0.0
    assert codes(report)[F.ADJ_CLOSE_DISCONTINUITY].sample_dates == (str(SESSIONS[900].date()),)


def test_isolated_false_tick_is_found_by_rolling_median_and_mad():
    frame = B.with_spike(CLEAN, 700, 1.12)   # +12%, well under the stocks spike threshold
    report = assess(frame)
    tick = codes(report)[F.FALSE_TICK]
    assert tick.count == 1 and tick.sample_dates == (str(SESSIONS[700].date()),)
    assert report.components["extreme_spike_flag"] == 0.0


def test_persistent_move_and_clean_noise_are_not_false_ticks():
    assert F.FALSE_TICK not in codes(assess(CLEAN))
    assert F.FALSE_TICK not in codes(assess(B.with_price_level_shift(CLEAN, 700, 1.12)))
    volatile = B.clean_bars(SESSIONS, daily_vol=0.04, seed=11)
    assert F.FALSE_TICK not in codes(assess(volatile, asset_class="crypto"))


def test_false_tick_at_the_first_bar_is_found():
    assert codes(assess(B.with_spike(CLEAN, 0, 0.85)))[F.FALSE_TICK].sample_dates == (str(SESSIONS[0].date()),)


def test_ohlc_inversion_is_critical():
    report = assess(B.with_ohlc_inversion(CLEAN, 300))
    finding = codes(report)[F.OHLC_INCONSISTENT]
    assert finding.severity == F.CRITICAL
    assert finding.sample_dates == (str(SESSIONS[300].date()),)


def test_close_outside_range_is_critical_and_open_outside_is_a_warning():
    frame = CLEAN.copy()
    frame.loc[10, "close"] = frame.loc[10, "high"] * 1.01
    frame.loc[20, "open"] = frame.loc[20, "low"] * 0.99
    found = codes(assess(frame))
    assert found[F.OHLC_INCONSISTENT].count == 1
    assert found[F.OPEN_OUTSIDE_RANGE].severity == F.WARNING
    assert found[F.OPEN_OUTSIDE_RANGE].count == 1


def test_float_noise_is_not_an_ohlc_inconsistency():
    frame = CLEAN.copy()
    frame.loc[10, "close"] = frame.loc[10, "high"] * (1 + 1e-9)
    assert F.OHLC_INCONSISTENT not in codes(assess(frame))


def test_zero_volume_is_a_warning_for_stocks_and_info_for_fx():
    frame = CLEAN.copy()
    frame.loc[:199, "volume"] = 0
    assert codes(assess(frame, asset_class="stocks"))[F.ZERO_VOLUME].severity == F.WARNING
    assert codes(assess(frame, asset_class="fx"))[F.ZERO_VOLUME].severity == F.INFO
    frame = CLEAN.copy()
    frame.loc[3, "volume"] = 0
    assert codes(assess(frame, asset_class="stocks"))[F.ZERO_VOLUME].severity == F.INFO


def test_staleness_in_sessions():
    assert F.STALE not in codes(assess(CLEAN))
    warn = codes(assess(CLEAN.iloc[:-2]))[F.STALE]
    assert warn.severity == F.WARNING and warn.count == 2
    error = codes(assess(CLEAN.iloc[:-6]))[F.STALE]
    assert error.severity == F.ERROR and error.count == 6


def test_bars_after_as_of_are_future_dated():
    report = assess(CLEAN, as_of=SESSIONS[-3].date())
    assert codes(report)[F.FUTURE_DATED].count == 2


def test_bars_on_non_sessions_are_reported():
    frame = pd.concat([CLEAN, CLEAN.iloc[[100]].assign(date=pd.Timestamp("2022-07-02"))])  # a Saturday
    assert codes(assess(frame))[F.UNEXPECTED_SESSIONS].count == 1


def test_empty_frame_is_no_data():
    report = assess(CLEAN.iloc[0:0])
    assert report.rows == 0
    assert codes(report)[F.NO_DATA].severity == F.CRITICAL
    assert report.components["missing_dates_pct"] == 1.0


def test_findings_are_ordered_most_severe_first():
    frame = B.with_ohlc_inversion(B.without_sessions(B.with_price_level_shift(CLEAN, 800, 2.0), [5]), 300)
    ranks = [F.severity_rank(f.severity) for f in assess(frame).findings]
    assert ranks == sorted(ranks, reverse=True)


def test_report_round_trips_to_json_types():
    report = assess(B.with_spike(CLEAN, 500, 2.0))
    as_dict = report.to_dict()
    assert as_dict["extreme_spike_flag"] == 1.0
    assert json.loads(json.dumps(as_dict)) == as_dict
    first = as_dict["findings"][0]      # every field of the finding, as JSON types
    assert F.Finding(first["code"], first["severity"], first["message"], first["count"],
                     tuple(first["sample_dates"])) == report.findings[0]


def test_quality_settings_read_overrides():
    settings = Settings().with_overrides({"quality": {"spike_threshold": {"stocks": 0.1}}})
    assert quality_settings(settings).spike_threshold == {**Settings().quality.spike_threshold,
                                                                     "stocks": 0.1}
    assert assess(B.with_price_level_shift(CLEAN, 800, 1.2), settings=settings).components["extreme_spike_flag"] == 1.0


def test_finding_rejects_unknown_severity():
    with pytest.raises(ValueError):
        F.Finding("X", "fatal", "nope")


def test_move_size_is_symmetric():
    # A doubling and the halving that undoes it are both moves of size 1.0
    # (max(r, 1/r) - 1): both beyond a threshold just under 1.0, neither
    # beyond one just over it.
    dates = np.array(["2024-06-26", "2024-06-27", "2024-06-28"], dtype="datetime64[ns]")
    close = np.array([100.0, 200.0, 100.0])
    for threshold, spikes in ((1.0 - 1e-9, dates[1:]), (1.0 + 1e-9, dates[:0])):
        moves = components.scan_move_dates(dates, close, close, threshold)
        assert np.array_equal(moves.spikes, spikes), threshold
