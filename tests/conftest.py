"""Shared fixtures: every test gets its own runtime directory in tmp."""
from __future__ import annotations

import pytest

from database.manager import Database
from core.runtime import RuntimePaths
from core.settings import load_settings


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> RuntimePaths:
    """A fresh RUNTIME_DIR/LOGS_DIR under tmp, exported to the environment so
    CLIs run in-process or as subprocesses write nowhere else."""
    root = tmp_path / "runtime"
    logs = tmp_path / "logs"
    root.mkdir()
    logs.mkdir()
    monkeypatch.setenv("RUNTIME_DIR", str(root))
    monkeypatch.setenv("LOGS_DIR", str(logs))
    monkeypatch.delenv("SETTINGS_FILE", raising=False)
    monkeypatch.delenv("FILE_PROVIDER_DIR", raising=False)
    monkeypatch.delenv("SYNTHETIC_DEFECTS", raising=False)
    monkeypatch.delenv("PROVIDER_PRIORITY", raising=False)
    return RuntimePaths.resolve()


@pytest.fixture
def db_path(runtime):
    return runtime.db


@pytest.fixture
def fresh_db(db_path):
    db = Database(db_path)
    yield db
    db.close()


@pytest.fixture
def settings():
    return load_settings()
