"""Operator logs for Stage 2: one call, three sinks, no secrets.

Every record is a JSON object with ``ts, level, module, run_id, event`` plus
free fields.  It goes to

* ``logs/live.jsonl``        - every record (the structured audit trail);
* ``logs/errors.jsonl``      - ERROR/CRITICAL records, with the stack trace;
* ``logs/live_trading.log``  - one human line per record;
* the console (rich)         - the human line, unless ``console=None``.

Secrets are redacted here, at the logging layer, so no caller can leak one:
the values of environment variables whose names look like credentials
(``*_KEY``, ``*_KEY_ID``, ``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``,
``*PASSPHRASE*``) are replaced by ``***`` in every string of every record,
traceback included.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import traceback
from pathlib import Path

from core.redaction import MASK, redact_value, secret_values
from typing import Any, Mapping

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = MASK


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StructuredLog:
    """Thread-safe writer of the three log files (and the console)."""

    def __init__(self, logs_dir: str | os.PathLike, *, run_id: str, module: str = "trading",
                 console: Any = "auto", env: Mapping[str, str] | None = None):
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.module = module
        self._env = env
        self._lock = threading.Lock()
        if console == "auto":
            from rich.console import Console

            console = Console(highlight=False, soft_wrap=True)
        self.console = console

    @property
    def live_jsonl(self) -> Path:
        return self.logs_dir / "live.jsonl"

    @property
    def errors_jsonl(self) -> Path:
        return self.logs_dir / "errors.jsonl"

    @property
    def human_log(self) -> Path:
        return self.logs_dir / "live_trading.log"

    def log(self, level: str, event: str, *, module: str | None = None, message: str | None = None,
            exc: BaseException | None = None, **fields: Any) -> dict[str, Any]:
        """Write one record; returns it as written (redacted)."""
        level = level.upper()
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        record: dict[str, Any] = {"ts": _now(), "level": level, "module": module or self.module,
                                  "run_id": self.run_id, "event": event}
        if message is not None:
            record["message"] = message
        for key, value in fields.items():
            # A field named like a fixed key (run_id, event...) is kept, renamed, never dropped.
            record[key if key not in record else f"{key}_field"] = value
        if exc is not None:
            record["error_type"] = type(exc).__name__
            record["error"] = str(exc)
            record["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # Secrets are read at each write: a key exported after start-up is
        # still never written.
        record = redact_value(record, secret_values(self._env))
        line = json.dumps(record, sort_keys=False, default=str)
        human = self._human(record)
        with self._lock:
            with open(self.live_jsonl, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            if level in ("ERROR", "CRITICAL"):
                with open(self.errors_jsonl, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            with open(self.human_log, "a", encoding="utf-8") as fh:
                fh.write(f"{record['ts']} {level:<8} {record['module']:<16} {human}\n")
                if "traceback" in record:
                    fh.write(record["traceback"])
            if self.console is not None:
                style = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}.get(level)
                self.console.print(human, style=style, markup=False)
        return record

    @staticmethod
    def _human(record: Mapping[str, Any]) -> str:
        if "message" in record:
            return str(record["message"])
        extras = {k: v for k, v in record.items()
                  if k not in ("ts", "level", "module", "run_id", "event", "traceback")}
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{record['event']} {tail}".rstrip()

    def info(self, event: str, **fields: Any) -> dict[str, Any]:
        return self.log("INFO", event, **fields)

    def warning(self, event: str, **fields: Any) -> dict[str, Any]:
        return self.log("WARNING", event, **fields)

    def error(self, event: str, **fields: Any) -> dict[str, Any]:
        return self.log("ERROR", event, **fields)
