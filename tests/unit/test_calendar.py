import datetime as dt

import pytest

from core.calendar import (CalendarError, backfill_window, expected_sessions, last_complete_session,
                           next_session)

UTC = dt.timezone.utc


def test_five_calendar_years_of_nyse_is_only_1255_sessions():
    assert len(expected_sessions("XNYS", dt.date(2021, 11, 22), dt.date(2026, 11, 20))) == 1255


def test_backfill_window_is_exactly_1260_sessions_of_each_calendar():
    for name in ("XNYS", "24/5", "24/7", "CMES"):
        window = backfill_window(name, dt.date(2026, 11, 20), 1260, now=dt.datetime(2026, 11, 22, tzinfo=UTC))
        assert window.sessions == 1260
        assert len(expected_sessions(name, window.start, window.end)) == 1260
        assert window.end <= dt.date(2026, 11, 20)
    assert backfill_window("XNYS", dt.date(2026, 11, 20), 1260, now=dt.datetime(2026, 11, 22, tzinfo=UTC)).start == \
        dt.date(2021, 11, 15)


def test_weekend_as_of_ends_on_friday():
    assert last_complete_session("XNYS", dt.date(2026, 11, 22), dt.datetime(2026, 11, 23, tzinfo=UTC)) == \
        dt.date(2026, 11, 20)


def test_a_session_still_trading_today_is_left_out():
    during = dt.datetime(2026, 11, 20, 15, 0, tzinfo=UTC)        # NYSE open, closes 21:00 UTC
    after = dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    assert last_complete_session("XNYS", dt.date(2026, 11, 20), during) == dt.date(2026, 11, 19)
    assert last_complete_session("XNYS", dt.date(2026, 11, 20), after) == dt.date(2026, 11, 20)
    # A future as-of on a 24/7 calendar walks back to the last closed day.
    assert last_complete_session("24/7", dt.date(2026, 11, 25), during) == dt.date(2026, 11, 19)


def test_next_session_skips_holidays():
    assert next_session("XNYS", dt.date(2026, 11, 25)) == dt.date(2026, 11, 27)  # Thanksgiving 26th


def test_unknown_calendar_is_a_typed_error():
    with pytest.raises(CalendarError, match="MOON"):
        expected_sessions("MOON", dt.date(2026, 1, 1), dt.date(2026, 2, 1))
