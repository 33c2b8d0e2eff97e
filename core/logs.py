"""The product's one logging setup: stdlib ``logging``, JSON lines, no secrets.

The runbook's files, and the log that writes each:

=============================  ===============  ================================================
file                           log              records
=============================  ===============  ================================================
``logs/live_trading.log``      ``OperatorLog``  every Stage 2 record, one human line (+ the
                                                stack trace of an exception)
``logs/live.jsonl``            ``OperatorLog``  every Stage 2 record (the structured trail)
``logs/errors.jsonl``          ``OperatorLog``  ERROR and CRITICAL records, with the stack trace
``runtime/audit/audit.jsonl``  ``AuditTrail``   the ingestion audit trail (ingest, verify and
                                                repair runs, their alerts)
=============================  ===============  ================================================

A JSON record is one object per line: ``ts, level, module, run_id, event``,
then ``message`` when there is one, the event's own fields, and for an
exception ``error_type, error, traceback``.  ``ts`` is UTC in the form each
file has always had (``core.clock``: microseconds in ``logs/``,
milliseconds in the audit trail).

How it is built.  Each ``OperatorLog``/``AuditTrail`` owns a private stdlib
logger that is not registered in logging's global tree, with file handlers
bound to the paths resolved when it is made (``$LOGS_DIR``,
``$RUNTIME_DIR``): two desks in one process, or two tests, never write into
each other's files, and nothing global is left behind.  The
:class:`RedactionFilter` on that logger masks every secret in every record
before any handler sees it, the console included.  The console itself
(rich, for human operators) belongs to the edge: ``cli`` attaches it with
:meth:`EventLog.attach`.  Library modules keep the stdlib idiom
``logging.getLogger(__name__)``; while a Stage 2 run is open its log takes
their records too (:meth:`EventLog.capture`).  ``close()`` detaches all of
it.  The file handlers open their file for each record only, so a log that
is never closed holds no file open.  A write that fails never raises into
the caller (a logging failure must not abort a trading cycle half-way):
it is counted per file, the record still reaches the console, and the next
write that succeeds says how many records were lost and why
(:class:`AppendFileHandler`, :meth:`EventLog.sink_failures`).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from core.clock import UTC, record_stamp, trail_stamp
from core.redaction import redact_value, secret_values

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The product's packages: the stdlib loggers a Stage 2 run captures.
PRODUCT_PACKAGES = ("core", "data", "database", "reports", "trading")
# A stdlib record captured from a library module is this event.
LIBRARY_EVENT = "LOG"

_FIELDS = "structured"   # the LogRecord attribute holding module, run_id, event and the fields
_HUMAN_HIDDEN = ("module", "run_id", "event", "traceback")


def _exception_fields(exc: BaseException) -> dict[str, str]:
    """``error_type, error, traceback`` of an exception (its causes included)."""
    return {"error_type": type(exc).__name__, "error": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """A record's structured part: ``module, run_id, event`` and the rest.
    A plain stdlib record (not made by an :class:`EventLog`) reads as a
    ``LOG`` event of its logger, its text as the message."""
    fields = getattr(record, _FIELDS, None)
    if fields is None:
        fields = {"module": record.name, "run_id": None, "event": LIBRARY_EVENT, "message": record.getMessage()}
        if record.exc_info and record.exc_info[1] is not None:
            fields.update(_exception_fields(record.exc_info[1]))
        setattr(record, _FIELDS, fields)
    return fields


def human_text(record: logging.LogRecord) -> str:
    """The line an operator reads: the message, or the event and its fields."""
    fields = fields_of(record)
    if "message" in fields:
        return str(fields["message"])
    tail = " ".join(f"{k}={v}" for k, v in fields.items() if k not in _HUMAN_HIDDEN)
    return f"{fields['event']} {tail}".rstrip()


def _instant(record: logging.LogRecord) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.created, UTC)


class RedactionFilter(logging.Filter):
    """Masks secrets (``core.redaction``: credential-named environment
    variables and registered values) in every string of a record, keys,
    nested values and the stack trace included.  The secrets are read at
    each record, so a key exported after start-up is still never written."""

    def __init__(self, env: Mapping[str, str] | None = None):
        super().__init__()
        self._env = env

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values(self._env)
        # As JSON first, so a value written through str() (a path, a date,
        # an object) is masked too.
        plain = json.loads(json.dumps(fields_of(record), default=str))
        setattr(record, _FIELDS, redact_value(plain, secrets))
        record.msg, record.args = redact_value(record.getMessage(), secrets), None
        record.exc_info, record.exc_text = None, None   # already in the fields, redacted
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object: ``ts, level, module, run_id, event`` and the fields."""

    def __init__(self, stamp: Callable[[dt.datetime], str]):
        super().__init__()
        self.stamp = stamp

    def format(self, record: logging.LogRecord) -> str:
        body = {"ts": self.stamp(_instant(record)), "level": record.levelname, **fields_of(record)}
        return json.dumps(body, default=str)


class HumanLineFormatter(logging.Formatter):
    """``ts LEVEL module text``, then the stack trace of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        fields = fields_of(record)
        line = f"{record_stamp(_instant(record))} {record.levelname:<8} {fields['module']:<16} {human_text(record)}"
        if "traceback" in fields:
            line += "\n" + str(fields["traceback"]).rstrip("\n")
        return line


class AppendFileHandler(logging.Handler):
    """Appends each record to ``path``, opening the file for that record
    only: no descriptor is held between records (nothing to leak, a rotated
    or removed file is created again, other processes may append too).

    A failed write (a full disk, a read-only directory) never raises into
    the code that logged: the record still reaches the log's other handlers
    (the operator's console), the failure is counted in ``missed`` with the
    last ``error``, and the next write that succeeds is preceded by a
    ``LOG_RECORDS_MISSED`` line saying how many records this file lost and
    why.  ``raise_errors`` (the ingestion audit trail, whose run must not
    go on without its trail) raises the ``OSError`` instead.  Stage 2 checks its sinks before it sends an order
    (``trading.sinks``), so a lost line never hides an order: the order is
    in the database first."""

    def __init__(self, path: str | os.PathLike, formatter: logging.Formatter, level: int = logging.NOTSET, *,
                 raise_errors: bool = False):
        super().__init__(level)
        self.path = Path(path)
        self.setFormatter(formatter)
        self.raise_errors = raise_errors
        self.missed = 0
        self.error: str | None = None
        self._missed_since: dt.datetime | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                if self.missed:
                    fh.write(self._missed_line(record) + "\n")
                fh.write(text + "\n")
        except OSError as exc:
            if not self.missed:
                self._missed_since = _instant(record)
            self.missed += 1
            self.error = f"{type(exc).__name__}: {exc}"
            if self.raise_errors:
                raise
            return
        self.missed, self.error, self._missed_since = 0, None, None

    def _missed_line(self, record: logging.LogRecord) -> str:
        """The notice written ahead of the first record after a failure."""
        fields = {"module": "core.logs", "run_id": fields_of(record).get("run_id"), "event": "LOG_RECORDS_MISSED",
                  "message": f"{self.missed} record(s) could not be written to {self.path} since "
                             f"{record_stamp(self._missed_since)}: {self.error}",
                  "missed": self.missed, "error": self.error}
        notice = logging.makeLogRecord({"levelname": "WARNING", "levelno": logging.WARNING,
                                        "created": record.created, _FIELDS: fields})
        return self.format(notice)


class _Capture(logging.Handler):
    """Hands a library module's stdlib record to an :class:`EventLog`."""

    def __init__(self, log: "EventLog"):
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = record.exc_info[1] if record.exc_info else None
            self.log.log(record.levelname, LIBRARY_EVENT, module=record.name, message=record.getMessage(), exc=exc)
        except Exception:  # noqa: BLE001 - a library's log call must never fail because of ours
            self.handleError(record)


class EventLog:
    """Structured records (an event and its fields) through one private
    stdlib logger and its handlers; thread-safe, and every file receives the
    records in the same order."""

    def __init__(self, name: str, handlers: Iterable[logging.Handler], *, run_id: str | None, module: str,
                 env: Mapping[str, str] | None = None):
        self.run_id = run_id
        self.module = module
        # Made directly, not by logging.getLogger: a per-run logger must not
        # outlive its run in logging's global registry.
        self._logger = logging.Logger(name, logging.DEBUG)
        self._logger.propagate = False
        self._logger.addFilter(RedactionFilter(env))
        for handler in handlers:
            self._logger.addHandler(handler)
        self._lock = threading.RLock()
        self._captured: list[tuple[logging.Logger, logging.Handler]] = []

    def log(self, level: str, event: str, *, module: str | None = None, message: str | None = None,
            exc: BaseException | None = None, **fields: Any) -> None:
        """Write one record (``exc``: its type, text and stack trace too)."""
        name = level.upper()
        if name not in LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        body: dict[str, Any] = {"module": module or self.module, "run_id": self.run_id, "event": event}
        if message is not None:
            body["message"] = message
        for key, value in fields.items():
            # A field named like a fixed key (run_id, event...) is kept, renamed, never dropped.
            body[f"{key}_field" if key in body or key in ("ts", "level") else key] = value
        if exc is not None:
            body.update(_exception_fields(exc))
        record = self._logger.makeRecord(self._logger.name, getattr(logging, name), "(unknown file)", 0, event,
                                         None, None, extra={_FIELDS: body})
        with self._lock:
            self._logger.handle(record)

    def info(self, event: str, **fields: Any) -> None:
        self.log("INFO", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("WARNING", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("ERROR", event, **fields)

    def sink_failures(self) -> dict[str, tuple[int, str]]:
        """The files whose last write failed: path -> (records missed, error)."""
        return {str(h.path): (h.missed, h.error or "") for h in self._logger.handlers
                if isinstance(h, AppendFileHandler) and h.missed}

    @property
    def files(self) -> list[Path]:
        """The files this log writes."""
        return [h.path for h in self._logger.handlers if isinstance(h, AppendFileHandler)]

    def attach(self, handler: logging.Handler) -> None:
        """Send the records to ``handler`` too (the edge's console)."""
        self._logger.addHandler(handler)

    def capture(self) -> None:
        """Until :meth:`close`, records of the product's stdlib loggers
        (``logging.getLogger(__name__)`` in its modules) are written here
        too, at the level they let through (WARNING unless configured)."""
        for package in PRODUCT_PACKAGES:
            logger, handler = logging.getLogger(package), _Capture(self)
            logger.addHandler(handler)
            self._captured.append((logger, handler))

    def close(self) -> None:
        """Release the captured loggers and detach and close every handler."""
        for logger, handler in self._captured:
            logger.removeHandler(handler)
        self._captured.clear()
        for handler in list(self._logger.handlers):
            self._logger.removeHandler(handler)
            handler.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OperatorLog(EventLog):
    """Stage 2's log: ``live_trading.log``, ``live.jsonl`` and ``errors.jsonl``
    under ``logs_dir`` (``RuntimePaths.logs``); ``module`` is the default of
    each record's ``module``."""

    def __init__(self, logs_dir: str | os.PathLike, *, run_id: str, module: str = "trading",
                 env: Mapping[str, str] | None = None):
        logs, jsonl = Path(logs_dir), JsonLinesFormatter(record_stamp)
        super().__init__(f"operator:{run_id}", [
            AppendFileHandler(logs / "live.jsonl", jsonl),
            AppendFileHandler(logs / "errors.jsonl", jsonl, logging.ERROR),
            AppendFileHandler(logs / "live_trading.log", HumanLineFormatter()),
        ], run_id=run_id, module=module, env=env)


class AuditTrail(EventLog):
    """The ingestion audit trail of one run (or module): appends to
    ``path`` (``RuntimePaths.audit_jsonl``)."""

    def __init__(self, path: str | os.PathLike, *, module: str, run_id: str | None = None,
                 env: Mapping[str, str] | None = None):
        super().__init__(f"audit:{module}:{run_id}",
                         [AppendFileHandler(path, JsonLinesFormatter(trail_stamp), raise_errors=True)],
                         run_id=run_id, module=module, env=env)

    def append(self, event: str, level: str = "INFO", **fields: Any) -> None:
        """Write one event (``level``: INFO, WARNING, ERROR...)."""
        self.log(level, event, **fields)
