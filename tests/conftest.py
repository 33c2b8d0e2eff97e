"""Shared fixtures: every test gets its own runtime directory in tmp."""
from __future__ import annotations

import os
import tempfile

# Hypothesis keeps its example database in ./.hypothesis by default: the suite
# must write nothing into the repository, so it goes to a temp dir (set before
# hypothesis is imported by any test module) and the database is off.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="hypothesis-"))

import pytest  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("no-repo-writes", database=None)
hypothesis_settings.load_profile("no-repo-writes")

from database.manager import Database  # noqa: E402
from core.runtime import RuntimePaths  # noqa: E402
from core.settings import load_settings  # noqa: E402


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
