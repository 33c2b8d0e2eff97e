"""The governance rules, on one page, in the runbook's words.

Everything that judges a symbol or the store imports this module: the
ingestion's governance and verification, ``verify_backfill.py``,
``verify_db_status.py``, Stage 2's start gate and its order filter.  The
numbers come from settings (``[history]``, ``[quality]``, ``[health]`` in
``configs/settings.toml``; their defaults, the runbook's, live with the other
defaults in ``core/settings.py``); this page only says what they mean.

1. History requirement: every ACTIVE symbol has ``required_rows`` (1260)
   rows: the trailing expected sessions of its calendar ending at the as-of
   date.  ``degraded_min_rows`` (1000) to ``required_rows - 1`` rows:
   DEGRADED; fewer: QUARANTINED.
2. Data quality::

       score = 1.0 - (missing_dates_pct * 0.3 + duplicate_pct * 0.2
                      + zero_negative_flag * 0.2 + extreme_spike_flag * 0.3)

   ``score >= accept_threshold`` (0.6) accepts; below rejects (DEGRADED).
   More than ``reject_alert_pct`` (5%) of the universe rejected in a run
   alerts.  A symbol without rows has no passing score.
3. States (``decide_state``, at ingest, over the window ending at the
   run's as-of date)::

       ACTIVE       >= 1260 rows AND quality >= 0.6     -> opens and closes positions
       DEGRADED     1000-1259 rows OR quality < 0.6     -> blocked: may only reduce what it holds
       QUARANTINED  < 1000 rows OR critical failure     -> no order at all

   A critical failure is a critical finding (OHLC inconsistent, all prices
   null, no data) or a provider-critical reason the ingestion passes in
   (NO_VALID_PROVIDER, WRONG_SYMBOL, ...).  A window short only because its
   last bars are missing is STALE (DEGRADED or QUARANTINED by the same
   counts).  An error finding from outside the bars (cross-source drift)
   demotes an otherwise ACTIVE symbol to DEGRADED with its code as reason.
   "Block trading" is read as "open nothing": a DEGRADED symbol may still
   close or shrink a position it holds (``governed_quantity``).
4. Freshness (``ages_at``, ``price_health``), judged at any later date too:
   a symbol is fresh while its last bar is fewer than
   ``stale_from_sessions`` (2) sessions of its own calendar behind that
   calendar's last complete session at the as-of date (a weekend does not
   age an equity bar; configured closures and the symbol's trading halts
   are excused).  Price health: GREEN fresh, YELLOW up to
   ``red_beyond_sessions`` (7) behind, RED beyond or without bars.
5. Stage 1 passed (``judge_stage1``: ``verify_backfill.py --strict``, the
   ingestion's verification of the symbols it governed, live mode's gate):
   every enabled universe symbol is ACTIVE, holds its required rows (as
   governed and as stored now), and is fresh at the as-of date (default:
   now, so a store left behind by the clock fails).
6. Stage 2 may start (``Stage1Verdict.stage2_may_start``) unless a symbol
   lacks its history (the runbook's ``[DATA_GOVERNANCE]`` halt) or is
   stale, whatever its state (a halt naming
   ``ingest_history.py --mode=incremental``).  A fresh DEGRADED or
   QUARANTINED symbol does not stop paper trading; ``governed_quantity``
   keeps it from opening.  Live mode needs rule 5.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from core.calendar import expected_sessions, last_complete_session, sessions_between
from core.settings import QualitySettings
from data.quality import findings as F
from data.quality.findings import Finding


class State(str, enum.Enum):
    """The three governance states (their values are what the store holds)."""

    ACTIVE = "ACTIVE"
    DEGRADED = "DEGRADED"
    QUARANTINED = "QUARANTINED"

    def __str__(self) -> str:
        return self.value


ACTIVE, DEGRADED, QUARANTINED = State.ACTIVE, State.DEGRADED, State.QUARANTINED
STATES = tuple(State)
UNGOVERNED = "UNGOVERNED"          # a universe symbol without a governance row yet

# Reason codes (docs/error_codes.md).
OK = "OK"
INSUFFICIENT_HISTORY = "INSUFFICIENT_HISTORY"   # < degraded_min_rows rows
PARTIAL_HISTORY = "PARTIAL_HISTORY"             # degraded_min_rows .. required_rows-1 rows
LOW_QUALITY = "LOW_QUALITY"                     # score below the accept threshold
STALE = "STALE"                                 # short of rows only because the last bars are missing
NO_DATA = F.NO_DATA
ALL_NULL = F.ALL_NULL
OHLC_INCONSISTENT = F.OHLC_INCONSISTENT
NO_VALID_PROVIDER = "NO_VALID_PROVIDER"         # passed in by the ingestion
PROVIDER_CRITICAL = "PROVIDER_CRITICAL"         # passed in by the ingestion
WRONG_SYMBOL = "WRONG_SYMBOL"                   # passed in by the ingestion
# Why a symbol fails Stage 1 beyond its own state's reason.
NOT_GOVERNED = "NOT_GOVERNED"
ROWS_REMOVED_SINCE_GOVERNED = "ROWS_REMOVED_SINCE_GOVERNED"

# Which critical finding names the state when several are present.
_CRITICAL_ORDER = (ALL_NULL, OHLC_INCONSISTENT, NO_DATA)
SCORE_COMPONENTS = ("missing_dates_pct", "duplicate_pct", "zero_negative_flag", "extreme_spike_flag")
GREEN, YELLOW, RED = "GREEN", "YELLOW", "RED"


def quality_score(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Rule 2: ``1 - sum(weight * component)``, in the runbook's order of terms."""
    penalty = 0.0
    for name in SCORE_COMPONENTS:
        penalty += float(components[name]) * float(weights[name])
    return 1.0 - penalty


@dataclass(frozen=True)
class GovernanceRules:
    """The numbers of the rules above, as configured."""

    required_rows: int
    degraded_min_rows: int
    accept_threshold: float
    weights: Mapping[str, float]
    reject_alert_pct: float
    stale_from_sessions: int
    red_beyond_sessions: int
    # Where the sessions a symbol is excused from come from (configured
    # closures and trading halts): the same source as the score's missing
    # dates, ``core.settings.QualitySettings.excused_sessions``.
    excused: QualitySettings | None = None

    @classmethod
    def from_settings(cls, settings) -> "GovernanceRules":
        """The rules with ``settings``' numbers (``core.settings.Settings``)."""
        history, quality, health = settings.history, settings.quality, settings.health
        return cls(required_rows=history.required_sessions,
                   degraded_min_rows=history.degraded_min_rows,
                   accept_threshold=quality.accept_threshold,
                   weights=dict(quality.weights),
                   reject_alert_pct=quality.universe_reject_alert_pct,
                   stale_from_sessions=health.freshness_yellow_sessions,
                   red_beyond_sessions=health.freshness_red_sessions,
                   excused=quality)

    def excused_sessions(self, symbol: str, calendar: str) -> frozenset[dt.date]:
        """The sessions ``symbol`` may lack without being late: its
        calendar's configured closures and its own trading halts."""
        return self.excused.excused_sessions(symbol, calendar) if self.excused is not None else frozenset()

    # ------------------------------------------------------------ quality
    def quality_score(self, components: Mapping[str, float]) -> float:
        """Rule 2's score with the configured weights."""
        return quality_score(components, self.weights)

    def accepts(self, score: float | None) -> bool:
        """ACCEPT (True) or REJECT; no score (no rows) never passes."""
        return score is not None and score >= self.accept_threshold

    def rejected(self, score: float, critical: bool) -> bool:
        """A symbol counts as rejected in a run when its score is below the
        threshold or it failed critically."""
        return not self.accepts(score) or critical

    def rejection_alert(self, rejected: int, universe: int) -> bool:
        """More than ``reject_alert_pct`` percent of the universe rejected."""
        return universe > 0 and 100.0 * rejected / universe > self.reject_alert_pct

    # ------------------------------------------------------------- states
    def decide_state(self, rows: int, score: float, findings: Sequence[Finding] = (),
                     critical_reason: str | None = None) -> tuple[State, str]:
        """The state rule, with its reason code.

        Order: a provider-critical failure or a critical finding
        quarantines; then history (< ``degraded_min_rows`` quarantines,
        < ``required_rows`` degrades; the reason is STALE when the sessions
        missing after the last bar account for the whole shortfall); then
        quality (below the threshold degrades, LOW_QUALITY).  An ACTIVE
        symbol's reason is OK, or the code of its most severe error finding
        (e.g. EXTREME_SPIKE), which the weights alone cannot push below the
        threshold.
        """
        if critical_reason:
            return QUARANTINED, critical_reason
        critical = {f.code for f in findings if f.severity == F.CRITICAL}
        if critical:
            return QUARANTINED, next((c for c in _CRITICAL_ORDER if c in critical), sorted(critical)[0])
        if rows <= 0:
            return QUARANTINED, NO_DATA
        if rows < self.required_rows:
            stale = next((f for f in findings if f.code == F.STALE), None)
            short_reason = STALE if stale is not None and rows + stale.count >= self.required_rows else None
            if rows < self.degraded_min_rows:
                return QUARANTINED, short_reason or INSUFFICIENT_HISTORY
            return DEGRADED, short_reason or PARTIAL_HISTORY
        if not self.accepts(score):
            return DEGRADED, LOW_QUALITY
        errors = [f for f in findings if f.at_least(F.ERROR)]
        return ACTIVE, (F.worst(errors).code if errors else OK)

    @staticmethod
    def demote_for_outside_findings(state: State, reason: str,
                                    outside: Iterable[Finding]) -> tuple[State, str]:
        """Drift demotion: an error finding from a check outside the bars
        (cross-source drift) turns an ACTIVE symbol DEGRADED, reason its code."""
        demoting = next((f for f in outside if f.at_least(F.ERROR)), None)
        if state == ACTIVE and demoting is not None:
            return DEGRADED, demoting.code
        return state, reason

    # ---------------------------------------------------------- freshness
    def price_health(self, age_sessions: int | None) -> str:
        """GREEN (fresh), YELLOW or RED by sessions behind; no bars is RED."""
        if age_sessions is None or age_sessions > self.red_beyond_sessions:
            return RED
        return YELLOW if age_sessions >= self.stale_from_sessions else GREEN

    def is_fresh(self, age_sessions: int | None) -> bool:
        return self.price_health(age_sessions) == GREEN


def bars_behind(calendar: str, last_date: str | dt.date | None, expected_last: dt.date,
                excused: frozenset[dt.date] = frozenset()) -> int | None:
    """Sessions of ``calendar`` after ``last_date`` up to ``expected_last``
    that the symbol should have a bar for (``excused`` sessions - a halt, a
    closure the calendar does not know - do not count); 0 when the last bar
    is the expected one or later; None without bars."""
    if last_date is None:
        return None
    last = dt.date.fromisoformat(str(last_date)[:10])
    if last >= expected_last:
        return 0
    if not excused:
        return sessions_between(calendar, last, expected_last)
    missing = expected_sessions(calendar, last + dt.timedelta(days=1), expected_last)
    return sum(1 for d in missing.date if d not in excused)


@dataclass(frozen=True)
class SymbolStanding:
    """What the store says of one universe symbol, as the rules need it."""

    symbol: str
    calendar: str
    state: str | None                 # None: no governance row
    reason: str | None
    governed_rows: int                # rows of the window governance scored
    stored_rows: int                  # rows stored now
    last_date: str | None
    quality_score: float | None = None


@dataclass
class Stage1Verdict:
    """Whether Stage 1 passed at ``as_of``, and why not, symbol by symbol."""

    as_of: dt.date
    required_rows: int
    expected_last: dict[str, str]                 # calendar -> its last complete session
    ages: dict[str, int | None]                   # symbol -> sessions behind
    failing: list[dict[str, Any]] = field(default_factory=list)
    missing_history: dict[str, str] = field(default_factory=dict)   # symbol -> why (halts Stage 2)
    stale: dict[str, int | None] = field(default_factory=dict)      # symbol -> sessions behind (halts Stage 2)
    states: dict[str, int] = field(default_factory=dict)
    symbols: int = 0

    @property
    def passed(self) -> bool:
        """Every symbol ACTIVE, with its rows, and fresh (an empty universe never passes)."""
        return self.symbols > 0 and not self.failing

    @property
    def stage2_may_start(self) -> bool:
        return self.symbols > 0 and not self.missing_history and not self.stale

    @property
    def compliant(self) -> int:
        return self.symbols - len(self.failing)


def ages_at(rules: GovernanceRules, symbols: Iterable[tuple[str, str, str | None]], as_of: dt.date,
            now: dt.datetime | None = None) -> tuple[dict[str, dt.date], dict[str, int | None]]:
    """Rule 4's measure: for each (symbol, calendar, last bar date), the
    sessions its last bar is behind its calendar's last complete session at
    ``as_of`` (excused sessions left out).  Returns (calendar -> that
    session, symbol -> sessions behind or None without bars)."""
    expected: dict[str, dt.date] = {}
    cache: dict[tuple, int | None] = {}   # thousands of symbols share a few last dates
    ages: dict[str, int | None] = {}
    for symbol, calendar, last_date in symbols:
        if calendar not in expected:
            expected[calendar] = last_complete_session(calendar, as_of, now)
        excused = rules.excused_sessions(symbol, calendar)
        key = (calendar, last_date, excused)
        if key not in cache:
            cache[key] = bars_behind(calendar, last_date, expected[calendar], excused)
        ages[symbol] = cache[key]
    return expected, ages


def judge_stage1(rules: GovernanceRules, standings: Sequence[SymbolStanding], as_of: dt.date,
                 now: dt.datetime | None = None) -> Stage1Verdict:
    """The one definition of "Stage 1 passed" (rule 5) and of what stops
    Stage 2 (rule 6), for the enabled universe's ``standings`` at ``as_of``.
    ``now`` decides whether today's session is complete (default: the clock)."""
    expected, ages = ages_at(rules, [(s.symbol, s.calendar, s.last_date) for s in standings], as_of, now)
    verdict = Stage1Verdict(as_of=as_of, required_rows=rules.required_rows, expected_last={}, ages=ages,
                            states={**{s.value: 0 for s in STATES}, UNGOVERNED: 0}, symbols=len(standings))
    for s in standings:
        age = ages[s.symbol]
        verdict.states[s.state or UNGOVERNED] += 1
        fresh = rules.is_fresh(age)
        if s.state is None:
            reason = NOT_GOVERNED
        elif s.state != ACTIVE:
            reason = s.reason or s.state
        elif min(s.governed_rows, s.stored_rows) < rules.required_rows:
            reason = ROWS_REMOVED_SINCE_GOVERNED if s.governed_rows >= rules.required_rows else PARTIAL_HISTORY
        elif not fresh:
            reason = STALE
        else:
            continue
        if s.state is None or s.stored_rows < rules.required_rows:
            verdict.missing_history[s.symbol] = (f"{s.stored_rows} rows < {rules.required_rows}"
                                                 if s.stored_rows < rules.required_rows else "no governance row")
        elif not fresh:
            verdict.stale[s.symbol] = age
        verdict.failing.append({"symbol": s.symbol, "state": s.state or UNGOVERNED, "reason": reason,
                                "rows": s.stored_rows, "window_rows": s.governed_rows,
                                "quality_score": s.quality_score, "last_date": s.last_date,
                                "age_sessions": age})
    verdict.expected_last = {c: str(d) for c, d in expected.items()}
    return verdict


# ------------------------------------------------------------ Stage 2
def governed_quantity(state: str | None, target: float, held: float) -> tuple[float, str]:
    """What each state may do in Stage 2: the quantity governance allows
    toward ``target`` from ``held``, and the action it amounts to.

    ACTIVE trades to its target; DEGRADED may only reduce (close or shrink
    toward zero, never open, grow or flip); QUARANTINED, or no governance
    row, gets no order at all.
    """
    if state == ACTIVE:
        return target, _action(held, target)
    if state == DEGRADED:
        if held > 0:
            allowed = min(max(target, 0.0), held)
        elif held < 0:
            allowed = max(min(target, 0.0), held)
        else:
            allowed = 0.0
        return allowed, _action(held, allowed) if allowed != held else "blocked"
    return held, "blocked"


def _action(held: float, target: float) -> str:
    if target == held:
        return "hold"
    if held == 0:
        return "open"
    if target == 0:
        return "close"
    if (held > 0) != (target > 0):
        return "flip"
    return "add" if abs(target) > abs(held) else "reduce"
