"""Symbol governance: score each symbol's stored window, decide its state.

The rules (states, reasons, thresholds, the score) are on one page,
``data/governance/rules.py``; this module applies them to the store.  Every
state carries a reason code (docs/error_codes.md); ``symbol_governance`` holds the current state,
``data_quality`` one row per symbol per run with every score component, and
every change of state or reason appends a STATE_CHANGE row to
``governance_events`` (``db.governance.set_states``): nothing changes silently.

:func:`govern_symbols` reads the store, scores with
:func:`data.quality.assess_quality`, decides with
:meth:`GovernanceRules.decide_state`, and writes.
"""
from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import datetime as dt
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from core.calendar import backfill_window, expected_sessions
from core.errors import InvariantError
from data.quality import assess_quality
from data.quality import findings as F
from data.quality.assessment import QualityReport
from data.quality.findings import Finding
from core.universe import UniverseEntry
from data.governance.rules import QUARANTINED, STATES, GovernanceRules
from core.clock import record_stamp
from database import Store, open_store
from core.alerts import AlertMessage
from core.settings import Settings

# Alert keys (core.alert_policy): the problems governance raises.
QUALITY_REJECTIONS = "ingest.quality_rejections"
QUARANTINED_KEY = "governance.quarantined"


class GovernanceError(InvariantError):
    """Governance was asked about symbols outside the universe (its callers
    select them from the universe: a bug)."""


@dataclass
class SymbolVerdict:
    """One symbol's governance outcome for a run."""

    symbol: str
    asset_class: str
    state: str
    reason: str
    rows: int
    expected_rows: int
    quality_score: float
    components: dict[str, float]
    findings: list[Finding]
    previous_state: str | None = None
    previous_reason: str | None = None
    first_date: str | None = None
    last_date: str | None = None
    provider: str | None = None
    rejected: bool = False          # quality below threshold, or a critical failure

    @property
    def changed(self) -> bool:
        return (self.previous_state, self.previous_reason) != (self.state, self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "asset_class": self.asset_class, "state": self.state,
                "reason": self.reason, "previous_state": self.previous_state, "rows": self.rows,
                "expected_rows": self.expected_rows, "quality_score": self.quality_score, **self.components,
                "rejected": self.rejected, "first_date": self.first_date, "last_date": self.last_date,
                "provider": self.provider, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class GovernanceReport:
    """What :func:`govern_symbols` decided and wrote."""

    run_id: str
    as_of: dt.date
    universe_size: int
    rules: GovernanceRules
    verdicts: list[SymbolVerdict] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accept_threshold(self) -> float:
        return self.rules.accept_threshold

    @property
    def reject_alert_pct(self) -> float:
        return self.rules.reject_alert_pct

    @property
    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in STATES}
        for v in self.verdicts:
            out[v.state] += 1
        return out

    @property
    def rejected(self) -> list[SymbolVerdict]:
        return [v for v in self.verdicts if v.rejected]

    @property
    def rejection_pct(self) -> float:
        """Rejected symbols as a percentage of the (enabled) universe."""
        return 100.0 * len(self.rejected) / self.universe_size if self.universe_size else 0.0

    @property
    def rejection_alert(self) -> bool:
        return self.rules.rejection_alert(len(self.rejected), self.universe_size)

    @property
    def has_error_findings(self) -> bool:
        """True when any symbol has an error or critical finding
        (``--fail-on-quality`` turns this into exit 2)."""
        return any(f.at_least(F.ERROR) for v in self.verdicts for f in v.findings)

    def alert_messages(self, limit: int = 20) -> list[AlertMessage]:
        """The alerts this outcome calls for: more than the configured share
        of the universe rejected (error), and symbols newly quarantined (warning)."""
        out = []
        if self.rejection_alert:
            lines = [f"{v.symbol}: {v.reason} (score {v.quality_score:.3f}, {v.rows} rows)"
                     for v in self.rejected[:limit]]
            more = len(self.rejected) - len(lines)
            out.append(AlertMessage(
                title=f"Quality rejections: {len(self.rejected)} of {self.universe_size} symbols "
                      f"({self.rejection_pct:.1f}% > {self.reject_alert_pct:g}%)",
                body="\n".join(lines + ([f"... and {more} more"] if more > 0 else [])),
                severity=F.ERROR, key=QUALITY_REJECTIONS,
                details={"run_id": self.run_id, "rejected": len(self.rejected),
                         "universe": self.universe_size, "rejection_pct": round(self.rejection_pct, 3)}))
        quarantined = [c for c in self.changes
                       if c["after_state"] == QUARANTINED and c["before_state"] != QUARANTINED]
        if quarantined:
            lines = [f"{c['symbol']}: {c['before_state'] or 'new'} -> QUARANTINED ({c['reason']})"
                     for c in quarantined[:limit]]
            more = len(quarantined) - len(lines)
            out.append(AlertMessage(
                title=f"{len(quarantined)} symbol(s) quarantined",
                body="\n".join(lines + ([f"... and {more} more"] if more > 0 else [])),
                severity=F.WARNING, key=QUARANTINED_KEY,
                details={"run_id": self.run_id, "quarantined": len(quarantined)}))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": str(self.as_of), "universe_size": self.universe_size,
                "governed": len(self.verdicts), "counts": self.counts, "rejected": len(self.rejected),
                "rejection_pct": self.rejection_pct, "rejection_alert": self.rejection_alert,
                "has_error_findings": self.has_error_findings, "changes": self.changes,
                "symbols": [v.to_dict() for v in self.verdicts]}


# Worker-process state: one read-only connection per store.
_READERS: dict[str, Store] = {}


def _score_chunk(location: str, items: Sequence[tuple[str, str, str, int]], as_of: dt.date,
                 settings: Settings) -> list[tuple[str, QualityReport, str | None]]:
    """Read and score each symbol's stored window (runs in a worker process)."""
    db = _READERS.get(location)
    if db is None:
        db = _READERS[location] = open_store(location, readonly=True)
    cfg = settings.quality
    required = GovernanceRules.from_settings(settings).required_rows
    actions = db.bars.corporate_actions([i[0] for i in items])
    out = []
    for symbol, asset_class, calendar, dups in items:
        win = backfill_window(calendar, as_of, required)
        sessions = expected_sessions(calendar, win.start, win.end)
        frame = db.bars.read(symbol, str(win.start), str(win.end))
        quality = assess_quality(frame, expected_sessions=sessions, payload_duplicates=dups,
                                 asset_class=asset_class, corporate_actions=actions.get(symbol), as_of=as_of,
                                 settings=cfg, symbol=symbol, calendar=calendar)
        out.append((symbol, quality, str(frame["provider"].iloc[-1]) if not frame.empty else None))
    return out


def score_stored_windows(location: str, items: Sequence[tuple[str, str, str, int]], *,
                         as_of: dt.date, settings: Settings, workers: int,
                         chunk: int = 100) -> dict[str, tuple[QualityReport, str | None]]:
    """Score many symbols' stored windows in ``workers`` processes, each
    opening the store at ``location`` (``Store.location``) read-only
    (reading 1,260 rows and scoring them is ~3.5 ms a symbol: serial, a
    6,000-symbol incremental run would spend 20 s here).  ``items``:
    (symbol, asset_class, calendar, payload duplicates)."""
    out: dict[str, tuple[QualityReport, str | None]] = {}
    ctx = multiprocessing.get_context("fork")   # inherits imports; leaves via os._exit
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        jobs = [pool.submit(_score_chunk, location, items[i:i + chunk], as_of, settings)
                for i in range(0, len(items), chunk)]
        for job in jobs:
            for symbol, quality, provider in job.result():
                out[symbol] = (quality, provider)
    return out


def govern_symbols(db: Store, *, universe_entries: Sequence[UniverseEntry], run_id: str, as_of: dt.date,
                   settings: Settings, payload_duplicates: Mapping[str, int] | None = None,
                   critical: Mapping[str, str] | None = None, symbols: Iterable[str] | None = None,
                   batch_size: int = 500,
                   progress: Callable[[str, int, int], None] | None = None,
                   precomputed: Mapping[str, tuple[QualityReport, str | None]] | None = None,
                   extra_findings: Mapping[str, Sequence[Finding]] | None = None) -> GovernanceReport:
    """Score and govern ``symbols`` (default: every enabled universe entry)
    from what the store holds over each symbol's backfill window ending at
    ``as_of``.

    ``payload_duplicates``: symbol -> duplicates the vendor payload held in
    this run; a symbol not in it keeps the count stored by the run that last
    scored it (a verify run fetches nothing).  ``critical``: symbol -> reason
    code of a provider-critical failure (e.g. NO_VALID_PROVIDER), which
    quarantines the symbol.  Writes ``data_quality`` rows and the states (with
    their STATE_CHANGE events) every ``batch_size`` symbols; ``progress`` is
    called as ``progress(symbol, done, total)``.  ``precomputed``: symbol ->
    (QualityReport, provider) already scored on a frame equal to the stored
    window (the ingest scores a fresh payload in its fetch workers), so the
    store is not read back for those symbols.  ``extra_findings``: symbol ->
    findings from checks outside the bars (cross-source drift); they are
    stored with the symbol's quality row, and an error-severity one demotes
    an otherwise ACTIVE symbol to DEGRADED with the finding's code as reason.
    """
    enabled = [e for e in universe_entries if e.enabled]
    by_symbol = {e.symbol: e for e in enabled}
    wanted = list(dict.fromkeys(symbols)) if symbols is not None else list(by_symbol)
    outside = [s for s in wanted if s not in by_symbol]
    outside += [s for s in (critical or {}) if s not in by_symbol]
    if outside:
        raise GovernanceError(f"not enabled in the universe: {', '.join(sorted(set(outside)))}")
    critical = dict(critical or {})
    duplicates = dict(payload_duplicates or {})

    cfg = settings.quality
    rules = GovernanceRules.from_settings(settings)
    required = rules.required_rows
    report = GovernanceReport(run_id=run_id, as_of=as_of, universe_size=len(enabled), rules=rules)
    previous = db.governance.states()
    carried = {s: int(q.get("payload_duplicates") or 0) for s, q in db.governance.latest_quality().items()}
    precomputed = dict(precomputed or {})
    to_read = [s for s in wanted if s not in precomputed]
    workers = settings.governance.score_workers or (os.cpu_count() or 1)
    if len(to_read) >= settings.governance.parallel_from_symbols and workers > 1:
        items = []
        for symbol in to_read:
            entry = by_symbol[symbol]
            items.append((symbol, entry.asset_class, settings.history.calendar_of(entry),
                          duplicates.get(symbol, carried.get(symbol, 0))))
        precomputed.update(score_stored_windows(db.location, items, as_of=as_of, settings=settings, workers=workers))
        to_read = []
    actions = db.bars.corporate_actions(to_read)
    windows: dict[str, tuple[Any, pd.DatetimeIndex]] = {}

    quality_rows: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []

    def flush() -> None:
        if not states:
            return
        ts = record_stamp()
        db.governance.write_quality(quality_rows)
        report.changes.extend(db.governance.set_states(states, run_id=run_id, ts=ts))
        quality_rows.clear()
        states.clear()

    for done, symbol in enumerate(wanted, start=1):
        entry = by_symbol[symbol]
        calendar = settings.history.calendar_of(entry)
        if calendar not in windows:
            win = backfill_window(calendar, as_of, required)
            windows[calendar] = (win, expected_sessions(calendar, win.start, win.end))
        win, sessions = windows[calendar]
        if symbol in precomputed:
            quality, provider = precomputed[symbol]
        else:
            frame = db.bars.read(symbol, str(win.start), str(win.end))
            dups = duplicates.get(symbol, carried.get(symbol, 0))
            quality = assess_quality(frame, expected_sessions=sessions, payload_duplicates=dups,
                                     asset_class=entry.asset_class, corporate_actions=actions.get(symbol),
                                     as_of=as_of, settings=cfg, symbol=symbol, calendar=calendar)
            provider = str(frame["provider"].iloc[-1]) if not frame.empty else None
        extra = list((extra_findings or {}).get(symbol, ()))
        if extra:
            quality = dataclasses.replace(quality, findings=[*quality.findings, *extra])
        score = rules.quality_score(quality.components)
        state, reason = rules.decide_state(quality.rows, score, quality.findings, critical.get(symbol))
        state, reason = rules.demote_for_outside_findings(state, reason, extra)
        before = previous.get(symbol) or {}
        verdict = SymbolVerdict(
            symbol=symbol, asset_class=entry.asset_class, state=state.value, reason=reason, rows=quality.rows,
            expected_rows=quality.expected_rows, quality_score=score, components=quality.components,
            findings=quality.findings, previous_state=before.get("state"), previous_reason=before.get("reason"),
            first_date=quality.first_date, last_date=quality.last_date, provider=provider,
            rejected=rules.rejected(score, bool(critical.get(symbol) or quality.critical)))
        report.verdicts.append(verdict)
        quality_rows.append({"run_id": run_id, "symbol": symbol, "rows": quality.rows,
                             "expected_rows": quality.expected_rows, **quality.components,
                             "quality_score": score, "payload_duplicates": quality.payload_duplicates,
                             "findings": [f.to_dict() for f in quality.findings]})
        states.append({"symbol": symbol, "asset_class": entry.asset_class, "state": state.value, "reason": reason,
                       "rows": quality.rows, "quality_score": score, "first_date": quality.first_date,
                       "last_date": quality.last_date, "provider": provider, "run_id": run_id})
        if len(states) >= batch_size:
            flush()
        if progress is not None:
            progress(symbol, done, len(wanted))
    flush()
    return report
