"""The border check (``data.quality.border``) and the store's own guard
(``database.bars``): an invalid value is named and never replaces a stored
valid bar, whatever class of value it is (Hypothesis over value classes)."""
from __future__ import annotations

import math

import pandas as pd
from hypothesis import given, settings, strategies as st

from data.quality.border import MAX_PRICE, invalid_bars, locate_lines
from database.bars import MAX_STORED_PRICE
from database.manager import Database
from tests import bar_frames as B
from tests.store_reads import corrections
from tests.store_seed import seed_store

SESSIONS = B.window_sessions(sessions=20)
# Value classes a vendor file can hold for one price: (value, valid?).
PRICE_CLASSES = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e300, MAX_PRICE * 2]).map(
        lambda v: (v, False)),
    st.floats(min_value=-1e6, max_value=-1e-9).map(lambda v: (v, False)),
    st.floats(min_value=1e-3, max_value=1e6).map(lambda v: (v, True)),
)
FIELDS = st.sampled_from(["open", "high", "low", "close", "adj_close"])


def test_the_store_and_the_border_share_one_bound():
    assert MAX_STORED_PRICE == MAX_PRICE


def test_a_clean_frame_has_no_invalid_bar():
    assert invalid_bars(B.clean_bars(SESSIONS)) == []


def test_each_problem_is_named_with_its_date_field_and_line():
    frame = B.clean_bars(SESSIONS)
    frame.loc[3, "close"] = float("nan")
    frame.loc[5, ["high", "low"]] = [frame.loc[5, "low"], frame.loc[5, "high"]]
    frame.loc[7, "volume"] = -1
    raw = ("Date,Open\n" + "".join(f"{d.date()},1\n" for d in frame["date"])).encode()
    found = locate_lines(invalid_bars(frame), raw)
    described = [b.describe() for b in found]
    day = lambda i: str(frame["date"][i].date())
    assert described[0] == f"{day(3)} close=nan (not a number), line 5"
    assert any(d.startswith(f"{day(5)} high=") and "below low" in d for d in described)
    assert any(d.startswith(f"{day(7)} volume=-1 (negative)") for d in described)
    assert {b.date for b in found} == {day(3), day(5), day(7)}


@settings(max_examples=60, deadline=None)
@given(field=FIELDS, value=PRICE_CLASSES, position=st.integers(0, len(SESSIONS) - 1))
def test_border_verdict_follows_the_value_class(field, value, position):
    number, valid = value
    frame = B.clean_bars(SESSIONS)
    bar = frame.loc[position]
    if valid:    # a positive finite price is still invalid outside [low, high]
        inside = (field in ("open", "close") and bar["low"] <= number <= bar["high"]) or field == "adj_close"
        valid = inside or (field == "high" and number >= max(bar["open"], bar["close"])) \
            or (field == "low" and number <= min(bar["open"], bar["close"]))
    frame.loc[position, field] = number
    found = invalid_bars(frame)
    assert (found == []) == valid
    if not valid:
        assert {b.date for b in found} == {str(bar["date"].date())}


@settings(max_examples=25, deadline=None)
@given(field=FIELDS, value=PRICE_CLASSES)
def test_the_store_never_overwrites_a_valid_bar_with_an_invalid_one(tmp_path_factory, field, value):
    number, _ = value
    good = B.clean_bars(SESSIONS)
    with Database(tmp_path_factory.mktemp("store") / "s.db") as db:
        seed_store(db, {"AAPL": good})
        before = db.bars.read("AAPL", include_provenance=True)
        worse = good.copy()
        worse.loc[4, field] = number
        seed_store(db, {"AAPL": worse}, run_id="run-worse")
        after = db.bars.read("AAPL", include_provenance=True)
        if invalid_bars(worse):
            pd.testing.assert_frame_equal(after, before)          # the guard held
            assert corrections(db) == []
        else:                                                       # a valid correction, old row kept
            assert math.isclose(after[field][4], number)
            (kept,) = corrections(db, "AAPL")
            assert kept["run_id"] == "run-worse" and math.isclose(kept[field], good[field][4])


def test_the_store_may_replace_an_invalid_stored_bar_with_a_valid_one(tmp_path):
    good = B.clean_bars(SESSIONS)
    bad = good.copy()
    bad.loc[2, "close"] = -1.0
    with Database(tmp_path / "s.db") as db:
        seed_store(db, {"AAPL": bad})
        seed_store(db, {"AAPL": good}, run_id="run-fix")
        assert db.bars.read("AAPL")["close"][2] == good["close"][2]
        assert [r["close"] for r in corrections(db, "AAPL")] == [-1.0]
