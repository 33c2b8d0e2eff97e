"""Third-party libraries' logging: never on stdout, never repeated.

The vendor clients log on their own: polygon-api-client attaches a
``StreamHandler(sys.stdout)`` to its ``RESTClient`` logger at import (so a
truncated or HTML answer printed ``RESTClient ERROR: ...`` ahead of a
``--json`` document), and yfinance warns ``Cookie/crumb fetch failed`` once
per request while Yahoo is unreachable (20-odd identical lines a run).

* :func:`release_stdout_handlers` takes every logging handler that writes
  to standard output off its logger (any logger of the process, whenever
  its library was imported) and lets the records propagate to the root
  logger instead.  Vendor providers call it when they are built; the edge
  calls it when a command starts.
* :class:`RepeatCollapser` is the root handler the edge installs
  (:func:`collapsed_library_logs`): each distinct message once, on stderr,
  then counted; a long-running command shows the count again at 10, 100,
  1000... repeats, and the total is shown when the command ends.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import sys
import threading
from typing import IO, Callable, Iterator


def _writes_stdout(stream: object) -> bool:
    if stream is None:
        return False
    if stream is sys.__stdout__ or stream is sys.stdout:
        return True
    try:
        return stream.fileno() == 1  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _writes_stderr(stream: object) -> bool:
    if stream is sys.__stderr__ or stream is sys.stderr:
        return True
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def release_stdout_handlers(libraries: tuple[str, ...] = ()) -> list[str]:
    """Remove every handler that streams a logger's records to standard
    output (file handlers are kept) and make that logger propagate to the
    root, where the edge's handler writes them to stderr.  The loggers named
    in ``libraries`` lose every console handler not on stderr, whatever
    stream they were bound to when their library was imported (a test's
    captured stdout, say).  Returns the names of the loggers changed.
    Idempotent and cheap: call it after importing a library that may have
    attached such a handler."""
    changed = []
    loggers = [logging.getLogger()] + [lg for lg in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        named = logger.name in libraries
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and (_writes_stdout(handler.stream) or (named and not _writes_stderr(handler.stream))):
                logger.removeHandler(handler)
                if logger.name != "root":
                    logger.propagate = True
                changed.append(logger.name)
    return changed


class RepeatCollapser(logging.Handler):
    """Writes each distinct record (logger, level, message template) once;
    repeats are counted and shown at 10, 100, 1000... and in
    :meth:`summary` (called when the command ends)."""

    def __init__(self, stream: Callable[[], IO[str]] = lambda: sys.stderr, level: int = logging.WARNING):
        super().__init__(level)
        self._stream = stream
        self._counts: collections.Counter[tuple[str, int, str]] = collections.Counter()
        self._text: dict[tuple[str, int, str], str] = {}
        self._shown_at: dict[tuple[str, int, str], int] = {}
        self._lock_counts = threading.Lock()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))

    @staticmethod
    def key(record: logging.LogRecord) -> tuple[str, int, str]:
        """What makes two records "the same": logger, level and the message
        template (its arguments may differ)."""
        return record.name, record.levelno, str(record.msg)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record if it is the first of its kind (or its count is
        a power of ten); else count it."""
        try:
            key = self.key(record)
            with self._lock_counts:
                self._counts[key] += 1
                n = self._counts[key]
                if n == 1:
                    self._text[key] = self.format(record)
                show = n == 1 or _is_power_of_ten(n)
                if show:
                    self._shown_at[key] = n
            if show:
                line = self._text[key] if n == 1 else f"{self._text[key]} [seen {n} times]"
                self._write(line)
        except Exception:  # noqa: BLE001 - a closed stderr must not stop the run
            self.handleError(record)

    def _write(self, line: str) -> None:
        stream = self._stream()
        stream.write(line.splitlines()[0] if line else line)
        stream.write("\n")
        stream.flush()

    @property
    def counts(self) -> dict[str, int]:
        """Message -> times seen, for every distinct record so far."""
        with self._lock_counts:
            return {self._text[k]: n for k, n in self._counts.items()}

    def summary(self) -> list[str]:
        """One line per message seen more often than last shown."""
        with self._lock_counts:
            return [f"{self._text[k]} [seen {n} times in all]" for k, n in self._counts.items()
                    if n > self._shown_at.get(k, 0)]

    def flush_summary(self) -> None:
        """Write :meth:`summary` to the stream."""
        for line in self.summary():
            self._write(line)


def _is_power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


@contextlib.contextmanager
def collapsed_library_logs() -> Iterator[RepeatCollapser]:
    """For the length of a command: library handlers off stdout, library
    warnings and errors on stderr through one :class:`RepeatCollapser` on the
    root logger, their repeat counts written at the end."""
    release_stdout_handlers()
    root = logging.getLogger()
    collapser = RepeatCollapser()
    root.addHandler(collapser)
    try:
        yield collapser
    finally:
        root.removeHandler(collapser)
        collapser.flush_summary()
