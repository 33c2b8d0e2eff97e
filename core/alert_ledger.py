"""The alert policy's files under ``runtime/alerts/``, kept whatever the
store's condition: ``ledger.jsonl``, one line per alert decided (sent or
held back, and why), which the nightly cap counts across every command and
process; and ``state.json``, the open problems of whoever raises alerts
without a store (an operator command's exit, a store that is damaged,
locked or read-only by contract).

Writes are small and atomic (an appended line; ``state.json`` replaced
through a temporary file).  Two processes saving ``state.json`` at the same
instant may lose one update: at worst an alert is repeated, never lost.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from core.clock import record_stamp, utc_now

log = logging.getLogger(__name__)

_KEEP = dt.timedelta(days=7)          # ledger lines older than this are dropped when it is compacted
_COMPACT_BYTES = 1 << 20


class AlertLedger:
    """``ledger.jsonl`` and ``state.json`` in ``folder`` (``RuntimePaths.alerts_dir``).
    Every method but :meth:`append` and :meth:`save_problem` only reads; none raises on a
    damaged file (a line or a state that cannot be read is skipped and logged)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.ledger = self.folder / "ledger.jsonl"
        self.state = self.folder / "state.json"

    # ------------------------------------------------------------ ledger
    def append(self, entry: Mapping[str, Any]) -> None:
        """Add one decided alert (``ts`` a record stamp, ``outcome``, ``key``...)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.ledger, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(entry), sort_keys=True, default=str) + "\n")
        try:
            if self.ledger.stat().st_size > _COMPACT_BYTES:
                self._compact()
        except OSError as exc:
            log.warning("%s could not be compacted: %s", self.ledger, exc)

    def entries(self) -> list[dict[str, Any]]:
        """Every readable line of the ledger, oldest first."""
        try:
            lines = self.ledger.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def went_out_since(self, since: dt.datetime, outcomes: tuple[str, ...]) -> int:
        """How many alerts with one of ``outcomes`` were decided at or after ``since``."""
        stamp = record_stamp(since)
        return sum(1 for e in self.entries() if str(e.get("ts", "")) >= stamp and e.get("outcome") in outcomes)

    def _compact(self) -> None:
        stamp = record_stamp(utc_now() - _KEEP)
        kept = [e for e in self.entries() if str(e.get("ts", "")) >= stamp]
        self._replace(self.ledger, "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in kept))

    # ------------------------------------------------------------- state
    def _problems(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s): open problems start afresh", self.state, exc)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def open_problem(self, key: str) -> dict[str, Any] | None:
        """The open problem named ``key``, or None."""
        return self._problems().get(key)

    def save_problem(self, problem: Mapping[str, Any]) -> None:
        """Insert or replace the open problem ``problem["alert_key"]``."""
        problems = self._problems()
        problems[str(problem["alert_key"])] = dict(problem)
        self._write_state(problems)

    def clear_problem(self, key: str) -> bool:
        """Forget the open problem ``key``; True when there was one."""
        problems = self._problems()
        if key not in problems:
            return False
        del problems[key]
        self._write_state(problems)
        return True

    def _write_state(self, problems: Mapping[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._replace(self.state, json.dumps(problems, indent=1, sort_keys=True, default=str) + "\n")

    def _replace(self, path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
