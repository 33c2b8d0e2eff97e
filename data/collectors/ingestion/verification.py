"""After a run: score and govern its symbols, check freshness over the whole
universe, record the verdict (INGEST_SUCCESS or INGEST_VERIFICATION_FAILED)
and alert.  Used after every ingest run, by ``--mode=verify`` and by repairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.alerts import Alerter, AlertMessage
from data.collectors.ingestion.options import RunContext
from data.governance.governance_agent import GovernanceReport, govern_symbols
from data.governance.rules import RED, Stage1Verdict
from data.quality.assessment import QualityReport
from data.quality.findings import Finding
from reports.health import freshness
from reports.stage1 import judge_store

VERIFICATION_PASSED = "PASSED"
VERIFICATION_FAILED = "FAILED"


@dataclass(frozen=True)
class RunFindings:
    """What a run hands to verification besides the store: the symbols to
    govern and what fetching them taught."""

    symbols: Sequence[str]
    fetch_failures: Sequence[str] = ()
    payload_duplicates: Mapping[str, int] = field(default_factory=dict)   # duplicates each payload held
    critical: Mapping[str, str] = field(default_factory=dict)            # symbol -> NO_VALID_PROVIDER, ...
    # symbol -> (report, provider) scored in the fetch worker on a payload
    # equal to the stored window: governance does not read those back.
    scored: Mapping[str, tuple[QualityReport, str | None]] = field(default_factory=dict)
    dead_lettered: Sequence[str] = ()
    drift_findings: Mapping[str, Sequence[Finding]] = field(default_factory=dict)


@dataclass
class Verification:
    """Governance and freshness after a run."""

    governance: GovernanceReport
    freshness: dict[str, Any]
    verification: str                  # PASSED / FAILED
    problems: list[str]
    alerts: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.verification == VERIFICATION_PASSED

    def to_dict(self) -> dict[str, Any]:
        gov = self.governance
        return {"verification": self.verification, "problems": self.problems,
                "states": gov.counts, "rejected": len(gov.rejected), "rejection_pct": round(gov.rejection_pct, 3),
                "has_error_findings": gov.has_error_findings, "state_changes": gov.changes,
                "price_health": self.freshness["price_health"], "freshness_counts": self.freshness["counts"],
                "stale_symbols": [s["symbol"] for s in self.freshness["stale_symbols"]],
                "alerts": self.alerts}


def govern_and_verify(ctx: RunContext, found: RunFindings) -> Verification:
    """Score and govern ``found.symbols``, check freshness over the whole
    universe whatever the fetch reported, record INGEST_SUCCESS or
    INGEST_VERIFICATION_FAILED in the store and the trail, and alert."""
    db = ctx.db
    gov = govern_symbols(db, universe_entries=ctx.universe.entries, run_id=ctx.run_id, as_of=ctx.as_of,
                         settings=ctx.settings, payload_duplicates=found.payload_duplicates,
                         critical=found.critical, symbols=found.symbols, precomputed=found.scored,
                         extra_findings=found.drift_findings)
    history = db.bars.history_summary(ctx.universe.symbols)
    fresh = freshness(ctx.universe.enabled, history, ctx.settings, ctx.as_of, ctx.now)
    governed = set(found.symbols)
    stage1 = judge_store(db, [e for e in ctx.universe.enabled if e.symbol in governed], ctx.settings, ctx.as_of,
                         ctx.now, history=history)
    problems = verification_problems(stage1, fresh, found.fetch_failures)
    verification = VERIFICATION_FAILED if problems else VERIFICATION_PASSED
    event = "INGEST_SUCCESS" if not problems else "INGEST_VERIFICATION_FAILED"
    db.governance.record_event(event, run_id=ctx.run_id, reason=verification,
                               detail={"states": gov.counts, "problems": problems, "price_health": fresh["price_health"],
                            "governed": len(gov.verdicts), "rejection_pct": round(gov.rejection_pct, 3)})
    ctx.trail.append(event.lower(), level="INFO" if not problems else "ERROR", states=gov.counts,
                     problems=problems, price_health=fresh["price_health"])
    messages = gov.alert_messages() + run_alerts(ctx.run_id, gov, problems, found.dead_lettered)
    alerter = Alerter(run_id=ctx.run_id, settings=ctx.settings, store=db.alerts, audit=ctx.trail,
                      alerts_dir=ctx.paths.alerts_dir)
    alerts = [{"title": m.title, "severity": m.severity, "outcome": r.outcome}
              for m, r in zip(messages, alerter.send_all(messages))]
    return Verification(gov, fresh, verification, problems, alerts)


def fetch_failure_problem(fetch_failures: Sequence[str]) -> str:
    """The problem line for the symbols that failed to fetch (a report that
    lists those symbols one per line shows it there instead)."""
    return f"{len(fetch_failures)} symbol(s) failed to fetch: {', '.join(list(fetch_failures)[:10])}"


def verification_problems(stage1: Stage1Verdict, fresh: Mapping[str, Any],
                          fetch_failures: Sequence[str]) -> list[str]:
    """Why a run fails verification, one line each: symbols that failed to
    fetch, governed symbols that do not pass Stage 1 (the rules' one
    definition: ACTIVE, their rows, fresh), universe price health RED.
    Empty: it passed."""
    problems = []
    if fetch_failures:
        problems.append(fetch_failure_problem(fetch_failures))
    if stage1.failing:
        problems.append(f"{len(stage1.failing)} symbol(s) do not pass Stage 1: "
                        + ", ".join(f"{f['symbol']} {f['state']} {f['reason']}" for f in stage1.failing[:10]))
    if fresh["price_health"] == RED:
        stale = [s["symbol"] for s in fresh["stale_symbols"] if s["health"] == "RED"]
        problems.append(f"price health RED: {len(stale)} symbol(s) stale or empty: {', '.join(stale[:10])}")
    return problems


def run_alerts(run_id: str, gov: GovernanceReport, problems: Sequence[str],
               dead_lettered: Sequence[str]) -> list[AlertMessage]:
    """The run's own alerts, after governance's: new dead letters, and a
    failed verification."""
    messages = []
    if dead_lettered:
        messages.append(AlertMessage(
            title=f"{len(dead_lettered)} symbol(s) dead-lettered (no provider served them in consecutive runs)",
            body=", ".join(dead_lettered) + "\nIncremental runs skip them; revive with "
                                           "`ingest_history.py --revive SYMBOL` or by editing the universe entry.",
            severity="error", key="dead-letters", details={"run_id": run_id, "symbols": list(dead_lettered)}))
    if problems:
        messages.append(AlertMessage(title=f"Ingest verification failed (run {run_id})", body="\n".join(problems),
                                     severity="error", key="verification-failed",
                                     details={"run_id": run_id, "states": gov.counts}))
    return messages
