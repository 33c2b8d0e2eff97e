"""Issue 10, failure 17 (edge parts) and the bounds behind failures 3, 4
and 10, at the unit level: the symbol alphabet, the universe's structure
and size, the calendars' date range and the empty-range check."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings, strategies as st

from core import calendar as cal
from core import universe as U
from core.symbols import InvalidSymbolError, filename_for, normalise_symbol

PATH_LIKE = ["/", "\\", "..", "\x00", "\x1f", "\x7f", "\n", "\r", "\t", " ", "%2F"]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_an_accepted_symbol_is_never_path_like(text):
    try:
        symbol = normalise_symbol(text)
    except InvalidSymbolError as exc:
        assert "plausible ticker" in str(exc) or "must be text" in str(exc)
        return
    assert "/" not in symbol and "\\" not in symbol and ".." not in symbol
    assert symbol.isprintable() and " " not in symbol
    assert filename_for(symbol) == symbol      # safe as a file name and in a URL path as it is


@pytest.mark.parametrize("text", ["A/../../ETC/PASSWD", "BRK/B", "..", "A..B", "A\\B", "AA\x00", "A\x1bB", "A B"])
def test_path_like_symbol_text_is_refused(text):
    with pytest.raises(InvalidSymbolError, match="plausible ticker"):
        normalise_symbol(text)


@pytest.mark.parametrize("text", ["AAPL", "BRK-B", "BRK.B", "EURUSD=X", "GC=F", "BTC-USD", "^GSPC", " spy "])
def test_the_vendors_separators_still_pass(text):
    assert normalise_symbol(text) == text.strip().upper()


def write(tmp_path, document) -> str:
    path = tmp_path / "universe.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_the_universe_entry_count_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(U, "MAX_SYMBOLS", 3)
    U.load_universe(write(tmp_path, {"symbols": ["A", "B", "C"]}))
    with pytest.raises(U.UniverseError, match="4 entries; at most 3"):
        U.load_universe(write(tmp_path, {"symbols": ["A", "B", "C", "D"]}))


def test_the_universe_file_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(U, "MAX_UNIVERSE_BYTES", 64)
    with pytest.raises(U.UniverseError, match="at most 64 bytes"):
        U.load_universe(write(tmp_path, {"symbols": [f"S{i}" for i in range(40)]}))


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=50_000))
def test_any_nesting_depth_is_parsed_or_refused_in_one_line(tmp_path_factory, depth):
    path = write(tmp_path_factory.mktemp("u"), '{"symbols": [' + "[" * depth + "]" * depth + "]}")
    with pytest.raises(U.UniverseError) as raised:
        U.load_universe(path)
    assert len(str(raised.value).splitlines()) == 1 and path in str(raised.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_malformed(tmp_path, constant):
    with pytest.raises(U.UniverseError, match=constant.lstrip("-")):
        U.load_universe(write(tmp_path, f'{{"version": {constant}, "symbols": ["AAA"]}}'))


@pytest.mark.parametrize("version", [0, -1, 1.0, "1", True, None, [1]])
def test_the_version_is_a_positive_integer(tmp_path, version):
    with pytest.raises(U.UniverseError, match='"version" must be a positive integer'):
        U.load_universe(write(tmp_path, {"version": version, "symbols": ["AAA"]}))


def test_a_directory_is_not_a_universe_file(tmp_path):
    with pytest.raises(U.UniverseError, match="not a regular file"):
        U.load_universe(tmp_path)


def test_the_supported_dates_are_where_the_calendars_place_sessions():
    first, last = cal.supported_dates()
    assert first == dt.date(1995, 1, 1) and last >= dt.date.today() + dt.timedelta(days=300)
    cal.check_supported_date("--start", first)
    with pytest.raises(cal.CalendarError, match=r"--start 1994-12-31: outside the calendars' range"):
        cal.check_supported_date("--start", dt.date(1994, 12, 31))
    with pytest.raises(cal.CalendarError, match="before calendar XNYS's first session 1995-01-03"):
        cal.last_complete_session("XNYS", dt.date(1995, 1, 2))


@settings(max_examples=30, deadline=None)
@given(st.dates(dt.date(1996, 1, 1), dt.date(2026, 1, 1)), st.integers(0, 12))
def test_session_range_is_refused_exactly_when_the_range_holds_no_session(start, days):
    end = start + dt.timedelta(days=days)
    sessions = len(cal.expected_sessions("XNYS", start, end))
    if sessions:
        assert cal.session_range("XNYS", start, end).sessions == sessions
    else:
        with pytest.raises(cal.EmptyRangeError, match=f"no XNYS sessions between {start} and {end}"):
            cal.session_range("XNYS", start, end)
