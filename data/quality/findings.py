"""What a quality check reports: a :class:`Finding` per problem found.

Severity says what the finding does downstream:

* ``info``     - reported only (explained moves, zero volume on FX);
* ``warning``  - reported, shown by ``verify_db_status.py``;
* ``error``    - a real defect in the data; ``ingest_history.py
  --fail-on-quality`` exits 2 when one exists;
* ``critical`` - the data cannot be trusted at all: the symbol is
  QUARANTINED whatever its row count and score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

INFO = "info"
WARNING = "warning"
ERROR = "error"
CRITICAL = "critical"
SEVERITIES = (INFO, WARNING, ERROR, CRITICAL)
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

# Finding codes.  Each is documented in docs/error_codes.md.
MISSING_SESSIONS = "MISSING_SESSIONS"
UNEXPECTED_SESSIONS = "UNEXPECTED_SESSIONS"
DUPLICATE_ROWS = "DUPLICATE_ROWS"
ZERO_NEGATIVE_PRICE = "ZERO_NEGATIVE_PRICE"
NEGATIVE_VOLUME = "NEGATIVE_VOLUME"
EXTREME_SPIKE = "EXTREME_SPIKE"
EXPLAINED_MOVE = "EXPLAINED_MOVE"
ADJ_CLOSE_DISCONTINUITY = "ADJ_CLOSE_DISCONTINUITY"
OHLC_INCONSISTENT = "OHLC_INCONSISTENT"
OPEN_OUTSIDE_RANGE = "OPEN_OUTSIDE_RANGE"
FALSE_TICK = "FALSE_TICK"
NULL_FIELDS = "NULL_FIELDS"
ALL_NULL = "ALL_NULL"
ZERO_VOLUME = "ZERO_VOLUME"
STALE = "STALE"
FUTURE_DATED = "FUTURE_DATED"
NO_DATA = "NO_DATA"

SAMPLE_SIZE = 5
_NS = np.dtype("datetime64[ns]")


def severity_rank(severity: str) -> int:
    """Order of severities: info < warning < error < critical."""
    return _RANK[severity]


@dataclass(frozen=True)
class Finding:
    """One problem (or notable fact) found in a symbol's bars."""

    code: str
    severity: str
    message: str
    count: int = 0
    sample_dates: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"unknown severity {self.severity!r} (one of {', '.join(SEVERITIES)})")

    def at_least(self, severity: str) -> bool:
        return _RANK[self.severity] >= _RANK[severity]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "count": self.count, "sample_dates": list(self.sample_dates)}


def sample_dates(dates: Iterable[Any], size: int = SAMPLE_SIZE) -> tuple[str, ...]:
    """The first ``size`` dates as ISO text (what a report shows)."""
    if isinstance(dates, np.ndarray) and dates.dtype == _NS:
        # numpy's day text is str(Timestamp.date()) for every ns date, NaT too.
        return tuple(str(text) for text in np.datetime_as_string(dates[:size], unit="D"))
    out = []
    for d in dates:
        out.append(str(pd.Timestamp(d).date()))
        if len(out) >= size:
            break
    return tuple(out)


def worst(findings: Sequence[Finding]) -> Finding | None:
    """The most severe finding (the first of equals), or None."""
    best: Finding | None = None
    for f in findings:
        if best is None or _RANK[f.severity] > _RANK[best.severity]:
            best = f
    return best
