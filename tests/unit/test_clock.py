"""One UTC clock: each text form exactly as its files and tables hold it,
and no other module reads the wall clock or writes a timestamp by hand."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from core.clock import audit_stamp, record_stamp, run_id_stamp, trail_stamp, utc_now

REPO = Path(__file__).resolve().parents[2]
INSTANT = dt.datetime(2026, 11, 22, 6, 48, 0, 123456, tzinfo=dt.timezone.utc)


def test_each_form_is_the_one_on_disk():
    assert audit_stamp(INSTANT) == "2026-11-22T06:48:00Z"
    assert record_stamp(INSTANT) == "2026-11-22T06:48:00.123456Z"
    assert trail_stamp(INSTANT) == "2026-11-22T06:48:00.123Z"
    assert run_id_stamp(INSTANT) == "20261122T064800Z"
    # The milliseconds are cut, not rounded, as isoformat(timespec="milliseconds") did.
    assert trail_stamp(INSTANT.replace(microsecond=999999)) == "2026-11-22T06:48:00.999Z"


def test_an_instant_is_written_in_utc():
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert audit_stamp(INSTANT.astimezone(new_york)) == "2026-11-22T06:48:00Z"
    assert record_stamp(INSTANT.replace(tzinfo=None)) == "2026-11-22T06:48:00.123456Z"   # naive: already UTC
    now = utc_now()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)


def test_the_defaults_read_the_clock_now():
    before = utc_now().replace(microsecond=0)
    stamps = audit_stamp(), record_stamp(), trail_stamp()
    after = utc_now()
    for stamp in stamps:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert before <= when <= after


HAND_MADE = re.compile(r"datetime\.now\(|\.utcnow\(|isoformat\(timespec|strftime\(\s*[\"'f]*%Y-?%m-?%dT")


def test_no_other_module_reads_the_clock_or_formats_a_stamp():
    product = [p for pkg in ("core", "data", "database", "reports", "trading", "cli", "scripts")
               for p in (REPO / pkg).rglob("*.py")] + sorted(REPO.glob("*.py"))
    offenders = [str(p.relative_to(REPO)) for p in product
                 if p != REPO / "core" / "clock.py" and HAND_MADE.search(p.read_text())]
    assert not offenders, f"use core.clock in {offenders}"
