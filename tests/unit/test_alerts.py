"""Alerts through apprise to a real webhook receiver on 127.0.0.1."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from data.governance.governance_agent import govern_symbols
from core.universe import UniverseEntry
from database.manager import Database
from core import alerts as A
from core.alerts import AlertMessage, Alerter
from core.runtime import RuntimePaths
from core.settings import Settings
from tests import bar_frames as B
from tests.store_seed import seed_store
from tests import store_reads

CANARY = "canary-9f8e7d6c5b4a3210"
UNREACHABLE = "json://127.0.0.1:1/hooks/ops"


class WebhookReceiver:
    """A JSON webhook endpoint on 127.0.0.1 that records every POST."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "hooks/ops") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class AuditRecorder:
    """Collects audit-trail appends (the AuditTrail interface)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def append(self, event, level="INFO", **fields):
        self.events.append({"event": event, "level": level, **fields})


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("ALERT_URLS", raising=False)
    monkeypatch.delenv("ALERT_DRY_RUN", raising=False)
    return RuntimePaths.resolve()


@pytest.fixture
def db(runtime):
    store = Database(runtime.db)
    yield store
    store.close()


def test_alert_is_delivered_to_a_json_webhook(receiver, runtime, db):
    alerter = Alerter(run_id="run-1", urls=[receiver.url()], store=db.alerts, alerts_dir=runtime.alerts_dir)
    result = alerter.send(AlertMessage("Quality rejections: 7 of 100", "AAA: LOW_QUALITY", severity="error"))
    assert result.outcome == A.SENT and result.delivered
    assert [p["path"] for p in receiver.posts] == ["/hooks/ops"]
    body = receiver.posts[0]["body"]
    assert body["title"] == "[ERROR] Quality rejections: 7 of 100"
    assert body["message"] == "AAA: LOW_QUALITY"
    assert body["type"] == "failure"
    row = store_reads.alerts(db, run_id="run-1")[0]
    assert (row["outcome"], row["severity"], row["title"]) == (A.SENT, "error", "Quality rejections: 7 of 100")
    assert json.loads(row["targets"]) == [{"service": "json#1", "ok": True, "error": None}]
    assert "127.0.0.1" not in row["targets"]     # the URL itself is never stored


def test_urls_come_from_the_environment(receiver, runtime, monkeypatch):
    monkeypatch.setenv("ALERT_URLS", f"{receiver.url('a')}, {receiver.url('b')}")
    result = Alerter(run_id="r").send(AlertMessage("t", "b"))
    assert result.outcome == A.SENT
    assert sorted(p["path"] for p in receiver.posts) == ["/a", "/b"]


def test_dry_run_writes_an_artifact_and_sends_nothing(receiver, runtime, db):
    alerter = Alerter(run_id="run-7", urls=[receiver.url()], dry_run=True, alerts_dir=runtime.alerts_dir,
                      store=db.alerts)
    result = alerter.send(AlertMessage("3 symbol(s) quarantined", "X: OHLC_INCONSISTENT", severity="warning",
                                       details={"quarantined": 3}))
    assert result.outcome == A.DRY_RUN and receiver.posts == []
    assert result.artifact.parent == runtime.alerts_dir / "run-7"
    saved = json.loads(result.artifact.read_text())
    assert saved["title"] == "3 symbol(s) quarantined" and saved["details"] == {"quarantined": 3}
    assert saved["targets"] == ["json#1"] and saved["dry_run"] is True
    assert store_reads.alerts(db)[0]["artifact"] == str(result.artifact)


def test_dry_run_from_the_environment(runtime, monkeypatch):
    monkeypatch.setenv("ALERT_DRY_RUN", "1")
    result = Alerter(run_id="r", urls=[UNREACHABLE], alerts_dir=runtime.alerts_dir).send(AlertMessage("t", "b"))
    assert result.outcome == A.DRY_RUN and result.artifact.exists()


def test_unreachable_url_does_not_raise_and_is_reported(receiver, runtime, db):
    audit = AuditRecorder()
    alerter = Alerter(run_id="run-1", urls=[UNREACHABLE, receiver.url()], store=db.alerts, audit=audit)
    result = alerter.send(AlertMessage("Ingest verification failed", "details", severity="critical"))
    assert result.outcome == A.PARTIAL
    failed, delivered = result.deliveries
    assert (failed.service, failed.ok) == ("json#1", False) and "onnection" in failed.error
    assert delivered.ok and len(receiver.posts) == 1
    assert store_reads.alerts(db)[0]["outcome"] == A.PARTIAL
    assert audit.events[0]["event"] == "ALERT" and audit.events[0]["level"] == "WARNING"

    only_bad = Alerter(run_id="run-1", urls=[UNREACHABLE, "notaurl"], store=db.alerts).send(AlertMessage("t", "b"))
    assert only_bad.outcome == A.FAILED and not only_bad.delivered
    assert only_bad.deliveries[1].error == "unsupported or malformed alert URL"


def test_unreachable_url_leaves_the_run_result_unchanged(runtime, db):
    sessions = B.window_sessions()
    seed_store(db, {"OK": B.clean_bars(sessions), "BAD": B.with_ohlc_inversion(B.clean_bars(sessions, seed=2), 3)})
    entries = [UniverseEntry("OK", "stocks"), UniverseEntry("BAD", "stocks")]
    report = govern_symbols(db, universe_entries=entries, run_id="run-1", as_of=B.AS_OF, settings=Settings())
    before = (report.to_dict(), db.governance.states(), db.governance.events(limit=100))
    results = Alerter(run_id="run-1", urls=[UNREACHABLE], store=db.alerts).send_all(report.alert_messages())
    assert [r.outcome for r in results] == [A.FAILED, A.FAILED]
    assert (report.to_dict(), db.governance.states(), db.governance.events(limit=100)) == before


def test_throttle_sends_at_most_n_per_run(receiver, runtime, db):
    alerter = Alerter(run_id="r", urls=[receiver.url()], max_per_run=2, store=db.alerts)
    outcomes = [alerter.send(AlertMessage(f"alert {i}", "b")).outcome for i in range(4)]
    assert outcomes == [A.SENT, A.SENT, A.THROTTLED, A.THROTTLED]
    assert len(receiver.posts) == 2
    assert [r["outcome"] for r in store_reads.alerts(db, run_id="r")] == [A.THROTTLED, A.THROTTLED, A.SENT, A.SENT]


def test_same_key_alerts_once_per_run(receiver, runtime):
    alerter = Alerter(run_id="r", urls=[receiver.url()])
    first = alerter.send(AlertMessage("rejections", "b", key="quality-rejections"))
    second = alerter.send(AlertMessage("rejections again", "b", key="quality-rejections"))
    assert (first.outcome, second.outcome) == (A.SENT, A.DUPLICATE)
    assert len(receiver.posts) == 1


def test_severity_below_the_minimum_is_recorded_not_sent(receiver, runtime, db):
    alerter = Alerter(run_id="r", urls=[receiver.url()], store=db.alerts)
    assert alerter.send(AlertMessage("fyi", "b", severity="info")).outcome == A.BELOW_SEVERITY
    assert receiver.posts == [] and store_reads.alerts(db)[0]["outcome"] == A.BELOW_SEVERITY
    loud = Alerter(run_id="r", urls=[receiver.url()], min_severity="info")
    assert loud.send(AlertMessage("fyi", "b", severity="info")).outcome == A.SENT


def test_no_urls_means_not_configured(runtime):
    assert Alerter(run_id="r").send(AlertMessage("t", "b")).outcome == A.NOT_CONFIGURED


def test_secrets_never_leave_in_an_alert(receiver, runtime, db, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", CANARY)
    token = "Tok3nABCDEF1234567"
    url = receiver.url(f"hooks/{token}")
    message = AlertMessage(f"provider failed with key {CANARY}", f"request used apiKey={CANARY} via {url}",
                           severity="error", details={"key": CANARY, "url": url})
    sent = Alerter(run_id="r", urls=[url], store=db.alerts).send(message)
    dry = Alerter(run_id="r", urls=[url], dry_run=True, alerts_dir=runtime.alerts_dir, store=db.alerts).send(message)
    assert sent.outcome == A.SENT and dry.outcome == A.DRY_RUN
    outputs = [json.dumps([p["body"] for p in receiver.posts]), dry.artifact.read_text(),
               json.dumps(store_reads.alerts(db))]
    for text in outputs:
        assert CANARY not in text and token not in text
    assert "***" in receiver.posts[0]["body"]["message"]
    assert receiver.posts[0]["path"] == f"/hooks/{token}"   # the real URL was used to deliver


def test_alert_urls_are_split_on_commas_and_whitespace():
    assert A.parse_alert_urls("json://a/x, slack://T1/B2/C3\nntfy://topic") == [
        "json://a/x", "slack://T1/B2/C3", "ntfy://topic"]
    assert A.parse_alert_urls("  ") == [] and A.parse_alert_urls(None) == []


def test_url_secrets_mask_tokens_but_not_words():
    parts = A.url_secrets("discord://123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz")
    assert "123456789012345678" in parts and "AbCdEfGhIjKlMnOpQrStUvWxYz" in parts
    assert A.url_secrets("json://127.0.0.1:8080/hooks/alerts")[1:] == []


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError):
        AlertMessage("t", "b", severity="panic")


def test_dry_run_defaults_to_the_runtime_alerts_dir(runtime):
    result = Alerter(run_id="run-9", dry_run=True).send(AlertMessage("t", "b"))
    assert result.artifact.parent == runtime.alerts_dir / "run-9"


def test_an_unwritable_alerts_dir_fails_the_alert_not_the_run(runtime, tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    result = Alerter(run_id="r", dry_run=True, alerts_dir=blocker).send(AlertMessage("t", "b"))
    assert result.outcome == A.FAILED and result.deliveries[0].service == "artifact"
