"""Expected sessions per asset class, from exchange_calendars.

The deep-backfill window is the trailing N expected sessions (``[history]
required_sessions``) of the symbol's calendar ending at the last *complete*
session on or before the as-of date.  It is derived from the calendar,
never from a date offset: five calendar years of NYSE sessions is only
1,255 rows.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from core.clock import utc_now
from core.errors import UsageError

# exchange_calendars builds 20 years back by default; ask for more so that a
# custom --start in the past still resolves.
_CAL_START = pd.Timestamp("1995-01-01")


class CalendarError(UsageError):
    """An unknown calendar, or a date the calendar does not cover: the
    caller names the flag (``--as-of``, ``--start``) it came from."""


class EmptyRangeError(CalendarError):
    """An explicit date range holds no session of a calendar: nothing could
    be fetched, so the range is refused (the caller names its flags)."""


def supported_dates() -> tuple[dt.date, dt.date]:
    """The dates every command accepts in a date flag: from the first day
    the calendars are built for to the last day they know (a year ahead,
    exchange_calendars' default end).  Outside it no calendar can place a
    session, so the date is a usage error naming the flag."""
    return _CAL_START.date(), get_calendar("24/7").last_session.date()


def check_supported_date(flag: str, value: dt.date | None) -> None:
    """CalendarError naming ``flag`` when ``value`` is outside :func:`supported_dates`."""
    if value is None:
        return
    first, last = supported_dates()
    if not first <= _as_date(value) <= last:
        raise CalendarError(f"{flag} {value}: outside the calendars' range {first}..{last}; "
                            f"give a date in that range")


@dataclass(frozen=True)
class Window:
    """An inclusive session range and its expected sessions."""

    calendar: str
    start: dt.date
    end: dt.date
    sessions: int

    def __str__(self) -> str:
        return f"{self.start}..{self.end} ({self.sessions} sessions, {self.calendar})"


@lru_cache(maxsize=None)
def get_calendar(name: str):
    """A cached exchange_calendars calendar (construction costs ~0.1 s)."""
    try:
        return xcals.get_calendar(name, start=_CAL_START)
    except (xcals.errors.InvalidCalendarName, KeyError) as exc:
        raise CalendarError(f"unknown calendar {name!r}") from exc


def known_calendar_names() -> set[str]:
    return set(xcals.get_calendar_names(include_aliases=True))


@lru_cache(maxsize=4096)
def _sessions(name: str, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    cal = get_calendar(name)
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if lo > hi:
        return pd.DatetimeIndex([])
    return cal.sessions_in_range(lo, hi)


def expected_sessions(name: str, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """Sessions of calendar ``name`` in [start, end] (tz-naive midnight)."""
    return _sessions(name, _as_date(start), _as_date(end))


def last_complete_session(name: str, as_of: dt.date, now: dt.datetime | None = None) -> dt.date:
    """The last session on or before ``as_of`` whose close has passed.

    For a past ``as_of`` that is simply the last session <= as_of.  When
    ``as_of`` is today (or later), a session still trading is excluded so that
    a backfill never stores a partial bar.
    """
    cal = get_calendar(name)
    as_of = _as_date(as_of)
    now = now or utc_now()
    ts = pd.Timestamp(as_of)
    if ts > cal.last_session:
        raise CalendarError(f"as-of {as_of} is beyond calendar {name}'s last session {cal.last_session.date()}")
    if ts < cal.first_session:
        raise CalendarError(f"as-of {as_of} is before calendar {name}'s first session {cal.first_session.date()}")
    session = cal.date_to_session(ts, direction="previous")
    if as_of >= now.date():
        # as_of may be days ahead (a 24/7 calendar has sessions every day):
        # step back until a session has actually closed.
        while cal.session_close(session) > pd.Timestamp(now):
            session = cal.previous_session(session)
    return session.date()


def backfill_window(name: str, as_of: dt.date, sessions: int,
                    now: dt.datetime | None = None) -> Window:
    """The trailing ``sessions`` expected sessions ending at the last complete
    session on or before ``as_of``."""
    cal = get_calendar(name)
    end = pd.Timestamp(last_complete_session(name, as_of, now))
    end_idx = cal.sessions.get_loc(end)
    start_idx = end_idx - sessions + 1
    if start_idx < 0:
        raise CalendarError(f"calendar {name} has fewer than {sessions} sessions before {end.date()}")
    return Window(name, cal.sessions[start_idx].date(), end.date(), sessions)


def range_window(name: str, start: dt.date, end: dt.date) -> Window:
    """Window for an explicit --start/--end range."""
    count = len(expected_sessions(name, start, end))
    return Window(name, _as_date(start), _as_date(end), count)


def session_range(name: str, start: dt.date, end: dt.date) -> Window:
    """Window for an explicit range the operator asked for, which must hold
    at least one session of calendar ``name`` (EmptyRangeError otherwise):
    the one check ``ingest_history.py --start/--end`` and ``repair_db.py
    --from/--to`` share."""
    window = range_window(name, start, end)
    if window.sessions == 0:
        raise EmptyRangeError(f"no {name} sessions between {window.start} and {window.end}")
    return window


def next_session(name: str, after: dt.date) -> dt.date:
    cal = get_calendar(name)
    return cal.date_to_session(pd.Timestamp(after) + pd.Timedelta(days=1), direction="next").date()


def sessions_between(name: str, after: dt.date, through: dt.date) -> int:
    """Number of sessions strictly after ``after`` up to and including ``through``."""
    return len(expected_sessions(name, _as_date(after) + dt.timedelta(days=1), through))


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()
