"""The product's one clock: UTC, and the text forms its files and tables hold.

Every timestamp the product writes is UTC and comes from here.  The text
forms differ by what holds them, and each is kept exactly as the files and
tables have always had it (re-runs compare them, and the store's content
hash covers some), so there is one function per form, named for its users:

=================  ==============================  ============================================
function           example                         written to
=================  ==============================  ============================================
``audit_stamp``    ``2026-11-22T06:48:00Z``        the audit tables' run stamps (started_at,
                                                   dead letters, repairs), governance_halt.log
``record_stamp``   ``2026-11-22T06:48:00.123456Z`` store rows' ``ts``/``created_at`` (events,
                                                   alerts, orders, fills, run ends) and the
                                                   operator logs (``logs/*.jsonl``, the .log)
``trail_stamp``    ``2026-11-22T06:48:00.123Z``    the ingestion audit trail
                                                   (``runtime/audit/audit.jsonl``), alert
                                                   artifacts
``run_id_stamp``   ``20261122T064800Z``            the time part of run ids (sortable, safe
                                                   in file names)
``console_stamp``  ``06:48:00``                    Stage 2's terminal console (the day is in
                                                   the log files)
=================  ==============================  ============================================

Each takes the instant to write (default: now); a naive datetime is taken
to be UTC already.
"""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def utc_now() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(UTC)


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return utc_now()
    return now.astimezone(UTC) if now.tzinfo is not None else now


def audit_stamp(now: dt.datetime | None = None) -> str:
    """Seconds, as the audit tables write it: ``2026-11-22T06:48:00Z``."""
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_stamp(now: dt.datetime | None = None) -> str:
    """Microseconds, as store rows and operator logs write it:
    ``2026-11-22T06:48:00.123456Z``."""
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trail_stamp(now: dt.datetime | None = None) -> str:
    """Milliseconds, as the ingestion audit trail writes it:
    ``2026-11-22T06:48:00.123Z``."""
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def run_id_stamp(now: dt.datetime | None = None) -> str:
    """Compact seconds, the time part of a run id: ``20261122T064800Z``."""
    return _utc(now).strftime("%Y%m%dT%H%M%SZ")


def console_stamp(now: dt.datetime | None = None) -> str:
    """``HH:MM:SS`` UTC, for a terminal's log lines."""
    return _utc(now).strftime("%H:%M:%S")


def instant_of(created: float) -> dt.datetime:
    """A ``time.time()`` value (a log record's ``created``) as a UTC datetime."""
    return dt.datetime.fromtimestamp(created, UTC)
