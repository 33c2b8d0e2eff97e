"""Health summaries behind ``verify_backfill.py`` and ``verify_db_status.py``
(and the dashboard): JSON-able dicts computed from what ingestion stored.

They read the scores and states written at ingest (``symbol_governance``,
``data_quality``), one ``GROUP BY symbol`` over ``price_history`` and the
store's quick integrity check (``Store.check_integrity``); they never
recompute statistics over the bars, so a 6,000 x 1,260 store answers in
seconds.  Rendering (rich tables on a terminal, plain text otherwise) lives
in ``cli.health_report``.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from core.clock import utc_now
from core.calendar import CalendarError
from core.universe import Universe, UniverseEntry
from database import (Store, StoreAccessError, StoreCorrupt, StoreError, StoreLocked, StoreMissing, StoreNotADatabase,
                      StorePermissionDenied, StoreReadOnly, open_store, store_exists)
from core.errors import MalformedInputError, MissingInputError
from core.process import owner_gone
from core.runtime import RuntimePaths
from core.settings import Settings
from data.governance.rules import ACTIVE, GREEN, RED, STATES, UNGOVERNED, YELLOW, GovernanceRules, ages_at
from reports.stage1 import judge_store

SECTIONS = ("history", "quality", "governance", "freshness", "integrity", "last_ingest", "providers")
PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


def _score_bins(threshold: float) -> tuple[tuple[str, float, float], ...]:
    """Score distribution bins: below the accept threshold, then up to 1."""
    edges = sorted({threshold, *(e for e in (0.8, 0.9) if e > threshold)})
    bins = [(f"< {threshold:g}", 0.0, threshold)]
    bins += [(f"{lo:g}-{hi:g}", lo, hi) for lo, hi in zip(edges, edges[1:])]
    bins.append((f"{edges[-1]:g}-<1", edges[-1], 1.0))
    return tuple(bins)


# ------------------------------------------------------------------ inputs
def open_for_report(path: str | None) -> Store:
    """The store at ``--db`` (default: the runtime's), read-only (on a
    read-only mount or backup: immutable); a store failure told apart by
    cause (``database.errors``: missing 66, not a database 65, corrupt,
    permission...), an unexplained one a MalformedInputError."""
    db_path = RuntimePaths.resolve(path).db
    try:
        return open_store(db_path, readonly=True)
    except (StoreMissing, StoreNotADatabase, StoreCorrupt, StorePermissionDenied, StoreReadOnly, StoreLocked):
        raise
    except StoreAccessError as exc:
        raise MalformedInputError(f"{db_path}: not a readable SQLite database ({exc})") from exc
    except StoreError as exc:
        if not store_exists(db_path):
            raise MissingInputError(f"{db_path}: database not found (run ingest_history.py first)") from exc
        raise MalformedInputError(str(exc)) from exc


# -------------------------------------------------------------- compliance
def backfill_compliance(db: Store, universe: Universe, settings: Settings, as_of: dt.date | None = None,
                        now: dt.datetime | None = None) -> dict[str, Any]:
    """Share of the (enabled) universe that passes Stage 1 at ``as_of``
    (default: today): ACTIVE, its required rows as governed and as stored
    now (rows deleted since governance ran fail), and fresh against its
    calendar's last complete session (rules 5 in data/governance/rules.py)."""
    now = now or utc_now()
    as_of = as_of or now.date()
    verdict = judge_store(db, universe.enabled, settings, as_of, now)
    return {
        "database": db.location, "universe": universe.path, "as_of": str(as_of),
        "required_rows": verdict.required_rows, "symbols": verdict.symbols, "compliant": verdict.compliant,
        "compliance_pct": round(100.0 * verdict.compliant / verdict.symbols, 4) if verdict.symbols else 0.0,
        "passed": verdict.passed, "states": verdict.states, "expected_last_session": verdict.expected_last,
        "stale": len(verdict.stale), "failing": verdict.failing,
        "fix": _fix(verdict),
    }


def _fix(verdict) -> str | None:
    """The command that repairs the commonest failure, for the operator."""
    if verdict.passed:
        return None
    if verdict.stale and not verdict.missing_history:
        return "python ingest_history.py --mode=incremental"
    return "python ingest_history.py --mode=deep_backfill" if verdict.missing_history else \
        "python verify_backfill.py --symbols"


# ------------------------------------------------------------------ status
def db_status(db: Store, universe: Universe, settings: Settings, as_of: dt.date | None = None,
              sections: Iterable[str] | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The sections of ``verify_db_status.py`` (all, or those named), each
    with a ``status`` of PASS, WARN or FAIL, plus ``passed`` overall."""
    chosen = list(sections) if sections else list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s): {', '.join(unknown)}")
    now = now or utc_now()
    as_of = as_of or now.date()
    entries = universe.enabled
    symbols = [e.symbol for e in entries]
    # The integrity check reads the whole store; run it on a second
    # connection while this one counts rows (the driver releases the GIL,
    # and the machine has 2+ cores).
    integrity = _integrity_in_background(db.location, db.code_schema_version) if "integrity" in chosen else None
    needs_history = {"history", "freshness"} & set(chosen)
    history = db.bars.history_summary(symbols) if needs_history else {}
    states = db.governance.states() if {"quality", "governance"} & set(chosen) else {}
    out: dict[str, Any] = {"database": db.location, "universe": universe.path, "as_of": str(as_of),
                           "symbols": len(symbols)}
    for name in chosen:
        if name == "history":
            out[name] = _history(symbols, history, GovernanceRules.from_settings(settings).required_rows)
        elif name == "quality":
            out[name] = _quality(db, symbols, states, settings)
        elif name == "governance":
            out[name] = _governance(db, symbols, states, settings)
        elif name == "freshness":
            out[name] = freshness(entries, history, settings, as_of, now)
        elif name == "integrity":
            out[name] = integrity()
        elif name == "last_ingest":
            out[name] = _last_ingest(db)
        elif name == "providers":
            out[name] = _providers(db)
    out["checks"] = {name: out[name]["status"] for name in chosen}
    out["passed"] = all(status != FAIL for status in out["checks"].values())
    return out


def _history(symbols: list[str], history: Mapping[str, Mapping[str, Any]], required: int) -> dict[str, Any]:
    rows = [history[s]["rows"] for s in symbols]
    short = [{"symbol": s, "rows": history[s]["rows"], "first_date": history[s]["first_date"],
              "last_date": history[s]["last_date"]} for s in symbols if history[s]["rows"] < required]
    short.sort(key=lambda r: (r["rows"], r["symbol"]))
    return {
        "status": FAIL if short or not symbols else PASS,
        "required_rows": required, "symbols": len(symbols),
        "complete": len(symbols) - len(short), "short": len(short),
        "no_data": sum(1 for r in rows if r == 0), "total_rows": int(sum(rows)),
        "min_rows": min(rows) if rows else 0, "max_rows": max(rows) if rows else 0,
        "short_symbols": short,
    }


def _quality(db: Store, symbols: list[str], states: Mapping[str, Mapping[str, Any]],
             settings: Settings) -> dict[str, Any]:
    rules = GovernanceRules.from_settings(settings)
    threshold = rules.accept_threshold
    rows = db.governance.latest_quality(symbols)
    scored = [s for s in symbols if s in rows]
    scores = np.array([rows[s]["quality_score"] for s in scored], dtype="float64")
    below = sorted(({"symbol": s, "quality_score": rows[s]["quality_score"],
                     "reason": (states.get(s) or {}).get("reason")}
                    for s in scored if not rules.accepts(rows[s]["quality_score"])),
                   key=lambda r: (r["quality_score"], r["symbol"]))
    components = {}
    for name in ("missing_dates_pct", "duplicate_pct", "zero_negative_flag", "extreme_spike_flag"):
        values = np.array([rows[s][name] for s in scored], dtype="float64")
        components[name] = {"mean": _round(values.mean()) if len(values) else None,
                            "max": _round(values.max()) if len(values) else None,
                            "symbols_affected": int((values > 0).sum())}
    findings: dict[str, dict[str, int]] = {}
    for s in scored:
        for f in rows[s]["findings"] or []:
            per_code = findings.setdefault(f["code"], {"severity": f["severity"], "symbols": 0})
            per_code["symbols"] += 1
    distribution = {label: int(((scores >= lo) & (scores < hi)).sum()) for label, lo, hi in _score_bins(threshold)}
    distribution["1.0"] = int((scores >= 1.0).sum())
    unscored = [s for s in symbols if s not in rows]
    return {
        "status": FAIL if below or unscored or not symbols else PASS,
        "threshold": threshold, "scored": len(scored), "unscored": unscored,
        "score": ({"min": _round(scores.min()), "p05": _round(np.percentile(scores, 5)),
                   "median": _round(np.median(scores)), "mean": _round(scores.mean()), "max": _round(scores.max())}
                  if len(scores) else None),
        "distribution": distribution, "components": components,
        "findings": dict(sorted(findings.items())),
        "below_threshold": below,
    }


def _governance(db: Store, symbols: list[str], states: Mapping[str, Mapping[str, Any]],
                settings: Settings) -> dict[str, Any]:
    counts = {**{s.value: 0 for s in STATES}, UNGOVERNED: 0}
    not_active = []
    for s in symbols:
        gov = states.get(s)
        state = gov["state"] if gov else UNGOVERNED
        counts[state] += 1
        if state != ACTIVE:
            not_active.append({"symbol": s, "state": state, "reason": gov["reason"] if gov else "NOT_GOVERNED",
                               "rows": gov["rows"] if gov else 0,
                               "quality_score": gov["quality_score"] if gov else None})
    limit = settings.health.recent_events
    events = [{k: e[k] for k in ("ts", "run_id", "symbol", "event", "before_state", "after_state", "reason")}
              for e in db.governance.events(limit=limit)]
    return {"status": FAIL if not_active or not symbols else PASS, "counts": counts,
            "not_active": not_active, "recent_events": events}


def freshness(entries: Iterable[UniverseEntry], history: Mapping[str, Mapping[str, Any]], settings: Settings,
              as_of: dt.date, now: dt.datetime | None = None) -> dict[str, Any]:
    """Price health over the universe from each symbol's last stored bar.

    Age is counted in sessions of the symbol's own calendar, from its last bar
    to the last complete session at ``as_of`` (``rules.ages_at``, the same
    measure Stage 1's verdict uses; halts and closures excused): GREEN under
    ``health.freshness_yellow_sessions``, YELLOW up to
    ``health.freshness_red_sessions``, RED beyond or with no bars (rule 4,
    ``GovernanceRules.price_health``).  The
    whole universe's health is its worst symbol's.  ``history`` is
    ``db.bars.history_summary`` or ``history_summary`` (symbol -> last_date).
    """
    rules = GovernanceRules.from_settings(settings)
    yellow, red = rules.stale_from_sessions, rules.red_beyond_sessions
    now = now or utc_now()
    entries = list(entries)
    items = [(entry.symbol, settings.history.calendar_of(entry),
              (history.get(entry.symbol) or {}).get("last_date")) for entry in entries]
    try:
        ends, ages = ages_at(rules, items, as_of, now)
    except CalendarError as exc:
        # A date flag the calendars cannot place is a usage error (exit 64), not
        # malformed input (docs/decisions.md D-E2).
        raise CalendarError(f"--as-of: {exc}") from exc

    per_symbol, counts = [], {GREEN: 0, YELLOW: 0, RED: 0}
    for symbol, calendar, last in items:
        health = rules.price_health(ages[symbol])
        counts[health] += 1
        per_symbol.append({"symbol": symbol, "calendar": calendar, "last_date": last,
                           "expected_last_session": str(ends[calendar]), "age_sessions": ages[symbol],
                           "health": health})
    overall = RED if counts[RED] else (YELLOW if counts[YELLOW] else GREEN)
    if not per_symbol:
        overall = RED
    stale = sorted((p for p in per_symbol if p["health"] != GREEN),
                   key=lambda p: (-(p["age_sessions"] if p["age_sessions"] is not None else 10**9), p["symbol"]))
    return {"status": {GREEN: PASS, YELLOW: WARN, RED: FAIL}[overall], "price_health": overall,
            "as_of": str(as_of), "yellow_from_sessions": yellow, "red_beyond_sessions": red,
            "counts": counts, "stale_symbols": stale}


def _integrity(db: Store) -> dict[str, Any]:
    check = db.check_integrity(quick=True)
    return {"status": PASS if check.ok else FAIL, "quick_check": check.detail, "schema_version": db.schema_version(),
            "code_schema_version": db.code_schema_version, "data_origin": db.data_origin()}


def _integrity_in_background(location: str, code_schema_version: int) -> Callable[[], dict[str, Any]]:
    """Start the store's quick integrity check on a second read-only
    connection; the returned function waits for and returns the integrity
    section.  A store too damaged to check is a FAIL, not a crash."""
    box: dict[str, dict[str, Any]] = {}

    def check() -> None:
        try:
            with open_store(location, readonly=True) as db:
                box["result"] = _integrity(db)
        except StoreError as exc:
            named = exc.__cause__ or exc    # the backend's own error class names the failure
            box["result"] = {"status": FAIL, "quick_check": f"{type(named).__name__}: {exc}", "schema_version": None,
                             "code_schema_version": code_schema_version, "data_origin": None}

    worker = threading.Thread(target=check, name="quick_check", daemon=True)
    worker.start()

    def wait() -> dict[str, Any]:
        worker.join()
        return box["result"]

    return wait


RUNNING, ABORTED = "RUNNING", "ABORTED"
_FAILED_RUNS = ("FAILED", ABORTED)


def run_as_seen(row: Mapping[str, Any]) -> dict[str, Any]:
    """A run row as the report shows it: a run recorded ``RUNNING`` whose
    owner process is known dead is ``ABORTED`` (``status``), with why in
    ``error``; ``recorded_status`` keeps what the row says.  The next ingest
    or repair on the store writes that (``ingestion.lifecycle``)."""
    seen = dict(row, recorded_status=row["status"])
    if row["status"] == RUNNING:
        why = owner_gone(row.get("owner_pid"), row.get("owner_host"), row.get("owner_started"))
        if why is not None:
            seen.update(status=ABORTED, error=f"{why}: the run never finished (the next ingest or repair "
                                              f"records it ABORTED)")
    return seen


def _last_ingest(db: Store) -> dict[str, Any]:
    """The latest run's verdict.  A run still RUNNING (its owner alive, or
    on another host) does not hide the verdict of the run before it: a
    FAILED or ABORTED run (a dead RUNNING one included) or a failed
    verification FAILs until a later run finishes and passes; a live run
    WARNs."""
    runs = [run_as_seen(r) for r in db.runs.recent(limit=50)]
    if not runs:
        return {"status": FAIL, "run_id": None, "message": "no ingestion run recorded (run ingest_history.py)"}
    last = next((r for r in runs if r["status"] != RUNNING), runs[0])
    running = [r for r in runs[:runs.index(last)] if r["status"] == RUNNING]
    fetched = next((r for r in runs if r["mode"] != "verify"), None)
    verification = last.get("verification")
    if last["status"] in _FAILED_RUNS or verification == "FAILED":
        status = FAIL
    elif last["status"] == RUNNING or running or verification is None:
        status = WARN
    else:
        status = PASS
    fix = _rerun(last["mode"]) if last["status"] in _FAILED_RUNS else None
    return {
        "status": status, "run_id": last["run_id"], "mode": last["mode"], "run_status": last["status"],
        "recorded_status": last["recorded_status"], "error": last.get("error"),
        "owner": (f"pid {last['owner_pid']} on host {last['owner_host']}" if last.get("owner_pid") else None),
        "started_at": last["started_at"], "finished_at": last["finished_at"], "as_of": last["as_of"],
        "verification": verification, "symbols_requested": last["symbols_requested"],
        "symbols_updated": last["symbols_succeeded"], "symbols_failed": last["symbols_failed"],
        "rows_written": last["rows_written"], "providers_used": _json(last.get("providers_used")) or {},
        "running_now": [{"run_id": r["run_id"], "mode": r["mode"], "started_at": r["started_at"],
                         "owner": f"pid {r.get('owner_pid')} on host {r.get('owner_host')}"} for r in running],
        "fix": fix,
        "last_fetch_run": ({"run_id": fetched["run_id"], "mode": fetched["mode"], "status": fetched["status"],
                            "finished_at": fetched["finished_at"],
                            "providers_used": _json(fetched.get("providers_used")) or {}}
                           if fetched is not None else None),
    }


def _rerun(mode: str) -> str:
    """The command that replaces a failed or aborted run of ``mode``."""
    if mode == "repair":
        return "run the same python repair_db.py command again"
    if mode == "range":
        return "run python ingest_history.py --start/--end again"
    return f"run python ingest_history.py --mode={mode} again"


def _providers(db: Store) -> dict[str, Any]:
    """Dead-lettered symbols, and the provider health of the last fetch run.
    WARN (never FAIL: freshness already fails a symbol left without data)
    when a symbol is dead-lettered or a provider's circuit opened."""
    dead = db.fetch_state.dead_letters()
    fetched = next((r for r in db.runs.recent(limit=50) if r["mode"] not in ("verify",)), None)
    health = db.runs.provider_health(fetched["run_id"]) if fetched else []
    troubled = [h["provider"] for h in health if h["circuit_open"] or h["entitled"] == 0]
    status = WARN if dead or troubled else PASS
    return {"status": status, "dead_letters": dead, "run_id": fetched["run_id"] if fetched else None,
            "health": health, "revive_with": "python ingest_history.py --revive SYMBOL[,SYMBOL]" if dead else None}


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def _round(value: float) -> float:
    return round(float(value), 6)
