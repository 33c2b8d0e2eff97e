"""A run row from ``RUNNING`` to its end, whatever ends it.

Every run (ingest, verify, repair) that writes a row opens it through
``open_run``: the row records its owner (``core.process.ProcessIdentity``),
and ``close_unfinished`` closes it when the run does not reach its own
``finish``: ``ABORTED`` for an interrupt, ``FAILED`` with the error text for
anything else escaping the run.  ``reconcile_dead_runs`` closes ``ABORTED``
the runs that dead processes left ``RUNNING`` on the store, at the start of
the next run (docs/decisions.md, D-R1..D-R4).
"""
from __future__ import annotations

import signal
from typing import Any, Mapping

from core.logs import AuditTrail
from core.process import ProcessIdentity, RunInterrupted, owner_gone
from core.redaction import redact
from database import Store, StoreError

RUNNING, ABORTED, FAILED_RUN = "RUNNING", "ABORTED", "FAILED"


def owner() -> dict[str, Any]:
    """This process as a run row's owner columns."""
    me = ProcessIdentity.current()
    return {"pid": me.pid, "host": me.host, "started": me.started}


def open_run(db: Store, run_id: str, mode: str, as_of: str | None, params: Mapping[str, Any],
             started_at: str, symbols_requested: int) -> None:
    """Record the run ``RUNNING``, owned by this process."""
    db.runs.begin(run_id, mode, as_of, params, started_at, symbols_requested, owner=owner())


def error_text(exc: BaseException) -> str:
    """What ended a run, one line, secrets redacted: ``interrupted by
    SIGINT``, or the exception's class and message."""
    if isinstance(exc, RunInterrupted):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted by {signal.Signals.SIGINT.name}"
    text = " ".join(str(exc).split()) or "(no message)"
    return redact(f"{type(exc).__name__}: {text}")


def status_for(exc: BaseException) -> str:
    """``ABORTED`` for an interrupt or an exit, ``FAILED`` for a failure."""
    return ABORTED if isinstance(exc, (RunInterrupted, KeyboardInterrupt, SystemExit)) else FAILED_RUN


def close_unfinished(db: Store, run_id: str, exc: BaseException, trail: AuditTrail | None = None) -> None:
    """Close the run that ``exc`` ended, if the store still takes the write.

    A store that refuses it (the disk is full, the database locked or
    damaged) leaves the row ``RUNNING``; the next run finds its owner dead
    and closes it ``ABORTED`` (``reconcile_dead_runs``).  Never raises: the
    caller re-raises ``exc``, which keeps its exit code."""
    status, error = status_for(exc), error_text(exc)
    try:
        db.runs.close_unfinished(run_id, status=status, error=error)
    except StoreError as store_exc:
        _event(trail, "run_not_closed", level="ERROR", status=status, error=error, store_error=str(store_exc))
        return
    _event(trail, "run_aborted" if status == ABORTED else "run_failed", level="ERROR", status=status, error=error)


def reconcile_dead_runs(db: Store, run_id: str, trail: AuditTrail | None = None) -> list[dict[str, str]]:
    """Close ``ABORTED`` every run still ``RUNNING`` whose owner process is
    known dead (same host: gone, or its pid reused), naming ``run_id`` (the
    run that found it).  A run whose owner lives, runs on another host or
    recorded none is left ``RUNNING``.  Returns the runs closed."""
    closed = []
    for row in db.runs.running():
        why = owner_gone(row.get("owner_pid"), row.get("owner_host"), row.get("owner_started"))
        if why is None:
            continue
        error = f"{why}: the run never finished (closed by run {run_id})"
        if db.runs.close_unfinished(row["run_id"], status=ABORTED, error=error):
            closed.append({"run_id": row["run_id"], "error": error})
            _event(trail, "run_reconciled", level="WARNING", reconciled_run=row["run_id"], status=ABORTED,
                   error=error)
    return closed


def _event(trail: AuditTrail | None, name: str, **fields: Any) -> None:
    # The trail may sit on the disk that just failed; its failure must not
    # hide the run's own error.
    if trail is None:
        return
    try:
        trail.append(name, **fields)
    except OSError:
        pass
