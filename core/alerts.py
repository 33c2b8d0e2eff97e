"""Operator alerts through apprise (Slack, Discord, Telegram, ntfy, JSON webhooks...).

Targets are apprise URLs from ``ALERT_URLS`` (separated by commas or
whitespace), e.g. ``slack://T000/B000/XXXX``, ``discord://id/token``,
``tgram://bottoken/chatid``, ``ntfy://topic``, ``json://host:port/path``.

* Severity: ``info < warning < error < critical``; alerts below
  ``alerts.min_severity`` are recorded, not sent.
* Throttling: at most ``alerts.max_per_run`` alerts go out per run; the rest
  are recorded as THROTTLED.  An alert with a ``key`` goes out once per run.
  Across runs (dedupe by key, the nightly cap, recovery notices, the mute
  file) the product raises alerts through ``core.alert_policy.AlertPolicy``,
  which delivers through an :class:`Alerter`.
* Dry run (``ALERT_DRY_RUN=1``, ``alerts.dry_run`` or ``dry_run=True``): each
  alert is written as a JSON artifact under ``runtime/alerts/{run_id}/``
  (``$RUNTIME_DIR/alerts`` unless ``alerts_dir`` says otherwise) instead of
  being sent.
* An unreachable or malformed URL never raises: the failure is logged,
  recorded in the ``alerts`` table (when a database is given) and in the audit
  trail (when one is given), and returned in the :class:`AlertResult`.
* Alerts never carry secrets: title, body and details pass through
  :func:`core.redaction.redact`, and the alert URLs' own credentials are masked
  too.  URLs are never stored or shown, only their service (``slack#1``).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import parse_qsl, urlsplit

import apprise

from core.clock import record_stamp, trail_stamp, utc_now
from core.errors import StoreError
from core.redaction import MASK, redact
from core.runtime import RuntimePaths
from core.settings import ALERT_SEVERITIES, AlertsSettings, Settings

log = logging.getLogger(__name__)

SEVERITIES = ALERT_SEVERITIES
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_NOTIFY_TYPE = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                "error": apprise.NotifyType.FAILURE, "critical": apprise.NotifyType.FAILURE}
_TRUE = {"1", "true", "yes", "on"}

# Outcomes recorded per alert.
SENT = "SENT"                      # every target accepted it
PARTIAL = "PARTIAL"                # some targets failed
FAILED = "FAILED"                  # every target failed
DRY_RUN = "DRY_RUN"                # written as an artifact, not sent
THROTTLED = "THROTTLED"            # over max_per_run
DUPLICATE = "DUPLICATE"            # same key already alerted in this run
NOT_CONFIGURED = "NOT_CONFIGURED"  # no ALERT_URLS
BELOW_SEVERITY = "BELOW_SEVERITY"  # under min_severity
MUTED = "MUTED"                    # runtime/ALERTS_MUTED in force (core.alert_policy)


class AuditSink(Protocol):
    """Anything with ``append(event, level, **fields)`` (``core.logs.AuditTrail``)."""

    def append(self, event: str, level: str = "INFO", **fields: Any) -> None: ...


class AlertStore(Protocol):
    """Where alerts are recorded (``db.alerts``, ``database.alerts.AlertRepository``);
    a failure to record raises ``core.errors.StoreError``."""

    def record(self, alert: Mapping[str, Any]) -> int: ...

    def open_problem(self, key: str) -> dict[str, Any] | None: ...

    def save_problem(self, problem: Mapping[str, Any]) -> None: ...

    def clear_problem(self, key: str) -> bool: ...


@dataclass(frozen=True)
class AlertMessage:
    """What to tell the operator."""

    title: str
    body: str
    severity: str = "warning"
    key: str | None = None                     # the problem's stable name; sent once per run
    details: Mapping[str, Any] | None = None   # small JSON-able context
    # What makes two alerts of one key "the same problem" (default: title
    # and body); keep run ids and timestamps out of it, put them in details.
    fingerprint: str | None = None
    recovery: bool = False                     # a recovery notice (the problem cleared)

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"unknown alert severity {self.severity!r} (one of {', '.join(SEVERITIES)})")


@dataclass
class Delivery:
    """One target's answer."""

    service: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "ok": self.ok, "error": self.error}


@dataclass
class AlertResult:
    """What happened to one alert (the message as sent, i.e. redacted)."""

    message: AlertMessage
    outcome: str
    deliveries: list[Delivery] = field(default_factory=list)
    artifact: Path | None = None
    alert_id: int | None = None
    note: str | None = None            # why it was not sent (DUPLICATE of what, MUTED until when...)

    @property
    def delivered(self) -> bool:
        return self.outcome in (SENT, PARTIAL, DRY_RUN)


def parse_alert_urls(text: str | None) -> list[str]:
    """Split ``ALERT_URLS`` into apprise URLs (commas, semicolons or whitespace)."""
    if not text or not text.strip():
        return []
    return [u for u in apprise.utils.parse.parse_urls(text) if u]


def url_secrets(url: str) -> list[str]:
    """The parts of an alert URL that are credentials: the URL itself, its
    user and password, and every token-like piece of host, port, path or
    query (webhook ids and tokens, bot tokens: 8+ characters with a digit or
    mixed case, or 20+ characters).  Host names and words (``hook``,
    ``alerts``) stay readable."""
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    userinfo, _, hostport = parts.netloc.rpartition("@")
    out.extend(p for p in userinfo.split(":") if len(p) >= 4)
    pieces = hostport.split(":") + parts.path.split("/") + [v for _, v in parse_qsl(parts.query)]
    out.extend(p for p in pieces if _looks_like_token(p))
    return out


def _looks_like_token(text: str) -> bool:
    if len(text) < 8 or _public_host(text):
        return False
    mixed = any(c.isdigit() for c in text) or (text.lower() != text and text.upper() != text)
    return mixed or len(text) >= 20


def _public_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return re.fullmatch(r"(?:[a-z0-9-]+\.)+[a-z]{2,}", text, re.IGNORECASE) is not None


def _service(url: str, index: int) -> str:
    scheme = url.split("://", 1)[0].lower() if "://" in url else "invalid"
    return f"{scheme}#{index}"


class Alerter:
    """Sends, throttles, records and (in dry run) writes alerts for one run."""

    def __init__(self, *, run_id: str | None = None, urls: Sequence[str] | None = None,
                 dry_run: bool | None = None, alerts_dir: str | os.PathLike | None = None,
                 settings: Settings | None = None, store: AlertStore | None = None,
                 audit: AuditSink | None = None, max_per_run: int | None = None,
                 min_severity: str | None = None, env: Mapping[str, str] | None = None,
                 clock: Callable[[], Any] = utc_now):
        env = os.environ if env is None else env
        conf = settings.alerts if settings else AlertsSettings()
        self.run_id = run_id
        self.clock = clock
        self.urls = list(urls) if urls is not None else parse_alert_urls(env.get("ALERT_URLS"))
        if dry_run is None:
            dry_run = env.get("ALERT_DRY_RUN", "").strip().lower() in _TRUE or conf.dry_run
        self.dry_run = dry_run
        self.alerts_dir = Path(alerts_dir) if alerts_dir is not None else RuntimePaths.resolve().alerts_dir
        self.store = store
        self.audit = audit
        self.max_per_run = int(conf.max_per_run if max_per_run is None else max_per_run)
        self.min_severity = min_severity or conf.min_severity
        if self.min_severity not in _RANK:
            raise ValueError(f"alerts.min_severity {self.min_severity!r} is not one of {', '.join(SEVERITIES)}")
        self._secrets = sorted({s for u in self.urls for s in url_secrets(u)}, key=len, reverse=True)
        self._keys: set[tuple[str, bool]] = set()
        self._seq = 0
        self.sent = 0
        self.results: list[AlertResult] = []

    # ------------------------------------------------------------ redaction
    def redact(self, text: str) -> str:
        """``text`` without environment secrets or alert-URL credentials."""
        text = redact(text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def clean(self, message: AlertMessage) -> AlertMessage:
        """``message`` with every secret redacted (title, body, details)."""
        return self._clean(message)

    def _clean(self, message: AlertMessage) -> AlertMessage:
        details = self._clean_value(dict(message.details)) if message.details is not None else None
        return replace(message, title=self.redact(message.title), body=self.redact(message.body), details=details)

    def _clean_value(self, value: Any) -> Any:
        """Redact every string of a JSON-like value (keys included);
        anything else that is not a JSON scalar becomes redacted text."""
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self._clean_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean_value(v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.redact(str(value))

    # ----------------------------------------------------------------- send
    def send(self, message: AlertMessage, *, enforce_min_severity: bool = True) -> AlertResult:
        """Deliver (or record why not) one alert.  Never raises on a delivery
        or recording failure.  ``enforce_min_severity=False``: a recovery
        notice for a problem that was alerted goes out whatever its severity."""
        message = self._clean(message)
        run_key = (message.key, message.recovery) if message.key is not None else None
        if enforce_min_severity and _RANK[message.severity] < _RANK[self.min_severity]:
            result = AlertResult(message, BELOW_SEVERITY, note=f"under alerts.min_severity {self.min_severity}")
        elif run_key is not None and run_key in self._keys:
            result = AlertResult(message, DUPLICATE, note="already raised in this run")
        elif self.sent >= self.max_per_run:
            result = AlertResult(message, THROTTLED, note=f"over alerts.max_per_run {self.max_per_run}")
        else:
            if run_key is not None:
                self._keys.add(run_key)
            self.sent += 1
            if self.dry_run:
                try:
                    result = AlertResult(message, DRY_RUN, artifact=self._write_artifact(message))
                except OSError as exc:
                    result = AlertResult(message, FAILED, [Delivery("artifact", False, self.redact(str(exc)))])
            elif not self.urls:
                result = AlertResult(message, NOT_CONFIGURED)
            else:
                deliveries = [self._deliver(url, i, message) for i, url in enumerate(self.urls, start=1)]
                ok = sum(d.ok for d in deliveries)
                outcome = SENT if ok == len(deliveries) else (PARTIAL if ok else FAILED)
                result = AlertResult(message, outcome, deliveries)
        self._record(result)
        self.results.append(result)
        return result

    def send_all(self, messages: Sequence[AlertMessage]) -> list[AlertResult]:
        """:meth:`send` each message, in order."""
        return [self.send(m) for m in messages]

    def hold(self, message: AlertMessage, outcome: str, note: str) -> AlertResult:
        """Record, without sending, an alert the policy held back
        (``outcome`` DUPLICATE, THROTTLED, MUTED, BELOW_SEVERITY; ``note`` why)."""
        result = AlertResult(self._clean(message), outcome, note=self.redact(note))
        self._record(result)
        self.results.append(result)
        return result

    def audit_note(self, event: str, **fields: Any) -> None:
        """One line in the audit trail (when one is given); never raises."""
        if self.audit is not None:
            try:
                self.audit.append(event, level="INFO", **fields)
            except OSError as exc:
                log.warning("%s could not be written to the audit trail: %s", event, exc)

    def _deliver(self, url: str, index: int, message: AlertMessage) -> Delivery:
        service = _service(url, index)
        try:
            target = apprise.Apprise()
            if not target.add(url):
                return Delivery(service, False, "unsupported or malformed alert URL")
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = bool(target.notify(body=message.body, title=f"[{message.severity.upper()}] {message.title}",
                                        notify_type=_NOTIFY_TYPE[message.severity]))
                problems = captured.getvalue()
        except Exception as exc:  # noqa: BLE001 - an alert channel must never break the run
            return Delivery(service, False, self.redact(f"{type(exc).__name__}: {exc}"))
        if ok:
            return Delivery(service, True)
        lines = [ln.split(" - ", 2)[-1].strip() for ln in problems.splitlines() if ln.strip()]
        return Delivery(service, False, self.redact(lines[-1] if lines else "delivery failed"))

    def _write_artifact(self, message: AlertMessage) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", message.title.lower()).strip("-")[:40] or "alert"
        folder = self.alerts_dir / (self.run_id or "adhoc")
        folder.mkdir(parents=True, exist_ok=True)
        # Numbered after what the folder holds: two alerters of one run never overwrite each other.
        taken = [int(p.name[:3]) for p in folder.glob("[0-9][0-9][0-9]-*.json")]
        self._seq = max([self._seq, *taken]) + 1
        path = folder / f"{self._seq:03d}-{message.severity}-{slug}.json"
        payload = {"ts": trail_stamp(self.clock()), "run_id": self.run_id, "severity": message.severity,
                   "title": message.title, "body": message.body, "details": message.details, "key": message.key,
                   "recovery": message.recovery, "fingerprint": message.fingerprint,
                   "targets": [_service(u, i) for i, u in enumerate(self.urls, start=1)], "dry_run": True}
        path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        return path

    def _record(self, result: AlertResult) -> None:
        m = result.message
        failed = [d for d in result.deliveries if not d.ok]
        level = "WARNING" if failed else "INFO"
        if failed:
            log.warning("alert %r: %s (%s)", m.title, result.outcome,
                        "; ".join(f"{d.service}: {d.error}" for d in failed))
        else:
            log.info("alert %r: %s", m.title, result.outcome)
        fields = {"severity": m.severity, "title": m.title, "outcome": result.outcome,
                  "targets": [d.to_dict() for d in result.deliveries],
                  "artifact": str(result.artifact) if result.artifact else None,
                  "alert_key": m.key, "note": result.note}
        if self.store is not None:
            try:
                result.alert_id = self.store.record({"ts": record_stamp(self.clock()), "run_id": self.run_id,
                                                     "body": m.body, **fields})
            except StoreError as exc:
                log.warning("alert %r could not be recorded in the database: %s", m.title, exc)
        if self.audit is not None:
            try:
                self.audit.append("ALERT", level=level, **fields)
            except OSError as exc:
                log.warning("alert %r could not be written to the audit trail: %s", m.title, exc)
