"""One symbol's quality assessment: the score's components and findings.

:func:`assess_quality` is the single entry: a bars frame (the symbol's
window, as stored, or a vendor payload) in, a :class:`QualityReport` out.
No SQL, no I/O; the governance agent reads the store and calls it.  The
score (the weighted formula over the components) is a governance rule:
``data.governance.rules.quality_score``; quality never imports governance.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from data.quality import checks, components
from data.quality import findings as F
from data.quality.findings import Finding, sample_dates
from core.settings import QualitySettings, Settings


def quality_settings(settings: "Settings | QualitySettings | None") -> QualitySettings:
    """The ``[quality]`` table (``core.settings.QualitySettings``) of
    ``settings``, or the table itself, or the defaults."""
    if isinstance(settings, QualitySettings):
        return settings
    return (settings if settings is not None else Settings()).quality


@dataclass
class QualityReport:
    """What :func:`assess_quality` found for one symbol."""

    rows: int                       # unique bars in the frame
    expected_rows: int              # expected sessions in the window
    components: dict[str, float]    # the score's four terms (the score itself is a governance rule)
    findings: list[Finding]
    payload_duplicates: int = 0
    first_date: str | None = None
    last_date: str | None = None

    @property
    def critical(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == F.CRITICAL]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "expected_rows": self.expected_rows, **self.components,
                "payload_duplicates": self.payload_duplicates,
                "first_date": self.first_date, "last_date": self.last_date,
                "findings": [f.to_dict() for f in self.findings]}


def assess_quality(frame: pd.DataFrame, *, expected_sessions: pd.DatetimeIndex, payload_duplicates: int = 0,
                   asset_class: str = "stocks", corporate_actions: pd.DataFrame | None = None,
                   as_of: dt.date, settings: "Settings | QualitySettings | None" = None,
                   symbol: str | None = None, calendar: str | None = None,
                   allowed_missing: Iterable | None = None) -> QualityReport:
    """Score one symbol's bars over its window and collect every finding.

    ``frame``: bars contract (extra columns ignored); may still hold duplicate
    dates (a raw payload), which count with ``payload_duplicates`` (the
    duplicates ingestion dropped before the upsert).  ``expected_sessions``:
    the window's sessions from the calendar.  ``corporate_actions``: stored
    actions (columns date, action, value) that explain large moves.
    ``allowed_missing`` overrides the allow-list resolved from settings for
    ``symbol`` / ``calendar``.
    """
    cfg = quality_settings(settings)
    # One pass over the frame: every component and check below works on
    # these arrays (pandas column access and conversions were most of the
    # cost when each check re-read the frame).
    expected = components.date_values(expected_sessions)
    bars, in_frame_dups = components.bar_arrays(frame)
    duplicates = int(payload_duplicates) + in_frame_dups
    dates = bars.dates
    if allowed_missing is None:
        allowed_missing = [pd.Timestamp(d) for d in sorted(cfg.excused_sessions(symbol, calendar))]
    allowed = list(allowed_missing)
    threshold = cfg.spike_threshold.get(asset_class, cfg.spike_threshold.get("stocks", 0.5))

    expected_open = components.expected_after_allowed(expected, allowed)
    missing, unexpected = _missing_and_unexpected(expected, expected_open, dates, bars.close)
    expected_count = len(expected_open) if allowed else len(expected)
    moves = components.scan_move_dates(dates, bars.close, bars.adj_close, threshold, corporate_actions,
                                       bars.split_ratio, bars.dividend)
    nonpositive = components.nonpositive_mask(bars.open, bars.high, bars.low, bars.close, bars.adj_close)
    negative_volume = bars.volume < 0
    comps = {
        "missing_dates_pct": len(missing) / expected_count if expected_count else 0.0,
        "duplicate_pct": components.duplicate_pct(len(bars), duplicates),
        "zero_negative_flag": 1.0 if (nonpositive.any() or negative_volume.any()) else 0.0,
        "extreme_spike_flag": 1.0 if len(moves.spikes) else 0.0,
    }

    found: list[Finding] = []
    if len(bars) == 0:
        found.append(Finding(F.NO_DATA, F.CRITICAL, "no bars in the window", 0))
    if len(missing):
        found.append(Finding(F.MISSING_SESSIONS, F.WARNING,
                             f"{len(missing)} of {expected_count} expected sessions have no bar",
                             len(missing), sample_dates(missing)))
    if len(unexpected):
        found.append(Finding(F.UNEXPECTED_SESSIONS, F.INFO,
                             f"{len(unexpected)} bar(s) on dates that are not sessions of the calendar",
                             len(unexpected), sample_dates(unexpected)))
    if duplicates:
        found.append(Finding(F.DUPLICATE_ROWS, F.WARNING,
                             f"{duplicates} duplicate row(s) in the vendor payload", duplicates))
    if nonpositive.any():
        found.append(Finding(F.ZERO_NEGATIVE_PRICE, F.ERROR, f"{int(nonpositive.sum())} bar(s) with a price <= 0",
                             int(nonpositive.sum()), sample_dates(dates[nonpositive])))
    if negative_volume.any():
        found.append(Finding(F.NEGATIVE_VOLUME, F.ERROR, f"{int(negative_volume.sum())} bar(s) with volume < 0",
                             int(negative_volume.sum()), sample_dates(dates[negative_volume])))
    if len(moves.spikes):
        found.append(Finding(F.EXTREME_SPIKE, F.ERROR,
                             f"{len(moves.spikes)} close-to-close move(s) beyond {threshold:.0%} "
                             f"({asset_class}) that no corporate action explains",
                             len(moves.spikes), sample_dates(moves.spikes)))
    if len(moves.explained):
        found.append(Finding(F.EXPLAINED_MOVE, F.INFO,
                             f"{len(moves.explained)} move(s) beyond {threshold:.0%} explained by a split, "
                             f"dividend or adjustment", len(moves.explained), sample_dates(moves.explained)))
    if len(moves.adj_discontinuities):
        found.append(Finding(F.ADJ_CLOSE_DISCONTINUITY, F.WARNING,
                             f"{len(moves.adj_discontinuities)} adj_close jump(s) beyond {threshold:.0%} "
                             f"with no matching close move", len(moves.adj_discontinuities),
                             sample_dates(moves.adj_discontinuities)))
    if len(bars):
        found += checks.ohlc_findings_of(dates, bars.open, bars.high, bars.low, bars.close, cfg.ohlc_tolerance)
        found += checks.false_tick_findings_of(dates, bars.adj_close, bars.close, cfg.false_tick.window,
                                               cfg.false_tick.mad_z,
                                               cfg.false_tick.min_move.get(asset_class, 0.05),
                                               cfg.false_tick.scale_window)
        found += checks.null_findings_of(dates, bars.open, bars.high, bars.low, bars.close, bars.adj_close,
                                         bars.volume)
        found += checks.zero_volume_findings_of(dates, bars.volume, asset_class, cfg.zero_volume_warn_fraction)
        found += checks.staleness_findings_of(dates, expected, as_of, cfg.stale_warn_sessions,
                                              cfg.stale_error_sessions)
    found.sort(key=lambda f: -F.severity_rank(f.severity))  # stable: checks keep their order within a severity

    return QualityReport(
        rows=len(bars), expected_rows=expected_count, components=comps, findings=found,
        payload_duplicates=duplicates,
        first_date=str(pd.Timestamp(dates[0]).date()) if len(dates) else None,
        last_date=str(pd.Timestamp(dates[-1]).date()) if len(dates) else None)


def _missing_and_unexpected(expected: np.ndarray, expected_open: np.ndarray, dates: np.ndarray,
                            close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected sessions (allow-list removed) with no bar that has a close,
    and bars inside the window's span on dates that are not sessions; both
    sorted.  One binary search of the bars in the calendar answers both when
    the sessions are in order and nothing is allow-listed (the usual case)."""
    if expected_open is expected and len(dates) and len(expected) and components.strictly_ascending(expected):
        at = np.searchsorted(expected, dates)
        is_session = expected[np.minimum(at, len(expected) - 1)] == dates
        covered = np.zeros(len(expected), dtype=bool)
        covered[at[is_session & ~np.isnan(close)]] = True
        inside = (dates >= expected[0]) & (dates <= expected[-1])
        return expected[~covered], dates[inside & ~is_session]
    return (components.missing_session_dates(expected_open, dates, close),
            _unexpected_sessions(dates, expected))


def _unexpected_sessions(dates: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Bars inside the window's span on dates the calendar has no session."""
    if len(dates) == 0 or len(expected) == 0:
        return dates[:0]
    inside = dates[(dates >= expected[0]) & (dates <= expected[-1])]
    return components.sorted_difference(inside, expected)
