"""What the fetch workers do with each provider answer, once: archive the
raw payload, trim and deduplicate the frame, and score it when it covers the
symbol's whole governance window.

The result is one ``Payload`` record that travels forward unchanged: the run
writes its frame, audits its counts and archive path, and hands its quality
report to governance.
"""
from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import calendar as cal
from core.errors import OperationFailed
from core.settings import Settings
from core.symbols import filename_for
from data.providers.base import FetchOutcome, FetchRequest, MalformedDataError, NoDataError
from data.quality import assess_quality
from data.quality.border import border_message, invalid_bars, locate_lines
from data.quality.assessment import QualityReport
from data.governance.rules import GovernanceRules


class RawArchiveError(OperationFailed):
    """The raw archive could not be written (disk full, directory
    read-only): the run stops and is closed FAILED (exit 1).  A run-level
    failure rather than a symbol's: every later symbol would fail the same
    way, and their bars must not be stored without the payload they came
    from (docs/decisions.md, D-R4)."""


@dataclass
class Payload:
    """A served symbol's bars as the run writes them, prepared in the fetch worker."""

    frame: pd.DataFrame                 # in the window, one row per date, sorted
    rows_received: int                  # rows in the window before duplicates collapsed
    duplicate_rows: int
    raw_archive: Path | None = None     # runtime/raw/{run_id}/{provider}__{symbol}.{suffix}.gz
    quality: QualityReport | None = None  # scored here when the request is the governance window


class PayloadScorer:
    """Scores a payload in the fetch worker when it covers the symbol's whole
    governance window (a deep backfill), so governing a fresh backfill never
    reads the store back.  Thread-safe: it holds only read-only state."""

    def __init__(self, settings: Settings, as_of: dt.date):
        self.config = settings.quality
        self.required = GovernanceRules.from_settings(settings).required_rows
        self.as_of = as_of
        self._windows: dict[str, tuple[cal.Window, pd.DatetimeIndex]] = {}

    def window(self, calendar: str) -> tuple[cal.Window, pd.DatetimeIndex]:
        """The governance window of ``calendar`` and its expected sessions."""
        if calendar not in self._windows:
            win = cal.backfill_window(calendar, self.as_of, self.required)
            self._windows[calendar] = (win, cal.expected_sessions(calendar, win.start, win.end))
        return self._windows[calendar]

    def __call__(self, request: FetchRequest, frame: pd.DataFrame, duplicates: int) -> QualityReport | None:
        win, sessions = self.window(request.calendar)
        if (request.start, request.end) != (win.start, win.end):
            return None
        return assess_quality(frame, expected_sessions=sessions, payload_duplicates=duplicates,
                              asset_class=request.asset_class, corporate_actions=actions_in_frame(frame),
                              as_of=self.as_of, settings=self.config, symbol=request.symbol,
                              calendar=request.calendar)


@dataclass(frozen=True)
class PayloadPrep:
    """What the fetch workers need besides the provider: where to archive,
    how hard to compress, how to score."""

    raw_dir: Path | None
    compresslevel: int
    scorer: PayloadScorer | None


def actions_in_frame(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The payload's dividends and splits as (date, action, value) rows, the
    shape ``db.bars.corporate_actions`` returns."""
    parts = []
    for col, action, neutral in (("dividend", "dividend", 0.0), ("split_ratio", "split", 1.0)):
        if col in frame.columns:
            values = frame[col].to_numpy(dtype="float64")
            mask = ~np.isnan(values) & (values != neutral) & (values != 0.0)
            if mask.any():
                parts.append(pd.DataFrame({"date": frame["date"].to_numpy()[mask], "action": action,
                                           "value": values[mask]}))
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True).sort_values(["date", "action"], ignore_index=True)


def prepare_frame(frame: pd.DataFrame, request: FetchRequest) -> tuple[pd.DataFrame, int, int]:
    """Trim to the request window, count then collapse duplicate dates (the
    last one wins, as a vendor's correction would), sort by date.
    Returns (frame, rows_received, duplicate_rows)."""
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    lo = np.datetime64(request.start, "ns")
    hi = np.datetime64(request.end, "ns")
    # Fast path (nearly every payload): in window, strictly increasing.
    if len(dates) and dates[0] >= lo and dates[-1] <= hi and (len(dates) < 2 or (dates[1:] > dates[:-1]).all()):
        return frame, len(frame), 0
    inside = (dates >= lo) & (dates <= hi)
    if not inside.all():
        frame = frame.loc[inside]
        dates = dates[inside]
    received = len(frame)
    dup_mask = pd.Index(dates).duplicated(keep="last")
    duplicates = int(dup_mask.sum())
    if duplicates:
        frame = frame.loc[~dup_mask]
        dates = dates[~dup_mask]
    if len(dates) > 1 and not (np.diff(dates.astype("int64")) > 0).all():
        frame = frame.iloc[np.argsort(dates, kind="stable")]
    return frame.reset_index(drop=True), received, duplicates


def prepare_payload(name: str, outcome: FetchOutcome, prep: PayloadPrep) -> Payload | None:
    """Archive, trim, deduplicate, check at the border and score one served
    outcome.  Returns None for a failed outcome, and turns a payload with no
    bars in the window into a NoDataError on the outcome, and one holding an
    invalid bar (``data.quality.border``) into a MalformedDataError: the
    whole symbol payload is rejected, nothing of it is written (D-B1)."""
    result = outcome.result
    if result is None:
        return None
    raw = result.raw_payload if result.raw_suffix in ("csv", "json") else None
    archive = None
    if result.raw_payload is not None and prep.raw_dir is not None:
        archive = prep.raw_dir / f"{filename_for(name)}__{filename_for(result.symbol)}.{result.raw_suffix}.gz"
        try:
            archive.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(archive, "wb", compresslevel=prep.compresslevel) as fh:
                fh.write(result.raw_payload)
        except OSError as exc:
            raise RawArchiveError(f"raw archive {archive}: {exc.strerror or exc} (free space or make "
                                  f"{prep.raw_dir.parent} writable, then run the same command again)") from exc
        # Archived: free memory early (and nothing to send back from a worker
        # process).  Unarchived (a dry run, a test) the payload stays on the
        # result: it is the only copy of what the vendor answered.
        result.raw_payload = None
    request = outcome.request
    frame, received, dups = prepare_frame(result.frame, request)
    if frame.empty:
        outcome.error = NoDataError(f"no bars in {request.start}..{request.end}", provider=name,
                                    symbol=request.symbol)
        outcome.result = None
        return None
    invalid = invalid_bars(frame)
    if invalid:
        source = f"{name}'s payload for {request.symbol}" + (f" (archived at {archive})" if archive else "")
        outcome.error = MalformedDataError(border_message(locate_lines(invalid, raw), source), provider=name,
                                           symbol=request.symbol)
        outcome.result = None
        return None
    result.frame = frame
    quality = prep.scorer(request, frame, dups) if prep.scorer is not None else None
    return Payload(frame, received, dups, archive, quality)
