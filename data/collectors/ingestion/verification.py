"""After a run: score and govern its symbols, check freshness over the whole
universe, record the verdict (INGEST_SUCCESS or INGEST_VERIFICATION_FAILED)
and alert.  Used after every ingest run, by ``--mode=verify`` and by repairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.alert_policy import AlertPolicy
from core.alerts import AlertMessage
from data.collectors.ingestion.options import RunContext
from data.governance.governance_agent import QUALITY_REJECTIONS, QUARANTINED_KEY, GovernanceReport, govern_symbols
from data.governance.rules import QUARANTINED, RED, Stage1Verdict
from data.quality.assessment import QualityReport
from data.quality.findings import Finding
from reports.health import freshness
from reports.stage1 import judge_store

VERIFICATION_PASSED = "PASSED"
VERIFICATION_FAILED = "FAILED"

# Alert keys (core.alert_policy) an ingest owns: raised while the problem
# holds, resolved by the next run that shows it no longer does.
VERIFICATION_FAILED_KEY = "ingest.verification_failed"
ALL_PROVIDERS_FAILED_KEY = "providers.all_failed"
DEAD_LETTERS_KEY = "ingest.dead_letters"


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
    fetched: bool = False     # the run asked providers (not --mode=verify, not a repair's re-governing)


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
    policy = AlertPolicy(source="ingest", run_id=ctx.run_id, settings=ctx.settings, store=db.alerts,
                         audit=ctx.trail, paths=ctx.paths)
    alerts = []
    for key, message in run_alerts(ctx, gov, found, problems):
        result = policy.report(key, message)
        if result is not None:
            alerts.append({"key": key, "title": result.message.title, "severity": result.message.severity,
                           "outcome": result.outcome, "note": result.note})
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


def all_providers_failed(found: RunFindings) -> bool:
    """Every symbol the run asked the providers for failed (none served,
    none up to date): the run fetched nothing at all."""
    return found.fetched and bool(found.symbols) and set(found.symbols) <= set(found.fetch_failures)


def run_alerts(ctx: RunContext, gov: GovernanceReport, found: RunFindings,
               problems: Sequence[str]) -> list[tuple[str, AlertMessage | None]]:
    """Each alert key this run answers for, with the message that raises it
    or None when the run shows the problem cleared.

    A run answers for ``ingest.verification_failed``, the quality rejections
    and the quarantine when it failed, or when it governed the whole enabled
    universe (a ``--tickers`` run or a repair that passes clears nothing it
    did not look at); for ``providers.all_failed`` and
    ``ingest.dead_letters`` only when it fetched."""
    run_id = ctx.run_id
    dead_letters = [d["symbol"] for d in ctx.db.fetch_state.dead_letters()] if found.fetched else []
    covered = set(found.symbols) | set(dead_letters)
    whole = all(e.symbol in covered for e in ctx.universe.enabled)
    out: list[tuple[str, AlertMessage | None]] = [(m.key or m.title, m) for m in gov.alert_messages()]
    raised = {key for key, _ in out}
    if whole:
        out += [(key, None) for key in (QUALITY_REJECTIONS,) if key not in raised]
        if not gov.counts.get(QUARANTINED) and QUARANTINED_KEY not in raised:
            out.append((QUARANTINED_KEY, None))
    if found.fetched:
        failed = list(found.fetch_failures)
        out.append((ALL_PROVIDERS_FAILED_KEY, AlertMessage(
            title=f"All providers failed: none of {len(failed)} symbol(s) could be fetched",
            body=f"{', '.join(failed[:20])}{' ...' if len(failed) > 20 else ''}\n"
                 "Check the network and the vendors (verify_db_status.py --providers shows each provider's "
                 "errors); `--provider file --data-dir DIR` or `--provider synthetic` work offline.",
            severity="critical", details={"run_id": run_id, "symbols": len(failed)})
            if all_providers_failed(found) else None))
        if found.dead_lettered:
            out.append((DEAD_LETTERS_KEY, AlertMessage(
                title=f"{len(found.dead_lettered)} symbol(s) dead-lettered (no provider served them in "
                      "consecutive runs)",
                body=", ".join(found.dead_lettered) + "\nIncremental runs skip them; revive with "
                                                      "`ingest_history.py --revive SYMBOL` or by editing the "
                                                      "universe entry.",
                severity="error", details={"run_id": run_id, "symbols": list(found.dead_lettered)})))
        elif not dead_letters:
            out.append((DEAD_LETTERS_KEY, None))
    if problems:
        out.append((VERIFICATION_FAILED_KEY, AlertMessage(
            title="Ingest verification failed", body="\n".join(problems), severity="error",
            details={"run_id": run_id, "states": gov.counts})))
    elif whole:
        out.append((VERIFICATION_FAILED_KEY, None))
    return out
