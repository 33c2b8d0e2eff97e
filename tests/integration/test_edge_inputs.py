"""Issue 10, "validate every input at the edge" (failures 3, 4, 5, 6, 10,
15 and the edge parts of 17): a usage slip is a usage error before any
state changes, never a governance decision.

Every case runs a real command (click's CliRunner, in-process) on a healthy
governed store and asserts the same invariants: the documented exit code,
one line on stderr naming the flag, file or key, no traceback, the store
byte-identical (so no run row, audit row, governance state or event was
written) and nothing of a run in the audit trail."""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import ingest_history
import repair_db
import verify_backfill
import verify_db_status
from core.calendar import supported_dates
from core.runtime import DB_FILENAME
from core.settings import Settings
from core.universe import load_universe
from data.governance.governance_agent import govern_symbols
from database.manager import Database
from tests import bar_frames as B
from tests.store_seed import seed_store

REPO = Path(__file__).resolve().parents[2]
AS_OF = str(B.AS_OF)                     # 2024-06-28, a Friday
SYMBOLS = ("AAA", "BBB")
FUZZ = hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Desk:
    """A runtime directory holding a healthy governed store (AAA, BBB
    ACTIVE with 1,260 sessions each) and its universe."""

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "runtime" / DB_FILENAME
        self.universe = root / "universe.json"
        self.audit = root / "runtime" / "audit"
        self.digest = self.fingerprint()

    def fingerprint(self) -> str:
        return hashlib.sha256(self.db.read_bytes()).hexdigest()

    def states(self) -> dict:
        with Database(self.db) as db:
            return {s: (v["state"], v["reason"]) for s, v in db.governance.states().items()}


@pytest.fixture
def desk(tmp_path, monkeypatch) -> Desk:
    runtime = tmp_path / "runtime"
    for name, value in {"RUNTIME_DIR": runtime, "LOGS_DIR": tmp_path / "logs"}.items():
        monkeypatch.setenv(name, str(value))
    for name in ("SETTINGS_FILE", "FILE_PROVIDER_DIR", "UNIVERSE_FILE", "PROVIDER_PRIORITY", "SYNTHETIC_DEFECTS",
                 "POLYGON_ENABLED", "POLYGON_API_KEY", "ALPACA_ENABLED", "ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    universe = tmp_path / "universe.json"
    universe.write_text(json.dumps({"version": 1, "symbols": [{"symbol": s} for s in SYMBOLS]}))
    sessions = B.window_sessions()
    with Database(runtime / DB_FILENAME) as db:
        seed_store(db, {s: B.clean_bars(sessions, seed=i) for i, s in enumerate(SYMBOLS)}, run_id="run-1")
        govern_symbols(db, universe_entries=load_universe(universe).entries, run_id="run-1", as_of=B.AS_OF,
                       settings=Settings())
    healthy = Desk(tmp_path)
    assert healthy.states() == {s: ("ACTIVE", "OK") for s in SYMBOLS}
    return healthy


def refused(desk: Desk, command, args, code: int, *named: str) -> str:
    """Run ``command``; assert the refusal's invariants; its one line."""
    result = CliRunner().invoke(command.main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in result.output
    for text in named:
        assert text in lines[0], (text, lines[0])
    assert desk.fingerprint() == desk.digest, "the store changed"
    return lines[0]


def ingest_args(desk: Desk, *args) -> list:
    return ["--universe", desk.universe, "--as-of", AS_OF, *args]


# ------------------------------------------------------------- failure 3
def test_a_range_without_a_session_is_a_usage_error_naming_the_flags(desk, tmp_path):
    data_dir = tmp_path / "csv"
    data_dir.mkdir()
    line = refused(desk, ingest_history,
                   ingest_args(desk, "--start", "2024-06-29", "--end", "2024-06-30", "--provider", "file",
                               "--data-dir", data_dir), 64, "--start/--end", "no XNYS sessions")
    assert "2024-06-29" in line


@FUZZ
@given(st.dates(dt.date(1996, 1, 1), dt.date(2024, 6, 1)))
def test_any_range_without_a_session_is_refused_by_ingest_and_repair_alike(desk, tmp_path_factory, day):
    """One check (``core.calendar.session_range``) for both commands."""
    saturday = day + dt.timedelta(days=(5 - day.weekday()) % 7)
    sunday = saturday + dt.timedelta(days=1)
    data_dir = tmp_path_factory.mktemp("csv")
    refused(desk, ingest_history, ingest_args(desk, "--start", saturday, "--end", sunday, "--provider", "file",
                                              "--data-dir", data_dir), 64, "--start/--end", "no XNYS sessions")
    refused(desk, repair_db, ["--universe", desk.universe, "--symbol", "AAA", "--from", saturday, "--to", sunday,
                              "--provider", "file", "--data-dir", data_dir], 64, "no XNYS sessions")


# ------------------------------------------------------------- failure 4
def test_an_absurd_start_is_a_usage_error_not_a_quarantine(desk):
    refused(desk, ingest_history, ingest_args(desk, "--start", "0001-01-01", "--end", AS_OF), 64,
            "--start", "0001-01-01", "calendars' range")
    assert desk.states() == {s: ("ACTIVE", "OK") for s in SYMBOLS}


def test_a_start_no_provider_can_serve_is_a_usage_error_naming_the_flag(desk):
    """Within the calendars but longer than every provider's max_history_days."""
    refused(desk, ingest_history, ingest_args(desk, "--start", "1995-01-03", "--end", AS_OF), 64,
            "--start 1995-01-03", "longer than any provider serves", "max_history_days")


@FUZZ
@given(st.one_of(st.dates(dt.date(1, 1, 1), supported_dates()[0] - dt.timedelta(days=1)),
                 st.dates(supported_dates()[1] + dt.timedelta(days=1), dt.date(9999, 12, 31))),
       st.sampled_from(["--start", "--end", "--as-of"]))
def test_any_date_outside_the_calendars_is_refused_naming_its_flag(desk, date, flag):
    args = ["--universe", desk.universe, flag, date.isoformat()]
    if flag == "--end":
        args += ["--start", "2024-01-02"]
    refused(desk, ingest_history, args, 64, flag, date.isoformat())


# ------------------------------------------------------------- failure 5
@pytest.mark.parametrize("env, args, named", [
    ({}, ["--provider", "polygon"], ("--provider polygon", "not entitled", "POLYGON_ENABLED=true")),
    ({"POLYGON_ENABLED": "true"}, ["--provider", "polygon"], ("--provider polygon", "POLYGON_API_KEY")),
    ({"ALPACA_ENABLED": "true", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}, ["--provider", "alpaca"],
     ("--provider alpaca", "at most 730 days", "1829 days", "shorter range")),
    ({"ALPACA_ENABLED": "true", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"},
     ["--provider", "alpaca", "--mode", "incremental"], ("--provider alpaca", "at most 730 days")),
])
def test_an_explicit_provider_that_cannot_serve_is_a_usage_error(desk, monkeypatch, env, args, named):
    """--mode=incremental on a fresh store: the symbols' full windows."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if "incremental" in args:
        desk.universe.write_text(json.dumps({"symbols": ["AAA", "NEWSYM"]}))
    refused(desk, ingest_history, ingest_args(desk, *args), 64, *named)
    assert desk.states() == {s: ("ACTIVE", "OK") for s in SYMBOLS}


def test_an_explicit_provider_that_does_not_serve_a_class_names_the_symbols(desk, monkeypatch):
    monkeypatch.setenv("ALPACA_ENABLED", "true")
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    desk.universe.write_text(json.dumps({"symbols": ["AAA", "EURUSD=X"]}))
    refused(desk, ingest_history, ingest_args(desk, "--provider", "alpaca", "--start", "2024-06-03"), 64,
            "--provider alpaca", "does not serve fx", "EURUSD=X", "--tickers")


def test_repair_with_a_provider_not_entitled_is_a_usage_error(desk):
    refused(desk, repair_db, ["--universe", desk.universe, "--symbol", "AAA", "--from", "2024-06-03", "--to", AS_OF,
                              "--provider", "polygon"], 64, "--provider polygon", "not entitled")


# ------------------------------------------------------------- failure 6
@pytest.mark.parametrize("toml, named", [
    ("[history]\nrequired_sessions = -5\n", ("[history] required_sessions", "-5")),
    ("[history]\nrequired_sessions = \"many\"\n", ("[history] required_sessions", "integer")),
    ("[history]\nrequired_sessions = 12.5\n", ("[history] required_sessions",)),
    ("[providers]\ncircuit_breaker_failures = nan\n", ("[providers] circuit_breaker_failures",)),
    ("[history]\nrequired_sesions = 1260\n", ("required_sesions",)),
    ("[history\n", ()),
])
@pytest.mark.parametrize("command", [ingest_history, verify_db_status, verify_backfill])
def test_bad_settings_exit_65_naming_key_and_file(desk, monkeypatch, toml, named, command):
    settings_file = desk.root / "settings.toml"
    settings_file.write_text(toml)
    monkeypatch.setenv("SETTINGS_FILE", str(settings_file))
    args = ["--universe", desk.universe, "--as-of", AS_OF] + (["--mode", "verify"] if command is ingest_history
                                                              else [])
    refused(desk, command, args, 65, str(settings_file), *named)


# ------------------------------------------------------------ failure 10
@pytest.mark.parametrize("command", [ingest_history, verify_db_status, verify_backfill])
def test_an_as_of_before_the_calendars_is_a_usage_error_not_a_traceback(desk, command):
    refused(desk, command, ["--universe", desk.universe, "--as-of", "1800-01-01"], 64, "--as-of", "1800-01-01")


def test_an_as_of_before_a_calendars_first_session_is_a_usage_error(desk):
    """1995-01-01 is in the supported range, before XNYS's first session."""
    refused(desk, verify_db_status, ["--universe", desk.universe, "--as-of", "1995-01-01"], 64, "1995-01-01")


@pytest.mark.parametrize("command", [ingest_history, verify_db_status, verify_backfill])
def test_a_universe_file_that_is_a_directory_exits_66(desk, monkeypatch, command):
    monkeypatch.setenv("UNIVERSE_FILE", str(desk.root))
    refused(desk, command, ["--as-of", AS_OF], 66, str(desk.root), "not a file")


@pytest.mark.parametrize("text, named", [
    ('{"symbols": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested too deep"),
    ('{"version": NaN, "symbols": ["AAA"]}', "NaN"),
    ('{"version": 1, "symbols": [{"symbol": "AAA", "enabled": Infinity}]}', "Infinity"),
    ('{"version": "1", "symbols": ["AAA"]}', '"version"'),
    ('{"version": true, "symbols": ["AAA"]}', '"version"'),
    ('{"version": 1, "description": 7, "symbols": ["AAA"]}', '"description"'),
    ('{"version": 1, "symbols": ["A/../../ETC/PASSWD"]}', "plausible ticker"),
    ('{"version": 1, "symbols": ["AAA\\u0000"]}', "plausible ticker"),
])
@pytest.mark.parametrize("command", [ingest_history, verify_db_status])
def test_a_malformed_universe_exits_65_naming_the_file(desk, text, named, command):
    bad = desk.root / "bad-universe.json"
    bad.write_text(text)
    refused(desk, command, ["--universe", bad, "--as-of", AS_OF], 65, str(bad), named)


# ------------------------------------------------------------ failure 15
TICKER_COMMANDS = ["ingest_history.py", "main.py", "trading_daemon.py", "feature_refresher.py",
                   "scripts/train_ml_alpha.py"]


def _command(script: str):
    spec = importlib.util.spec_from_file_location(f"_edge_{Path(script).stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", TICKER_COMMANDS)
def test_an_explicitly_empty_tickers_is_a_usage_error_in_every_command(desk, script):
    """An unset shell variable (``--tickers=$LIST``) never widens a run."""
    command = _command(script)
    assert "--tickers" in {opt for param in command.main.params for opt in param.opts}

    @FUZZ
    @given(st.sampled_from(["", ",", " ", " , ,", ",,,", "\t"]))
    def check(text):
        refused(desk, command, ["--universe", desk.universe, f"--tickers={text}"], 64, "--tickers",
                "names no symbol")
    check()


def test_an_empty_revive_is_a_usage_error(desk):
    refused(desk, ingest_history, ingest_args(desk, "--revive="), 64, "--revive", "names no symbol")


# ------------------------------------------------------------ failure 17
@FUZZ
@given(st.builds(lambda a, sep, b: a + sep + b,
                 st.text("ABCXYZ019", min_size=1, max_size=5),
                 st.sampled_from(["/", "\\", "..", "/../", "\x00", "\n", "\x1b", " ", "\t"]),
                 st.text("ABCXYZ019", min_size=1, max_size=5)))
def test_path_like_symbol_text_never_reaches_a_run(desk, text):
    refused(desk, ingest_history, ingest_args(desk, "--tickers", text), 64, "--tickers", "plausible ticker")
