"""One alert policy for every failure path: what is sent, what is held back
and why, across runs and commands.

An alert names its problem by a stable key (``ingest.verification_failed``,
``providers.all_failed``, ``job.ingest_history.exit``, ``daemon.safe_mode``,
``symbol.AAPL.degraded``...).  The owner of a problem reports it with
:meth:`AlertPolicy.raise_` while it holds and :meth:`AlertPolicy.resolve`
when it no longer does (or :meth:`AlertPolicy.report` with the message or
None); nobody else resolves a key.

* **Dedupe across runs**: a problem alerts once; raised again with the same
  fingerprint (the message's ``fingerprint``, default its title and body)
  and a severity no higher than the one delivered, it is recorded as
  DUPLICATE.  A changed fingerprint or a higher severity alerts again.
  An alert that was not delivered (muted, throttled, failed) does not count:
  the next raise tries again.
* **Recovery notice**: resolving a key that was delivered sends one ``info``
  notice (whatever ``alerts.min_severity``) and forgets the problem.
* **The nightly cap**: at most ``alerts.max_per_night`` alerts go out in any
  rolling 24 hours (a "night"), over every command and process of the
  runtime directory (counted in ``runtime/alerts/ledger.jsonl``: SENT,
  PARTIAL and DRY_RUN); the rest are THROTTLED.  A ``critical`` alert is
  never held back by the cap (it counts toward it).
* **Mute**: while ``runtime/ALERTS_MUTED`` exists and has not expired, every
  alert is recorded as MUTED and nothing is sent (:func:`parse_mute`).
* Everything held back is recorded (``alerts`` table and the audit trail)
  with its outcome and a note saying why.

The open problems live in the store (``alert_state``, through
``db.alerts``) when one is given, else (an operator command's exit, a
damaged or locked store) in ``runtime/alerts/state.json``
(``core.alert_ledger``); every decision is also a line of the ledger.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from core.alert_ledger import AlertLedger
from core.alerts import (BELOW_SEVERITY, DRY_RUN, DUPLICATE, MUTED, PARTIAL, SENT, SEVERITIES, THROTTLED,
                         Alerter, AlertMessage, AlertResult, AlertStore, AuditSink)
from core.clock import record_stamp, utc_now
from core.errors import StoreError
from core.runtime import RuntimePaths
from core.settings import AlertsSettings, Settings

log = logging.getLogger(__name__)

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
NIGHT = dt.timedelta(hours=24)
COUNTED = (SENT, PARTIAL, DRY_RUN)        # what the nightly cap counts: alerts that went out
_MUTE_KEYS = {"until": "until", "expires": "until", "reason": "reason"}


# ------------------------------------------------------------------- mute
@dataclass(frozen=True)
class Mute:
    """What the mute file says at a moment: ``active`` (alerts are held as
    MUTED), until when (None: until the file is removed), why; ``problem``
    names why a file present mutes nothing (expired, unreadable)."""

    active: bool
    until: dt.datetime | None = None
    reason: str | None = None
    problem: str | None = None

    def note(self) -> str:
        """The note recorded with a muted alert."""
        until = f"until {self.until.isoformat()}" if self.until else "until runtime/ALERTS_MUTED is removed"
        return f"muted {until}" + (f": {self.reason}" if self.reason else "")


def parse_mute(text: str, now: dt.datetime) -> Mute:
    """Read the mute file's text at ``now`` (UTC).  Empty: muted until the
    file is removed.  Otherwise ``key: value`` (or ``key = value``) lines,
    ``#`` comments: ``until`` (or ``expires``), an ISO-8601 date-time
    (``2026-12-08T06:00Z``; without an offset it is UTC; a date alone is
    00:00 UTC that day), and ``reason``.  A past ``until`` mutes nothing.
    Anything else (an unknown key, an unreadable time) mutes nothing and
    says why: an operator's typo never silences an alert.  Never raises."""
    until: dt.datetime | None = None
    reason: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = min((i for i in (line.find(":"), line.find("=")) if i > 0), default=-1)
        name = line[:sep].strip().lower() if sep > 0 else ""
        value = line[sep + 1:].strip().strip('"').strip("'") if sep > 0 else ""
        if name not in _MUTE_KEYS:
            return Mute(False, problem=f"line {number}: expected 'until: <ISO time>' or 'reason: <text>', "
                                       f"got {line[:60]!r}")
        if _MUTE_KEYS[name] == "reason":
            reason = value[:200] or None
            continue
        try:
            until = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return Mute(False, problem=f"line {number}: until {value[:40]!r} is not an ISO-8601 time")
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.timezone.utc)
    if until is not None and now >= until:
        return Mute(False, until, reason, problem=f"mute expired at {until.isoformat()}")
    return Mute(True, until, reason)


def read_mute(path: str | os.PathLike, now: dt.datetime) -> Mute | None:
    """The mute file at ``path`` read at ``now``; None when there is none."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Mute(False, problem=f"{path}: {exc.strerror or exc}")
    return parse_mute(text[:10_000], now)


def fingerprint_of(message: AlertMessage) -> str:
    """The message's fingerprint, or a digest of its title and body."""
    if message.fingerprint:
        return message.fingerprint
    return hashlib.sha256(f"{message.title}\n{message.body}".encode()).hexdigest()[:16]


# ----------------------------------------------------------------- policy
class AlertPolicy:
    """Raise and resolve problems by key (see the module docstring).

    ``source`` names who raises (``ingest_history``, ``trading_daemon``);
    ``store`` is ``db.alerts`` (or None); ``audit`` an audit trail
    (``core.logs.AuditTrail``); ``paths`` gives the mute file and the dry-run
    folder; the rest as :class:`core.alerts.Alerter`.  Never raises on a
    delivery, recording or state failure.
    """

    def __init__(self, *, source: str, run_id: str | None = None, settings: Settings | None = None,
                 store: AlertStore | None = None, audit: AuditSink | None = None,
                 paths: RuntimePaths | None = None, alerts_dir: str | os.PathLike | None = None,
                 urls: Sequence[str] | None = None, dry_run: bool | None = None,
                 env: Mapping[str, str] | None = None, clock: Callable[[], dt.datetime] = utc_now):
        paths = paths or RuntimePaths.resolve()
        conf = settings.alerts if settings else AlertsSettings()
        self.source = source
        self.store = store
        self.clock = clock
        self.mute_file = paths.alerts_muted
        self.max_per_night = conf.max_per_night
        self.ledger = AlertLedger(alerts_dir if alerts_dir is not None else paths.alerts_dir)
        self.alerter = Alerter(run_id=run_id, urls=urls, dry_run=dry_run, settings=settings, store=store,
                               audit=audit, alerts_dir=alerts_dir if alerts_dir is not None else paths.alerts_dir,
                               env=env, clock=clock)

    @property
    def results(self) -> list[AlertResult]:
        """Every alert this policy raised or resolved, in order."""
        return self.alerter.results

    # ------------------------------------------------------------- public
    def raise_(self, key: str, message: AlertMessage) -> AlertResult:
        """Report that problem ``key`` holds, as ``message``: sent, or
        recorded as DUPLICATE / MUTED / THROTTLED / BELOW_SEVERITY with why."""
        now = self.clock()
        message = self.alerter.clean(replace(message, key=key, recovery=False))
        message = replace(message, fingerprint=fingerprint_of(message))
        problem = self._load(key)
        sent_severity = problem.get("sent_severity") if problem else None
        if (sent_severity is not None and problem.get("sent_fingerprint") == message.fingerprint
                and _RANK[message.severity] <= _RANK[sent_severity]):
            result = self.alerter.hold(message, DUPLICATE, f"already alerted at {problem['last_sent']} "
                                                           f"({sent_severity}); unchanged since")
        else:
            result = self._deliver(message, now, enforce_min_severity=True)
        stamp = record_stamp(now)
        state = dict(problem or {"alert_key": key, "first_seen": stamp, "occurrences": 0})
        state.update(severity=message.severity, fingerprint=message.fingerprint, title=message.title,
                     source=self.source, last_seen=stamp, occurrences=int(state.get("occurrences") or 0) + 1)
        if result.outcome in COUNTED:
            state.update(sent_severity=message.severity, sent_fingerprint=message.fingerprint, last_sent=stamp)
        self._save(state)
        self._log(result)
        return result

    def resolve(self, key: str, body: str | None = None) -> AlertResult | None:
        """Report that problem ``key`` no longer holds: forget it and, when an
        alert went out for it, send one ``info`` recovery notice.  None when
        the key was not open (nothing to say)."""
        problem = self._load(key)
        if problem is None:
            return None
        self._clear(key)
        if problem.get("sent_severity") is None:
            self.alerter.audit_note("ALERT_CLEARED", key=key, note="cleared before any alert went out")
            return None
        message = self.alerter.clean(AlertMessage(
            title=f"Recovered: {problem['title']}", severity="info", key=key, recovery=True,
            body=body or f"{key} no longer holds (first seen {problem['first_seen']}, "
                         f"raised {problem['occurrences']} time(s), alerted {problem['last_sent']}).",
            details={"key": key, "cleared_by": self.source, "was": problem.get("sent_severity")}))
        result = self._deliver(message, self.clock(), enforce_min_severity=False)
        self._log(result)
        return result

    def report(self, key: str, message: AlertMessage | None) -> AlertResult | None:
        """:meth:`raise_` when ``message`` is given, :meth:`resolve` when None."""
        return self.raise_(key, message) if message is not None else self.resolve(key)

    def mute(self) -> Mute | None:
        """The mute file as it reads now (None: there is none)."""
        return read_mute(self.mute_file, self.clock())

    # ------------------------------------------------------------ private
    def _deliver(self, message: AlertMessage, now: dt.datetime, *, enforce_min_severity: bool) -> AlertResult:
        mute = self.mute()
        if mute is not None and mute.active:
            return self.alerter.hold(message, MUTED, mute.note())
        if mute is not None and mute.problem:
            log.warning("%s ignored: %s", self.mute_file, mute.problem)
        if enforce_min_severity and _RANK[message.severity] < _RANK[self.alerter.min_severity]:
            return self.alerter.hold(message, BELOW_SEVERITY, f"under alerts.min_severity {self.alerter.min_severity}")
        if message.severity != "critical":
            went_out = self._went_out_since(now - NIGHT)
            if went_out >= self.max_per_night:
                return self.alerter.hold(message, THROTTLED, f"{went_out} alert(s) went out in the last 24 h "
                                                             f"(alerts.max_per_night {self.max_per_night})")
        return self.alerter.send(message, enforce_min_severity=False)

    def _went_out_since(self, since: dt.datetime) -> int:
        return self.ledger.went_out_since(since, COUNTED)

    def _log(self, result: AlertResult) -> None:
        m = result.message
        try:
            self.ledger.append({"ts": record_stamp(self.clock()), "run_id": self.alerter.run_id,
                                "source": self.source, "key": m.key, "severity": m.severity,
                                "recovery": m.recovery, "title": m.title, "outcome": result.outcome,
                                "note": result.note, "artifact": str(result.artifact) if result.artifact else None})
        except OSError as exc:
            log.warning("%s could not be written: %s", self.ledger.ledger, exc)

    def _load(self, key: str) -> dict[str, Any] | None:
        if self.store is not None:
            try:
                found = self.store.open_problem(key)
                if found is not None:
                    return found
            except StoreError as exc:
                log.warning("alert %s: the store cannot say whether it was alerted (%s)", key, exc)
        return self.ledger.open_problem(key)

    def _save(self, state: dict[str, Any]) -> None:
        if self.store is not None:
            try:
                self.store.save_problem(state)
                if self.ledger.open_problem(state["alert_key"]) is not None:
                    self.ledger.clear_problem(state["alert_key"])
                return
            except StoreError as exc:
                log.warning("alert %s: the store could not save it (%s); kept in %s", state["alert_key"], exc,
                            self.ledger.state)
            except OSError as exc:
                log.warning("%s: %s", self.ledger.state, exc)
                return
        try:
            self.ledger.save_problem(state)
        except OSError as exc:
            log.warning("alert %s: its state could not be saved (%s)", state["alert_key"], exc)

    def _clear(self, key: str) -> None:
        if self.store is not None:
            try:
                self.store.clear_problem(key)
            except StoreError as exc:
                log.warning("alert %s: its state could not be cleared in the store (%s)", key, exc)
        try:
            self.ledger.clear_problem(key)
        except OSError as exc:
            log.warning("alert %s: its state could not be cleared (%s)", key, exc)
