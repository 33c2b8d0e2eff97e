"""Nothing is sent that cannot be recorded: Stage 2's sinks, checked before
the first order of every cycle.

A cycle writes to three places: the database (the order, its fill, the
book), the logs (``logs/live.jsonl``, ``live_trading.log``, ``errors.jsonl``)
and the ticket directory (``runtime/tickets/``).  :func:`check_sinks` asks
each whether a write would land *now* - a read-only file or mount, a full
disk, a store locked by another writer - and returns the problems, each
naming the path.  A cycle with a problem sends nothing (``main.py
--run-once`` exits 1 naming the sink; the daemon skips the cycle, says so
once, and trades again when the sink is back).

The check is a probe, not a guarantee: a disk can fill between the probe
and the write.  What makes that safe is the order of writes (an order is in
the database before it is logged or reported, ``trading.agent``) and a log
that never aborts a cycle (``core.logs.AppendFileHandler`` counts what it
lost and says so in its next line).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from core.errors import StoreError
from core.runtime import RuntimePaths
from database import Store

# Below this much free space a sink is treated as full: a cycle writes a few
# KiB (orders, log lines, the ticket), and a filesystem at its last blocks
# fails small appends unpredictably.
MIN_FREE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SinkProblem:
    """One sink that cannot take a write now."""

    sink: str          # database, logs, tickets
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.sink} {self.path}: {self.reason}"


def _free_space_problem(sink: str, directory: Path) -> SinkProblem | None:
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        return SinkProblem(sink, str(directory), f"{type(exc).__name__}: {exc.strerror or exc}")
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return SinkProblem(sink, str(directory), f"disk full ({free} bytes free, {MIN_FREE_BYTES} needed)")
    return None


def _append_problem(sink: str, path: Path) -> SinkProblem | None:
    """Opening for append is what every write does first: a read-only
    mount, a missing or unwritable directory, a directory in the file's
    place all fail here.  Nothing is written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return SinkProblem(sink, str(path), f"{type(exc).__name__}: {exc.strerror or exc}")
    return _free_space_problem(sink, path.parent)


def _directory_problem(sink: str, directory: Path) -> SinkProblem | None:
    """A file can be created in ``directory`` (made and removed again)."""
    try:
        # The directory may be made, not its parents: a runtime directory
        # that vanished (an unmounted disk) must not be recreated empty.
        directory.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        return SinkProblem(sink, str(directory), f"{type(exc).__name__}: {exc.strerror or exc}")
    return _free_space_problem(sink, directory)


def check_sinks(db: Store, paths: RuntimePaths, log_files: Iterable[Path], *,
                tickets: bool = True) -> list[SinkProblem]:
    """The sinks a cycle must write that cannot take a write now (empty:
    every one can).  ``log_files``: the files of the run's log
    (``EventLog.files``); ``tickets``: whether this cycle writes a ticket."""
    problems: list[SinkProblem] = []
    try:
        db.check_writable()
    except (StoreError, OSError) as exc:
        problems.append(SinkProblem("database", db.location, str(exc)))
    for path in log_files:
        problem = _append_problem("logs", Path(path))
        if problem:
            problems.append(problem)
    if tickets:
        problem = _directory_problem("tickets", paths.tickets_dir)
        if problem:
            problems.append(problem)
    return problems
