"""Cross-source drift: the same symbol's closes from two providers, compared
on their overlapping sessions (pure: frames in, a finding out).

Drift of a session = |secondary close / primary close - 1|, in percent.  The
level is the worst session's: ``error_pct`` or more is an error-severity
CROSS_SOURCE_DRIFT finding (governance then degrades the symbol with that
reason), ``warn_pct`` or more a warning.  Fewer than ``min_overlap``
overlapping sessions is not enough to judge and yields no finding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.quality.findings import ERROR, WARNING, Finding, sample_dates

CROSS_SOURCE_DRIFT = "CROSS_SOURCE_DRIFT"


@dataclass(frozen=True)
class DriftResult:
    primary: str
    secondary: str
    overlap: int
    max_pct: float
    mean_pct: float
    sessions_over_warn: int
    sessions_over_error: int
    finding: Finding | None

    def to_dict(self) -> dict:
        return {"primary": self.primary, "secondary": self.secondary, "overlap": self.overlap,
                "max_pct": round(self.max_pct, 4), "mean_pct": round(self.mean_pct, 4),
                "sessions_over_warn": self.sessions_over_warn, "sessions_over_error": self.sessions_over_error,
                "level": self.finding.severity if self.finding else None}


def close_drift(primary: pd.DataFrame, secondary: pd.DataFrame, *, primary_name: str, secondary_name: str,
                warn_pct: float, error_pct: float, min_overlap: int = 20) -> DriftResult:
    """Compare closes on the sessions both frames hold."""
    left = primary[["date", "close"]].dropna().drop_duplicates("date", keep="last")
    right = secondary[["date", "close"]].dropna().drop_duplicates("date", keep="last")
    both = left.merge(right, on="date", suffixes=("_p", "_s"))
    both = both[both["close_p"] > 0]
    overlap = len(both)
    if overlap == 0:
        return DriftResult(primary_name, secondary_name, 0, 0.0, 0.0, 0, 0, None)
    pct = np.abs(both["close_s"].to_numpy() / both["close_p"].to_numpy() - 1.0) * 100.0
    over_warn = pct >= warn_pct
    over_error = pct >= error_pct
    finding = None
    if overlap >= min_overlap and over_warn.any():
        severity = ERROR if over_error.any() else WARNING
        worst = over_error if over_error.any() else over_warn
        finding = Finding(
            CROSS_SOURCE_DRIFT, severity,
            f"closes from {secondary_name} differ from {primary_name} by up to {pct.max():.2f}% "
            f"({int(worst.sum())} of {overlap} overlapping sessions at or beyond "
            f"{error_pct if severity == ERROR else warn_pct:g}%)",
            int(worst.sum()), sample_dates(both["date"].to_numpy()[worst]))
    return DriftResult(primary_name, secondary_name, overlap, float(pct.max()), float(pct.mean()),
                       int(over_warn.sum()), int(over_error.sum()), finding)
