"""The store's seam (database/interfaces.py, database/backends.py).

* The SQLite store satisfies every protocol, method for method with the
  same signatures, and has no public method beyond them except the few
  named below (tests, the bench, another aggregate's transaction).
* The protocols declare exactly what the application calls on a store:
  read from the application's code, not listed by hand.
* ``open_store``: a plain path and ``sqlite:///path`` open the same store;
  ``postgresql://`` is a one-line usage error (exit 64) through every
  command, and nothing is created.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import os
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

import core.alerts
from core.errors import UsageError
from core.runtime import RuntimePaths
from database import (AlertStore, BarStore, BrokerStore, FetchStateStore, GovernanceStore, RunStore, Store,
                      StoreLocationError, open_store, store_exists)
from database.alerts import AlertRepository
from database.bars import BarRepository
from database.broker import BrokerRepository
from database.fetch_state import FetchStateRepository
from database.governance import GovernanceRepository
from database.manager import Database
from database.runs import RunRepository

REPO = Path(__file__).resolve().parents[2]
AGGREGATES = {"bars": (BarStore, BarRepository), "runs": (RunStore, RunRepository),
              "fetch_state": (FetchStateStore, FetchStateRepository),
              "governance": (GovernanceStore, GovernanceRepository), "alerts": (AlertStore, AlertRepository),
              "broker": (BrokerStore, BrokerRepository)}
# Public names of the SQLite classes that are not the interface, and why.
SQLITE_ONLY = {
    Database: {"path", "conn"},                        # the file and the raw connection: tests and the bench
    BarRepository: {"content_hash"},                  # the bars' fingerprint: tests and the bench
    RunRepository: {"add_audit_row"},                  # written inside BarRepository.write_symbols' transaction
    FetchStateRepository: {"record_success", "count_failure"},   # likewise
    GovernanceRepository: set(), AlertRepository: set(), BrokerRepository: set(),
}
APPLICATION = ["cli", "core", "data", "reports", "trading", "scripts"]
ROOT_SCRIPTS = ["ingest_history.py", "verify_backfill.py", "verify_db_status.py", "repair_db.py", "main.py",
                "trading_daemon.py", "feature_refresher.py"]


def _protocol_members(protocol: type) -> set[str]:
    """The public names a protocol declares (methods, properties, attributes)."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls.__module__ in ("typing", "builtins"):
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")}
        names |= {n for n in getattr(cls, "__annotations__", {}) if not n.startswith("_")}
    return names


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _pairs(db: Database):
    yield Store, Database, db
    for name, (protocol, cls) in AGGREGATES.items():
        yield protocol, cls, getattr(db, name)


def test_the_sqlite_store_and_its_aggregates_satisfy_the_protocols(fresh_db):
    for protocol, cls, obj in _pairs(fresh_db):
        assert isinstance(obj, protocol), (cls.__name__, protocol.__name__)
        assert isinstance(obj, cls)
    with open_store(fresh_db.location) as other:
        assert isinstance(other, Store)


def test_every_protocol_member_is_implemented_with_the_same_signature_and_nothing_else_is_public(fresh_db):
    for protocol, cls, obj in _pairs(fresh_db):
        declared = _protocol_members(protocol)
        assert _public(obj) - declared == SQLITE_ONLY[cls], cls.__name__
        assert declared <= _public(obj), (cls.__name__, declared - _public(obj))
        for name in declared:
            wanted = inspect.getattr_static(protocol, name, None)
            have = inspect.getattr_static(cls, name, None)
            if inspect.isfunction(wanted):
                assert inspect.isfunction(have), f"{cls.__name__}.{name} is not a method"
                assert str(inspect.signature(have)) == str(inspect.signature(wanted)), f"{cls.__name__}.{name}"
            elif isinstance(wanted, property):
                assert isinstance(have, property), f"{cls.__name__}.{name} is not a property"
            elif name in AGGREGATES:
                assert isinstance(getattr(obj, name), AGGREGATES[name][0]), name
            else:
                assert protocol.__annotations__[name] == "int" and isinstance(getattr(obj, name), int), name


def _is_store(node: ast.AST) -> bool:
    """``db`` or ``<anything>.db`` (``self.db``, ``ctx.db``), except
    ``paths.db``, the location (core.runtime.RuntimePaths)."""
    if isinstance(node, ast.Name):
        return node.id == "db"
    return (isinstance(node, ast.Attribute) and node.attr == "db"
            and not (isinstance(node.value, ast.Name) and node.value.id == "paths"))


def _application_files() -> list[Path]:
    files = [REPO / s for s in ROOT_SCRIPTS]
    for package in APPLICATION:
        files += sorted((REPO / package).rglob("*.py"))
    return files


def _what_the_application_calls() -> tuple[set[str], dict[str, set[str]]]:
    """(names used on a store, names used on each of its aggregates), read
    from every application module."""
    on_store: set[str] = set()
    on_aggregate: dict[str, set[str]] = defaultdict(set)
    for path in _application_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            if _is_store(node.value):
                on_store.add(node.attr)
            elif (isinstance(node.value, ast.Attribute) and node.value.attr in AGGREGATES
                  and _is_store(node.value.value)):
                on_aggregate[node.value.attr].add(node.attr)
    # The alerter is handed ``db.alerts`` and records through its own view of it.
    on_aggregate["alerts"] |= _protocol_members(core.alerts.AlertStore)
    return on_store, on_aggregate


def test_the_protocols_declare_exactly_what_the_application_calls():
    on_store, on_aggregate = _what_the_application_calls()
    assert on_store == _protocol_members(Store), "Store: the application's calls differ from the protocol"
    for name, (protocol, _) in AGGREGATES.items():
        assert on_aggregate[name] == _protocol_members(protocol), f"{protocol.__name__}"


def test_the_alerters_view_of_the_alerts_is_the_stores():
    """``core.alerts.AlertStore`` (core cannot import the store) declares
    the same methods as ``database.interfaces.AlertStore``."""
    for name in _protocol_members(core.alerts.AlertStore):
        assert str(inspect.signature(getattr(core.alerts.AlertStore, name))) == \
            str(inspect.signature(getattr(AlertStore, name))), name


# ------------------------------------------------------------------ open_store
def test_a_sqlite_url_and_its_path_open_the_same_store(tmp_path, monkeypatch):
    path = tmp_path / "desk.db"
    with open_store(f"sqlite:///{path}") as db:          # sqlite:////tmp/...: an absolute path
        assert db.location == str(path)
        db.governance.record_event("PROBE", reason="URL")
    with open_store(path, readonly=True) as db:
        assert [e["reason"] for e in db.governance.events()] == ["URL"]
    with open_store(str(path), readonly=True) as db:
        assert db.location == str(path)
    monkeypatch.chdir(tmp_path)
    assert store_exists("sqlite:///desk.db") and store_exists("desk.db") and not store_exists("sqlite:///other.db")
    with open_store("sqlite:///desk.db", readonly=True) as db:   # relative, as SQLAlchemy reads it
        assert [e["reason"] for e in db.governance.events()] == ["URL"]
    assert RuntimePaths.resolve(f"sqlite:///{path}").db == f"sqlite:///{path}"
    assert RuntimePaths.resolve(path).db == path


@pytest.mark.parametrize("location, says", [
    ("postgresql://desk:hunter22@db.example:5432/trading",
     "PostgreSQL is not available in this build: postgresql://desk:***@db.example:5432/trading"),
    ("postgres://db.example/trading", "PostgreSQL is not available in this build: postgres://db.example/trading"),
    ("postgresql+psycopg://desk@db.example/trading", "PostgreSQL is not available in this build"),
    ("mysql://db.example/trading", "mysql://db.example/trading: no store backend for 'mysql://'"),
    ("sqlite://", "sqlite://: a sqlite URL names its file as sqlite:///path"),
    ("sqlite://host/desk.db", "sqlite://host/desk.db: a sqlite URL names its file as sqlite:///path"),
])
def test_a_location_no_backend_serves_is_a_usage_error_and_creates_nothing(tmp_path, monkeypatch, location, says):
    monkeypatch.chdir(tmp_path)
    for call in (lambda: open_store(location), lambda: open_store(location, readonly=True),
                 lambda: store_exists(location)):
        with pytest.raises(StoreLocationError) as caught:
            call()
        assert isinstance(caught.value, UsageError)
        message = str(caught.value)
        assert message.startswith(says) and "\n" not in message
        assert "hunter22" not in message
        assert "sqlite:///path" in message
    assert list(tmp_path.iterdir()) == []


def _command(script: str):
    spec = importlib.util.spec_from_file_location(f"_cmd_{Path(script).stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


POSTGRES = "postgresql://desk:hunter22@db.example/trading"
COMMANDS = [
    ("ingest_history.py", ["--mode", "incremental"]),
    ("ingest_history.py", ["--mode", "verify"]),
    ("verify_backfill.py", []),
    ("verify_db_status.py", []),
    ("repair_db.py", ["--symbol", "AAPL", "--from", "2024-01-02", "--to", "2024-01-05"]),
    ("main.py", ["--run-once"]),
    ("main.py", ["--status"]),
    ("trading_daemon.py", []),
    ("feature_refresher.py", []),
    ("scripts/train_ml_alpha.py", []),
]


@pytest.mark.parametrize("script, args", COMMANDS, ids=[f"{s} {' '.join(a)}".strip() for s, a in COMMANDS])
def test_every_command_refuses_a_postgresql_db_in_one_line_with_exit_64_creating_nothing(
        tmp_path, monkeypatch, script, args):
    work = tmp_path / "work"
    work.mkdir()
    universe = tmp_path / "universe.json"
    universe.write_text('{"version": 1, "symbols": [{"symbol": "AAPL"}]}')
    monkeypatch.setenv("RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    for name in ("SETTINGS_FILE", "UNIVERSE_FILE", "FILE_PROVIDER_DIR", "SYNTHETIC_DEFECTS", "PROVIDER_PRIORITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(work)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    result = CliRunner().invoke(_command(script), ["--db", POSTGRES, "--universe", str(universe), *args])

    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 64, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines == [f"error: PostgreSQL is not available in this build: postgresql://desk:***@db.example/trading "
                     f"(--db takes a SQLite database file: a path or sqlite:///path)"], lines
    assert "hunter22" not in result.stdout + result.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert os.listdir(work) == []
