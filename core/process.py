"""This process, as a run records it, and the stop requests it receives.

A run row names the process that runs it (``ProcessIdentity``: pid, host
and the process's start, so a pid reused by another process is not taken
for the run's owner).  ``owner_gone`` tells, from any process on the same
host, whether that owner has died: a run left ``RUNNING`` by a dead process
is then shown and closed as ``ABORTED`` (docs/decisions.md, D-R1).

``StopRequest`` carries a SIGINT/SIGTERM from the edge's signal handler to
the run, which checks it at safe points (never inside a transaction) and
raises ``RunInterrupted`` there (D-R3).
"""
from __future__ import annotations

import os
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import Interrupted

_PROC = Path("/proc")


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: the process's start in clock ticks
    since boot (the command name, field 2, may hold spaces: split after it)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _started(pid: int) -> str | None:
    """``boot_id:start_ticks``, unique per process on a host across reboots;
    None without /proc (then only the pid is checked)."""
    ticks = _start_ticks(pid)
    return f"{_boot_id() or '-'}:{ticks}" if ticks is not None else None


@dataclass(frozen=True)
class ProcessIdentity:
    """Who runs a run: ``pid`` on ``host``, started at ``started``."""

    pid: int
    host: str
    started: str | None

    @classmethod
    def current(cls) -> "ProcessIdentity":
        """This process."""
        pid = os.getpid()
        return cls(pid, socket.gethostname(), _started(pid))

    def describe(self) -> str:
        """``pid 123 on host desk1`` for messages."""
        return f"pid {self.pid} on host {self.host}"


def owner_gone(pid: int | None, host: str | None, started: str | None) -> str | None:
    """Why the recorded owner of a run is known to be dead, or None when it
    may still be alive: it runs, or it is on another host (which cannot be
    checked from here), or nothing was recorded (a run older than the
    owner columns).  A live process with the same pid but another start is
    a reused pid: the owner is gone."""
    if pid is None or not host:
        return None
    if host != socket.gethostname():
        return None
    owner = f"pid {pid} on host {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"{owner} is gone"
    except PermissionError:
        pass                     # exists, another user's process: compare its start below
    if started is not None:
        now = _started(pid)
        if now is not None and now != started:
            return f"{owner} is gone (the pid now belongs to another process)"
    return None


class RunInterrupted(Interrupted):
    """A run stopped at the operator's request (SIGINT/SIGTERM), raised by
    ``StopRequest.check`` at the run's safe points (between symbols, while
    it waits on fetches; no ``except`` of a provider lies on that path).
    The run closes its row ``ABORTED``; the edge exits 128 + the signal."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class StopRequest:
    """A stop asked of a running job by a signal (set from the signal
    handler: only an Event, safe there) and checked by the job at its safe
    points."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        """Ask the job to stop because of ``signum``."""
        if self.signum is None:
            self.signum = signum
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise RunInterrupted when a stop was asked."""
        if self._event.is_set():
            raise RunInterrupted(self.signum or signal.SIGINT)
