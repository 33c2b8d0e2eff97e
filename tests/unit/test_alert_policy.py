"""One alert policy across runs (issue 9, failure 8): a problem alerts once
until it changes or clears, a recovery notice when it clears, at most
``alerts.max_per_night`` in any rolling 24 h, a mute file for maintenance,
and every alert held back recorded with why.  On the code before the policy
each of these failed: the throttle was per run (a new ``Alerter`` per run
re-alerted the same problem), no recovery, no mute, no nightly cap."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from core.alert_ledger import AlertLedger
from core.alert_policy import AlertPolicy, parse_mute, read_mute
from core.alerts import AlertMessage
from core.settings import AlertsSettings, Settings
from core.settings_schema import SettingsError
from database.manager import SCHEMA_VERSION, Database, available_migrations

T0 = dt.datetime(2026, 12, 8, 1, 0, tzinfo=dt.timezone.utc)


class Clock:
    """A settable UTC clock handed to the policy (``clock=``)."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def policy(runtime, *, store=None, clock=None, max_per_night=20, min_severity="warning", run_id="r1"):
    conf = Settings(alerts=AlertsSettings(max_per_night=max_per_night, min_severity=min_severity))
    return AlertPolicy(source="test", run_id=run_id, settings=conf, store=store, paths=runtime, dry_run=True,
                       urls=[], clock=clock or Clock())


def failure(body="AAPL DEGRADED STALE", severity="error"):
    return AlertMessage(title="Ingest verification failed", body=body, severity=severity)


def artifacts(runtime):
    return sorted(runtime.alerts_dir.glob("*/*.json"))


def outcomes(runtime):
    return [(e["key"], e["outcome"]) for e in AlertLedger(runtime.alerts_dir).entries()]


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "no-store"])
def test_the_same_problem_over_three_runs_alerts_once_then_one_recovery(runtime, with_store):
    db = Database(runtime.db) if with_store else None
    try:
        for run in range(3):      # three runs, three policies: the dedupe is across runs
            result = policy(runtime, store=db.alerts if db else None, run_id=f"run-{run}").raise_(
                "ingest.verification_failed", failure())
            assert result.outcome == ("DRY_RUN" if run == 0 else "DUPLICATE"), run
        assert len(artifacts(runtime)) == 1
        recovery = policy(runtime, store=db.alerts if db else None, run_id="run-3").resolve(
            "ingest.verification_failed")
        assert recovery.outcome == "DRY_RUN" and recovery.message.severity == "info"
        assert recovery.message.title == "Recovered: Ingest verification failed"
        assert policy(runtime, store=db.alerts if db else None).resolve("ingest.verification_failed") is None
        assert len(artifacts(runtime)) == 2
        saved = json.loads(artifacts(runtime)[-1].read_text())
        assert saved["recovery"] is True and saved["key"] == "ingest.verification_failed"
        if db is not None:
            rows = db.conn.execute("SELECT alert_key, outcome, note FROM alerts ORDER BY id").fetchall()
            assert [r[1] for r in rows] == ["DRY_RUN", "DUPLICATE", "DUPLICATE", "DRY_RUN"]
            assert rows[1][2].startswith("already alerted at")
            assert db.alerts.open_problem("ingest.verification_failed") is None
    finally:
        if db is not None:
            db.close()


def test_a_higher_severity_or_changed_content_alerts_again_a_lower_severity_does_not(runtime):
    key = "symbol.AAPL.degraded"
    assert policy(runtime).raise_(key, failure(severity="warning")).outcome == "DRY_RUN"
    assert policy(runtime).raise_(key, failure(severity="error")).outcome == "DRY_RUN"      # rose
    assert policy(runtime).raise_(key, failure(severity="warning")).outcome == "DUPLICATE"  # fell
    assert policy(runtime).raise_(key, failure(severity="error")).outcome == "DUPLICATE"
    assert policy(runtime).raise_(key, failure(body="AAPL QUARANTINED NO_DATA")).outcome == "DRY_RUN"  # changed
    assert len(artifacts(runtime)) == 3


def test_at_most_max_per_night_in_a_rolling_24_hours_and_critical_still_goes_out(runtime):
    clock = Clock()
    for i in range(4):
        clock.now = T0 + dt.timedelta(minutes=30 * i)     # the daemon's 30-minute refreshes
        result = policy(runtime, clock=clock, max_per_night=2).raise_(f"problem.{i}", failure(body=f"p{i}"))
        assert result.outcome == ("DRY_RUN" if i < 2 else "THROTTLED"), i
    assert "alerts.max_per_night 2" in result.note
    critical = policy(runtime, clock=clock, max_per_night=2).raise_(
        "providers.all_failed", AlertMessage("All providers failed", "every symbol", severity="critical"))
    assert critical.outcome == "DRY_RUN"
    # A throttled alert was not delivered: raised again the next night, it goes out.
    clock.now = T0 + dt.timedelta(hours=24, minutes=31)
    assert policy(runtime, clock=clock, max_per_night=2).raise_("problem.3", failure(body="p3")).outcome == "DRY_RUN"
    assert policy(runtime, clock=clock, max_per_night=2).raise_("problem.0", failure(body="p0")).outcome \
        == "DUPLICATE"
    assert [o for _, o in outcomes(runtime)].count("THROTTLED") == 2


def test_a_mute_file_records_muted_and_sends_nothing_until_it_expires(runtime):
    clock = Clock()
    runtime.alerts_muted.write_text("until: 2026-12-08T03:00Z\nreason: store migration\n")
    result = policy(runtime, clock=clock).raise_("job.ingest_history.exit", failure(severity="critical"))
    assert result.outcome == "MUTED"
    assert result.note == "muted until 2026-12-08T03:00:00+00:00: store migration"
    assert artifacts(runtime) == []
    clock.now = T0 + dt.timedelta(hours=2)           # 03:00: expired
    assert policy(runtime, clock=clock).raise_("job.ingest_history.exit",
                                               failure(severity="critical")).outcome == "DRY_RUN"
    assert len(artifacts(runtime)) == 1


def test_an_empty_mute_file_mutes_until_removed_and_a_typo_mutes_nothing(runtime):
    runtime.alerts_muted.write_text("")
    assert policy(runtime).raise_("a", failure()).outcome == "MUTED"
    runtime.alerts_muted.write_text("untill: tomorrow\n")
    assert policy(runtime).raise_("a", failure()).outcome == "DRY_RUN"
    runtime.alerts_muted.unlink()
    assert read_mute(runtime.alerts_muted, T0) is None


def test_a_recovery_goes_out_whatever_min_severity_and_an_unsent_problem_clears_silently(runtime):
    assert policy(runtime, min_severity="error").raise_("x", failure(severity="error")).outcome == "DRY_RUN"
    assert policy(runtime, min_severity="error").resolve("x").outcome == "DRY_RUN"
    assert policy(runtime, min_severity="error").raise_("y", failure(severity="warning")).outcome \
        == "BELOW_SEVERITY"
    assert policy(runtime, min_severity="error").resolve("y") is None
    assert len(artifacts(runtime)) == 2


def test_secrets_stay_out_of_the_ledger_state_and_artifacts(runtime, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "sk-live-0123456789abcdef")
    policy(runtime).raise_("k", AlertMessage("vendor refused sk-live-0123456789abcdef", "key sk-live-0123456789abcdef"))
    for path in [*artifacts(runtime), runtime.alerts_dir / "ledger.jsonl", runtime.alerts_dir / "state.json"]:
        assert "sk-live-0123456789abcdef" not in path.read_text(), path


def test_the_migration_runner_takes_0007_after_0005_with_0006_absent(runtime):
    numbers = [n for n, _ in available_migrations()]
    assert numbers == sorted(numbers) and 7 in numbers and SCHEMA_VERSION == max(numbers)
    with Database(runtime.db) as db:
        assert db.schema_version() == SCHEMA_VERSION
        db.alerts.save_problem({"alert_key": "k", "severity": "error", "fingerprint": "f", "title": "t",
                                "first_seen": "a", "last_seen": "b", "occurrences": 1})
        assert db.alerts.open_problem("k")["fingerprint"] == "f"
        assert db.alerts.clear_problem("k") and not db.alerts.clear_problem("k")


# ------------------------------------------------- operator-given inputs
_ONE_LINE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
_times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                      timezones=st.just(dt.timezone.utc))


@given(text=st.text(max_size=300))
def test_any_mute_file_text_is_read_without_raising(text):
    mute = parse_mute(text, T0)
    assert mute.active or mute.problem
    assert isinstance(mute.note(), str)


@given(until=_times, now=_times, reason=st.text(alphabet=_ONE_LINE, max_size=40),
       sep=st.sampled_from([":", "=", " = ", ": "]), key=st.sampled_from(["until", "UNTIL", "expires"]))
def test_a_mute_with_an_expiry_holds_exactly_until_it(until, now, reason, sep, key):
    text = f"# maintenance\n{key}{sep}{until.isoformat()}\nreason{sep}{reason}\n"
    mute = parse_mute(text, now)
    assert mute.until == until
    assert mute.active == (now < until)
    if not mute.active:
        assert mute.problem.startswith("mute expired")


@given(line=st.text(alphabet=_ONE_LINE, min_size=1, max_size=40).filter(lambda s: s.strip() and not s.strip().startswith("#")
                                                     and s.strip().split(":")[0].split("=")[0].strip().lower()
                                                     not in ("until", "expires", "reason")))
def test_a_line_the_mute_file_does_not_know_mutes_nothing_and_says_why(line):
    mute = parse_mute(line + "\n", T0)
    assert not mute.active and mute.problem.startswith("line 1")


@hsettings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(value=st.one_of(st.integers(min_value=-10**6, max_value=10**6), st.floats(allow_nan=True), st.text(max_size=5),
                       st.booleans()))
def test_max_per_night_takes_a_non_negative_integer_only(value):
    try:
        parsed = Settings().with_overrides({"alerts": {"max_per_night": value}})
    except SettingsError as exc:
        assert "max_per_night" in str(exc)
        assert not (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    else:
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0
        assert parsed.alerts.max_per_night == value


def test_an_unknown_alerts_key_is_refused():
    with pytest.raises(SettingsError, match=r"unknown setting \[alerts\] max_per_nite"):
        Settings().with_overrides({"alerts": {"max_per_nite": 3}})


def test_a_real_delivery_goes_out_once_per_problem_and_once_for_its_recovery(runtime):
    from tests.unit.test_alerts import WebhookReceiver
    receiver = WebhookReceiver()
    try:
        def live():
            return AlertPolicy(source="test", run_id="r", settings=Settings(), paths=runtime, dry_run=False,
                               urls=[receiver.url()])
        assert live().raise_("daemon.safe_mode", failure(severity="error")).outcome == "SENT"
        assert live().raise_("daemon.safe_mode", failure(severity="error")).outcome == "DUPLICATE"
        assert live().resolve("daemon.safe_mode").outcome == "SENT"
    finally:
        receiver.close()
    titles = [p["body"]["title"] for p in receiver.posts]
    assert titles == ["[ERROR] Ingest verification failed", "[INFO] Recovered: Ingest verification failed"]
