"""Append-only JSON-lines audit trail (``runtime/audit/audit.jsonl``).

Each line: ``ts, level, module, run_id, event`` plus the event's fields.
Secret values from the environment are redacted before anything is written.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from core.redaction import redact


class AuditTrail:
    """Appends one JSON object per line; safe to share between threads."""

    def __init__(self, path: str | os.PathLike, *, module: str, run_id: str | None = None):
        self.path = Path(path)
        self.module = module
        self.run_id = run_id
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, event: str, level: str = "INFO", **fields: Any) -> None:
        record = {
            "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "module": self.module,
            "run_id": self.run_id,
            "event": event,
            **fields,
        }
        line = redact(json.dumps(record, default=str, sort_keys=False))
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
