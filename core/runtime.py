"""Where the product keeps its state: one runtime directory per desk.

``RUNTIME_DIR`` (default ``<repo>/runtime``) holds the database, the kill
switch, the governance halt log, the audit trail and the raw archive.
``LOGS_DIR`` (default ``<repo>/logs``, or ``$RUNTIME_DIR/logs`` when
``RUNTIME_DIR`` is set) holds the operator logs.  Tests point both at tmp.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.settings import REPO_ROOT

DB_FILENAME = "institutional_trading.db"
# A store given as a URL (sqlite:///path, postgresql://...) rather than a path.
_STORE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class _UnderRoot:
    """A fixed path under ``RuntimePaths.root``, read like an attribute."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, paths: "RuntimePaths | None", owner: type) -> "Path | _UnderRoot":
        return self if paths is None else paths.root.joinpath(*self.parts)


@dataclass(frozen=True)
class RuntimePaths:
    root: Path
    logs: Path
    db: Path | str
    """The store: the database file (absolute), or the URL given with
    ``--db`` kept verbatim (a str).  Only ``database`` reads it
    (``open_store``, ``store_exists``); the rest of the product shows it."""

    @classmethod
    def resolve(cls, db: str | os.PathLike | None = None) -> "RuntimePaths":
        env_root = os.environ.get("RUNTIME_DIR")
        root = Path(env_root) if env_root else REPO_ROOT / "runtime"
        env_logs = os.environ.get("LOGS_DIR")
        if env_logs:
            logs = Path(env_logs)
        else:
            logs = root / "logs" if env_root else REPO_ROOT / "logs"
        text = os.fspath(db) if db else ""
        if _STORE_URL.match(text):
            # A path would fold the URL's '//'; which schemes serve is database.open_store's call.
            return cls(root=root.resolve(), logs=logs.resolve(), db=text)
        db_path = Path(text) if text else root / DB_FILENAME
        return cls(root=root.resolve(), logs=logs.resolve(), db=db_path.resolve())

    # The runbook's files and directories under the runtime root.
    kill_switch = _UnderRoot("KILL_SWITCH")
    governance_halt_log = _UnderRoot("governance_halt.log")
    audit_jsonl = _UnderRoot("audit", "audit.jsonl")
    alerts_dir = _UnderRoot("alerts")
    alerts_muted = _UnderRoot("ALERTS_MUTED")   # the maintenance mute (core.alert_policy)
    tickets_dir = _UnderRoot("tickets")
    models_dir = _UnderRoot("models")

    def raw_dir(self, run_id: str) -> Path:
        """``runtime/raw/{run_id}/``: the run's archived vendor payloads."""
        return self.root / "raw" / run_id
