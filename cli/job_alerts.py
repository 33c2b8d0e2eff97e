"""Every operator command's last word: its exit code in the audit trail and,
through the one alert policy, a ``critical`` alert when it is not 0.

``cli.command.OperatorCommand`` calls :func:`report_exit` with the final
exit code and the error (typed or not) that ended the command.  The alert's
key is ``job.<command>.exit``: the same failure again (same code, same
error) is a DUPLICATE, a different one alerts again, and the next exit 0
sends the recovery notice.  The store is never opened here: its state is
``runtime/alerts/state.json`` (``core.alert_ledger``), so a missing,
damaged, locked or read-only store still gets its audit line and its alert,
deduplicated across runs, and a verify command still writes nothing to the
store.  Exit 64 (a usage error, refused before
anything is read or written) writes nothing: the exit code and the stderr
line are the whole answer.
"""
from __future__ import annotations

import logging
import secrets
import sys
import traceback
from typing import Any, Mapping

import click

from cli.exit_codes import OK, USAGE, error_line
from core.alert_policy import AlertPolicy
from core.alerts import AlertMessage
from core.clock import run_id_stamp
from core.errors import GovernedTradingError
from core.logs import AuditTrail
from core.runtime import RuntimePaths
from core.settings import Settings, load_settings

log = logging.getLogger(__name__)


def job_key(job: str) -> str:
    """The alert key of a command's exit: ``job.<command>.exit``."""
    return f"job.{job}.exit"


def report_exit(job: str, code: int, error: BaseException | None, params: Mapping[str, Any]) -> None:
    """Audit ``job``'s exit ``code`` (and ``error``) and raise or resolve its
    alert.  Never raises: a command's own exit code always wins."""
    if code == USAGE:
        return
    try:
        _report(job, code, error, params)
    except Exception as exc:  # noqa: BLE001 - the alert of a failure must never become the failure
        print(f"warning: the exit of {job} could not be alerted: {type(exc).__name__}: {exc}", file=sys.stderr)


def _report(job: str, code: int, error: BaseException | None, params: Mapping[str, Any]) -> None:
    db_param = params.get("db_path")
    paths = RuntimePaths.resolve(db_param if isinstance(db_param, str) else None)
    run_id = f"{run_id_stamp()}-{job}-{secrets.token_hex(2)}"
    what = _describe(error)
    trail = AuditTrail(paths.audit_jsonl, module=f"job.{job}", run_id=run_id)
    try:
        trail.append("job_exit", level="INFO" if code == OK else "ERROR", job=job, exit_code=code, **what)
    except OSError as exc:
        print(f"warning: {paths.audit_jsonl}: the exit of {job} could not be audited: {exc}", file=sys.stderr)
    policy = AlertPolicy(source=job, run_id=run_id, settings=_settings(), paths=paths, audit=trail)
    if code == OK:
        policy.resolve(job_key(job))
        return
    body = [f"{job} exited {code}" + (f": {what['error']}" if what.get("error") else ""),
            "See docs/error_codes.md for the code and runtime/audit/audit.jsonl for the run."]
    policy.raise_(job_key(job), AlertMessage(
        title=f"{job} exited {code}", body="\n".join(body), severity="critical",
        fingerprint=f"{code}|{what.get('error_type', '')}|{what.get('error', '')}",
        details={"job": job, "exit_code": code, "run_id": run_id, **what}))


def _describe(error: BaseException | None) -> dict[str, Any]:
    if error is None:
        return {}
    if isinstance(error, click.exceptions.Abort):
        return {"error_type": "Abort", "error": "interrupted (Ctrl-C or end of input)"}
    if isinstance(error, GovernedTradingError):
        return {"error_type": type(error).__name__, "error": error_line(error).removeprefix("error: ")}
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return {"error_type": type(error).__name__, "error": f"{type(error).__name__}: {error}{where}",
            "crash": True}


def _settings() -> Settings:
    try:
        return load_settings()
    except GovernedTradingError:
        return Settings()      # a malformed settings file is the failure being alerted: defaults
