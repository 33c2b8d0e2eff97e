"""A frozen catalogue of frames for :func:`data.quality.assess_quality`.

Each case is a zero-argument builder returning ``(frame, kwargs)``.  The
frozen expected reports (``tests/fixtures/quality_reports.json``) and the
component/check results (``tests/fixtures/quality_functions.json``, see
:func:`functions_of`) were recorded from data/quality as it stood before the
speed work (commits f6519c6..76a5b0d change only tests/);
``tests/unit/test_quality_frozen.py`` asserts that the current code still
produces them; ``bench/quality_speed.py`` times a few of these frames.

quality_functions.json first held the results of frame-based wrappers that
only tests called.  When they were deleted (issue 8) it was carried over to
the production pieces below: unchanged where the case's frame is already one
row per date in date order; for the five cases that are not (duplicates,
unsorted rows, NaT dates) the wrappers' results on the frame as bar_arrays
sees it (duplicates dropped, the last kept, stable sort by date, NaT last),
except the duplicate count, which is the raw frame's; ``stale_sessions`` was
dropped (production counts staleness only as the STALE finding).

Regenerate the fixture only for an intended change of behaviour:

    .venv/bin/python -m tests.quality_cases --write
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from core.calendar import backfill_window
from data.providers.base import FetchRequest
from data.providers.synthetic import SyntheticDataProvider
from data.quality import assess_quality, checks, components
from data.quality import findings as F
from core.settings import Settings
from data.governance.rules import GovernanceRules
from tests import bar_frames as B

FIXTURE = Path(__file__).parent / "fixtures" / "quality_reports.json"
FUNCTIONS_FIXTURE = Path(__file__).parent / "fixtures" / "quality_functions.json"

SESSIONS = B.window_sessions()
AS_OF = B.AS_OF

Case = Callable[[], tuple[pd.DataFrame, dict[str, Any]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def _clean(seed: int = 7, daily_vol: float = 0.01) -> pd.DataFrame:
    return B.clean_bars(SESSIONS, seed=seed, daily_vol=daily_vol)


def _kw(**extra: Any) -> dict[str, Any]:
    return {"expected_sessions": SESSIONS, "as_of": AS_OF, "settings": Settings(), **extra}


def _synthetic(symbol: str, defects: list[str], asset_class: str = "stocks",
               as_of: dt.date = dt.date(2024, 6, 28)) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A synthetic-provider frame (carries split_ratio and dividend columns)
    over the 1260-session XNYS window ending ``as_of``."""
    win = backfill_window("XNYS", as_of, 1260)
    provider = SyntheticDataProvider(defects={symbol: defects} if defects else {})
    result = provider.fetch_one(FetchRequest(symbol, asset_class, win.start, win.end, "XNYS"))
    sessions = B.window_sessions(as_of=as_of)
    return result.frame, {"expected_sessions": sessions, "as_of": as_of, "settings": Settings(),
                          "asset_class": asset_class, "symbol": symbol, "calendar": "XNYS"}


# ------------------------------------------------------------------ hand-built
@case
def clean():
    return _clean(), _kw()


@case
def clean_volatile_crypto():
    return _clean(seed=11, daily_vol=0.04), _kw(asset_class="crypto")


@case
def clean_fx():
    return _clean(seed=3, daily_vol=0.005), _kw(asset_class="fx")


@case
def missing_and_negative_with_payload_dups():
    return B.with_negative_price(B.without_sessions(_clean(), range(200, 326)), 600), _kw(payload_duplicates=126)


@case
def missing_scattered():
    return B.without_sessions(_clean(), [0, 10, 11, 500, 1259]), _kw()


@case
def halts_and_closures_allow_listed():
    frame = B.without_sessions(_clean(), [100, 101, 102, 700])
    halt = [str(SESSIONS[100].date()), str(SESSIONS[102].date())]
    settings = Settings().with_overrides({"quality": {"halts": {"ACME": [halt]},
                                                      "allowed_missing_sessions": {"XNYS": [str(SESSIONS[700].date())]}}})
    return frame, _kw(settings=settings, symbol="ACME", calendar="XNYS")


@case
def allowed_missing_argument():
    frame = B.without_sessions(_clean(), [40, 41, 900])
    return frame, _kw(allowed_missing=[SESSIONS[40], SESSIONS[41], pd.Timestamp("2021-12-25")])


@case
def null_prices_some():
    return B.with_null_prices(_clean(), [50, 51, 800]), _kw()


@case
def null_prices_all():
    return B.with_null_prices(_clean()), _kw()


@case
def null_volume_and_close_only():
    frame = _clean()
    frame.loc[[7, 8], "volume"] = pd.NA
    frame.loc[300, "close"] = np.nan
    frame.loc[301, "adj_close"] = np.nan
    return frame, _kw()


@case
def duplicates_in_frame():
    return B.with_duplicates(_clean(), [5, 6, 7, 1000]), _kw(payload_duplicates=2)


@case
def duplicates_with_different_values_unsorted():
    frame = _clean()
    extra = frame.iloc[[20, 21]].copy()
    extra["close"] = extra["close"] * 1.9
    extra["adj_close"] = extra["close"]
    shuffled = pd.concat([frame, extra]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    return shuffled, _kw()


@case
def negative_volume():
    frame = _clean()
    frame.loc[[42, 43], "volume"] = -5
    return frame, _kw()


@case
def zero_price():
    frame = _clean()
    frame.loc[42, ["open", "low"]] = 0.0
    frame.loc[900, "adj_close"] = 0.0
    return frame, _kw()


@case
def level_shift_up():
    return B.with_price_level_shift(_clean(), 800, 1.8), _kw()


@case
def level_shift_down_small_fx():
    return B.with_price_level_shift(_clean(), 800, 0.8), _kw(asset_class="fx")


@case
def split_adjusted():
    return B.with_split(_clean(), 600, 2.0, adjusted=True), _kw()


@case
def split_unadjusted_unexplained():
    return B.with_split(_clean(), 600, 2.0, adjusted=False), _kw()


@case
def split_unadjusted_stored_action():
    frame = B.with_split(_clean(), 600, 2.0, adjusted=False)
    actions = pd.DataFrame({"date": [SESSIONS[600]], "action": ["split"], "value": [2.0]})
    return frame, _kw(corporate_actions=actions)


@case
def split_column_and_stored_action_same_event():
    frame = B.with_split(_clean(), 600, 3.0, adjusted=False, column=True)
    actions = pd.DataFrame({"date": [SESSIONS[600], SESSIONS[300]], "action": ["split", "dividend"],
                            "value": [3.0, 0.4]})
    return frame, _kw(corporate_actions=actions)


@case
def split_on_weekend_and_late_actions():
    monday = next(i for i in range(600, 700)
                  if SESSIONS[i].day_of_week == 0 and (SESSIONS[i] - SESSIONS[i - 1]).days == 3)
    frame = B.with_split(_clean(), monday, 2.0, adjusted=False)
    actions = pd.DataFrame({"date": [str((SESSIONS[monday] - pd.Timedelta(days=2)).date()),
                                     str(SESSIONS[monday + 40].date()), "2030-01-02"],
                            "action": ["split", "split", "dividend"], "value": ["2.0", "nonsense", 1.0]})
    return frame, _kw(corporate_actions=actions)


@case
def special_dividend_adjusted():
    return B.with_special_dividend(_clean(), 1200, 0.45), _kw()


@case
def special_dividend_unadjusted_stored():
    frame = B.with_special_dividend(_clean(), 1200, 0.45)
    frame["adj_close"] = frame["close"]
    actions = pd.DataFrame({"date": [SESSIONS[1200]], "action": ["dividend"], "value": [frame.attrs["dividend"]]})
    return frame, _kw(corporate_actions=actions)


@case
def adj_close_discontinuity():
    frame = _clean()
    frame.loc[900:, "adj_close"] = frame.loc[900:, "adj_close"] * 2.5
    return frame, _kw()


@case
def false_ticks():
    frame = B.with_spike(B.with_spike(_clean(), 700, 1.12), 0, 0.85)
    return B.with_spike(frame, 1259, 1.09), _kw()


@case
def big_spike_reverting():
    return B.with_spike(_clean(), 500, 2.0), _kw()


@case
def ohlc_defects():
    frame = B.with_ohlc_inversion(_clean(), 300)
    frame.loc[10, "close"] = frame.loc[10, "high"] * 1.01
    frame.loc[20, "open"] = frame.loc[20, "low"] * 0.99
    frame.loc[30, "close"] = frame.loc[30, "high"] * (1 + 1e-9)
    return frame, _kw()


@case
def zero_volume_many():
    frame = _clean()
    frame.loc[:199, "volume"] = 0
    return frame, _kw()


@case
def zero_volume_few_fx():
    frame = _clean()
    frame.loc[[3, 4], "volume"] = 0
    return frame, _kw(asset_class="fx")


@case
def stale_warning():
    return _clean().iloc[:-2].reset_index(drop=True), _kw()


@case
def stale_error():
    return _clean().iloc[:-6].reset_index(drop=True), _kw()


@case
def future_dated():
    return _clean(), _kw(as_of=SESSIONS[-3].date())


@case
def non_session_bar():
    frame = _clean()
    return pd.concat([frame, frame.iloc[[100]].assign(date=pd.Timestamp("2022-07-02"))]), _kw()


@case
def empty():
    return _clean().iloc[0:0], _kw()


@case
def one_row():
    return _clean().iloc[[600]].reset_index(drop=True), _kw()


@case
def two_rows_spike():
    frame = _clean().iloc[[600, 601]].reset_index(drop=True)
    frame.loc[1, ["close", "adj_close"]] = frame.loc[1, "close"] * 3
    return frame, _kw()


@case
def short_history_ten_rows():
    return B.last_sessions(B.with_spike(_clean(), 1255, 1.3), 10), _kw()


@case
def short_history_forty_rows_tick():
    return B.last_sessions(B.with_spike(_clean(), 1240, 1.2), 40), _kw()


@case
def short_history_year():
    return B.last_sessions(_clean(), 252), _kw()


@case
def string_dates_and_text_prices():
    frame = _clean().iloc[:300].copy()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame["close"] = frame["close"].astype(object)
    frame.loc[5, "close"] = "n/a"
    frame["volume"] = frame["volume"].astype("float64")
    return frame, _kw()


@case
def tz_aware_dates():
    frame = _clean().iloc[-100:].copy()
    frame["date"] = frame["date"].dt.tz_localize("America/New_York")
    return frame.reset_index(drop=True), _kw()


@case
def many_defects_together():
    frame = B.with_ohlc_inversion(B.without_sessions(B.with_price_level_shift(_clean(), 800, 2.0), [5]), 300)
    frame = B.with_duplicates(B.with_null_prices(frame, [77]), [3, 900])
    frame.loc[15, "volume"] = -1
    return frame, _kw(payload_duplicates=4, asset_class="crypto")


@case
def overridden_thresholds():
    quality = {"spike_threshold": {"stocks": 0.1}, "false_tick": {"window": 8, "mad_z": 4.0, "scale_window": 21}}
    frame = B.with_spike(B.with_price_level_shift(_clean(), 800, 1.2), 400, 1.07)
    return frame, _kw(settings=Settings().with_overrides({"quality": quality}))


@case
def adj_close_all_null_false_tick_on_close():
    frame = B.with_spike(_clean(), 650, 1.15)
    frame["adj_close"] = np.nan
    return frame, _kw()


@case
def twelve_rows_with_nulls():
    frame = B.with_null_prices(B.last_sessions(B.with_spike(_clean(), 1254, 1.25), 12), [2, 9])
    return frame, _kw()


@case
def store_shaped_frame_with_provider_column():
    frame = B.with_spike(_clean(), 333, 0.88)
    frame["provider"] = "file"
    frame["volume"] = frame["volume"].astype("Int64")
    return frame, _kw()


@case
def even_scale_window_and_window():
    quality = {"false_tick": {"window": 10, "mad_z": 5.0, "scale_window": 40}}
    frame = B.with_spike(B.with_spike(_clean(seed=5), 3, 1.1), 640, 0.9)
    return frame, _kw(settings=Settings().with_overrides({"quality": quality}))


@case
def unsorted_without_duplicates():
    frame = B.with_spike(_clean(), 120, 1.3)
    return frame.iloc[::-1].reset_index(drop=True), _kw()


@case
def nat_date():
    frame = _clean()
    frame.loc[5, "date"] = pd.NaT
    frame.loc[9, "date"] = pd.NaT
    actions = pd.DataFrame({"date": [SESSIONS[700]], "action": ["split"], "value": [2.0]})
    return frame, _kw(corporate_actions=actions)


@case
def split_column_on_null_close_row_and_bad_stored_split():
    frame = B.with_split(_clean(), 600, 2.0, adjusted=False, column=True)
    frame.loc[600, ["close", "adj_close"]] = np.nan
    frame = B.with_split(frame, 900, 4.0, adjusted=False)
    frame["split_ratio"] = frame["split_ratio"].fillna(1.0)
    frame.loc[900, "split_ratio"] = 4.0
    frame["dividend"] = 0.0
    frame.loc[[300, 301], "dividend"] = [0.5, np.inf]
    actions = pd.DataFrame({"date": [SESSIONS[900], SESSIONS[900], SESSIONS[300]],
                            "action": ["split", "split", "dividend"], "value": [-1.0, 4.0, np.nan]})
    return frame, _kw(corporate_actions=actions)


@case
def empty_corporate_actions_frame():
    actions = pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]"), "action": pd.Series([], dtype=object),
                            "value": pd.Series([], dtype="float64")})
    return B.with_split(_clean(), 600, 2.0, adjusted=False), _kw(corporate_actions=actions)


@case
def two_splits_on_one_bar():
    monday = next(i for i in range(600, 700)
                  if SESSIONS[i].day_of_week == 0 and (SESSIONS[i] - SESSIONS[i - 1]).days == 3)
    frame = B.with_split(_clean(), monday, 6.0, adjusted=False)
    actions = pd.DataFrame({"date": [SESSIONS[monday] - pd.Timedelta(days=2), SESSIONS[monday] - pd.Timedelta(days=1),
                                     SESSIONS[monday]],
                            "action": ["split", "split", "dividend"], "value": [2.0, 3.0, 0.1]})
    return frame, _kw(corporate_actions=actions)


# ------------------------------------------------------------------ synthetic provider
@case
def synthetic_clean():
    return _synthetic("SYNA", [])


@case
def synthetic_split_and_special_dividend():
    return _synthetic("SYNB", ["split=3", "special_dividend=0.4"])


@case
def synthetic_value_defects():
    return _synthetic("SYNC", ["spike", "zero_price", "negative_price", "ohlc_inversion", "null_values"])


@case
def synthetic_rows_defects():
    return _synthetic("SYND", ["missing_sessions=30", "duplicate_rows=7"])


@case
def synthetic_short_and_stale():
    return _synthetic("SYNE", ["short_history=300", "stale=4"])


@case
def synthetic_crypto_spike():
    return _synthetic("BTC-USD", ["spike", "split=2"], asset_class="crypto")


def _stored_events(frame: pd.DataFrame) -> pd.DataFrame:
    events = frame.loc[(frame["dividend"] != 0) | (frame["split_ratio"] != 1), ["date", "dividend", "split_ratio"]]
    is_dividend = events["dividend"].to_numpy() != 0
    return pd.DataFrame({"date": events["date"].to_numpy(), "action": np.where(is_dividend, "dividend", "split"),
                         "value": np.where(is_dividend, events["dividend"].to_numpy(),
                                           events["split_ratio"].to_numpy())})


@case
def synthetic_events_in_columns_and_store():
    frame, kw = _synthetic("SYNG", ["split=2", "special_dividend=0.45"])
    return frame, {**kw, "corporate_actions": _stored_events(frame)}


@case
def synthetic_dividend_payer_stored_actions():
    frame, kw = _synthetic("SYNF", ["special_dividend=0.3"])
    return frame.drop(columns=["dividend", "split_ratio"]), {**kw, "corporate_actions": _stored_events(frame)}


def report_of(name: str) -> dict[str, Any]:
    """The report of case ``name`` as JSON types, with the score the
    governance rules give its components (the score is a rule, not a
    quality check; the frozen reference pins both)."""
    frame, kwargs = CASES[name]()
    report = assess_quality(frame, **kwargs)
    rules = GovernanceRules.from_settings(kwargs["settings"])
    return {**report.to_dict(), "quality_score": rules.quality_score(report.components)}


def _iso(dates) -> list[str]:
    return [str(pd.Timestamp(d).date()) for d in dates]


def _findings(found) -> list[dict[str, Any]]:
    return [f.to_dict() for f in found]


def compact(value: Any) -> Any:
    """Long lists (every covered date of a window) as their length, ends
    and SHA-256: the fixture stays small and still pins every element."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 12:
        digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
        return {"count": len(value), "head": value[:5], "tail": value[-5:], "sha256": digest}
    return value


# The report's findings of each QA check, by code, in report order.
_CHECK_CODES = {
    "ohlc_findings": (F.OHLC_INCONSISTENT, F.OPEN_OUTSIDE_RANGE),
    "false_tick_findings": (F.FALSE_TICK,),
    "null_findings": (F.ALL_NULL, F.NULL_FIELDS),
    "zero_volume_findings": (F.ZERO_VOLUME,),
    "staleness_findings": (F.FUTURE_DATED, F.STALE),
}


def functions_of(name: str) -> dict[str, Any]:
    """What production computes from the raw frame of case ``name`` with
    default settings (stocks, no allow-list; the case's corporate actions):
    the array functions :func:`data.quality.assess_quality` calls, on
    :func:`components.bar_arrays` of the frame (row positions are positions
    in those arrays), plus that report's components and its findings by
    check; also a few non-default parameters (an allow-list, the 0.1
    threshold without actions, a false-tick test on close).  JSON types with
    long lists compacted (:func:`compact`); a call that raises records the
    exception's type."""
    frame, kwargs = CASES[name]()
    expected = components.date_values(kwargs["expected_sessions"])
    actions = kwargs.get("corporate_actions")
    bars, duplicates = components.bar_arrays(frame)
    report = assess_quality(frame, expected_sessions=kwargs["expected_sessions"], as_of=kwargs["as_of"],
                            settings=Settings(), asset_class="stocks", corporate_actions=actions,
                            allowed_missing=[])

    def moves(threshold: float, acts: pd.DataFrame | None) -> dict[str, list[str]]:
        found = components.scan_move_dates(bars.dates, bars.close, bars.adj_close, threshold, acts,
                                           bars.split_ratio, bars.dividend)
        return {k: _iso(getattr(found, k)) for k in ("spikes", "explained", "adj_discontinuities")}

    def findings_of(codes: tuple[str, ...]) -> list[dict[str, Any]]:
        return _findings(f for f in report.findings if f.code in codes)

    calls: dict[str, Callable[[], Any]] = {
        "frame_duplicates": lambda: duplicates,
        "covered_dates": lambda: _iso(bars.dates[~np.isnan(bars.close)]),
        "missing_sessions": lambda: _iso(components.missing_session_dates(expected, bars.dates, bars.close)),
        "missing_sessions_allowed": lambda: _iso(components.missing_session_dates(
            components.expected_after_allowed(expected, expected[100:103]), bars.dates, bars.close)),
        "missing_dates_pct": lambda: report.components["missing_dates_pct"],
        "nonpositive_price_mask": lambda: np.flatnonzero(components.nonpositive_mask(
            bars.open, bars.high, bars.low, bars.close, bars.adj_close)).tolist(),
        "negative_volume_mask": lambda: np.flatnonzero(bars.volume < 0).tolist(),
        "zero_negative_flag": lambda: report.components["zero_negative_flag"],
        "scan_moves": lambda: moves(0.5, actions),
        "scan_moves_fx": lambda: moves(0.1, None),
        "extreme_spike_flag": lambda: report.components["extreme_spike_flag"],
        "false_tick_mask_close": lambda: np.flatnonzero(checks.false_tick_mask(bars.close, 7, 6.0, 0.03, 30)).tolist(),
        **{key: (lambda codes=codes: findings_of(codes)) for key, codes in _CHECK_CODES.items()},
    }
    out: dict[str, Any] = {}
    for key, call in calls.items():
        try:
            out[key] = call()
        except Exception as exc:  # noqa: BLE001 - the frozen behaviour includes what raises
            out[key] = {"raises": type(exc).__name__}
    return compact(json.loads(json.dumps(out)))


def main(argv: list[str]) -> None:
    if "--write" not in argv:
        raise SystemExit("usage: python -m tests.quality_cases --write   (overwrites the frozen fixtures)")
    reports = {name: report_of(name) for name in CASES}
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(reports, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(reports)} reports to {FIXTURE}")
    functions = {name: functions_of(name) for name in CASES}
    FUNCTIONS_FIXTURE.write_text(json.dumps(functions, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(functions)} function results to {FUNCTIONS_FIXTURE}")


if __name__ == "__main__":
    main(sys.argv[1:])
