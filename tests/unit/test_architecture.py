"""The architecture's contracts (docs/architecture.md), checked on every run.

* ``lint-imports`` (import-linter, contracts in ``pyproject.toml``) passes:
  layers import one way, only the edge imports click/rich, only the store
  speaks SQL, the store is reached through its front door (``database``).
* Breaking a contract fails: a copy of the product with one forbidden
  import added is rejected by the same contracts.
* Every product module sits in a layer, and none is over 500 lines.
* Outside ``database/`` (and tests, bench) nothing constructs ``Database``:
  the product opens its store with ``database.open_store``.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
ROOT_PACKAGES = PYPROJECT["tool"]["importlinter"]["root_packages"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 500
# Debts being paid by the architecture work (issue 8); this only shrinks.
OVERSIZE_DEBT: set[str] = set()


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _product_modules() -> list[Path]:
    return sorted(p for pkg in ROOT_PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_lint_imports_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("violation, contract", [
    ("core/_violation.py", "import click\n"),
    ("core/_violation.py", "from rich.console import Console\n"),
    ("database/_violation.py", "from data.collectors import data_router\n"),
    ("reports/_violation.py", "import sqlite3\n"),
    ("trading/_violation.py", "from database.manager import Database\n"),
    # the layers inside the application and the domain hold too
    ("data/quality/_violation.py", "from data.governance import rules\n"),      # quality knows no rule
    ("database/_violation.py", "from data.providers import base\n"),            # store and providers independent
    ("data/providers/_violation.py", "from data.quality import findings\n"),    # providers and quality independent
    ("reports/_violation.py", "from data.collectors.ingestion import run\n"),   # a report never runs an ingest
    ("data/collectors/_violation.py", "from trading import gate\n"),            # Stage 1 never reaches Stage 2
])
def test_a_forbidden_import_breaks_the_contracts(tmp_path, violation, contract):
    """The same contracts reject a copy of the product with one bad import."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    for pkg in ROOT_PACKAGES:
        shutil.copytree(REPO / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / violation).write_text(contract)
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert violation.replace("/", ".").removesuffix(".py") in result.stdout


def test_core_has_no_ui_import_at_all():
    """Core's logging writes files only; the console (rich) is the edge's.
    No exception for core in the "only the edge imports click or rich"
    contract, and the lint above keeps it so."""
    contract = next(c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["id"] == "edge-only-ui")
    assert "core" in contract["source_modules"]
    assert not [line for line in contract.get("ignore_imports", []) if line.startswith("core")]


def test_providers_registered_by_name_sit_in_the_domain():
    """The router imports providers from "module:Class" strings, which
    import-linter cannot see: each must name a module of data.providers (the
    domain layer the router may import), and it must import."""
    import importlib

    from data.collectors.data_router import PROVIDER_REGISTRY

    for name, target in PROVIDER_REGISTRY.items():
        module_name, _, cls_name = target.partition(":")
        assert module_name.startswith("data.providers."), f"{name}: {target} is outside data.providers"
        assert hasattr(importlib.import_module(module_name), cls_name), target


def test_every_product_module_is_in_a_layer():
    layers = PYPROJECT["tool"]["importlinter"]["contracts"][0]["layers"]
    listed = [name.strip() for layer in layers for name in layer.replace("|", ":").split(":")]
    for path in _product_modules():
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module in ROOT_PACKAGES and path.name == "__init__.py":
            continue
        assert any(module == m or module.startswith(m + ".") for m in listed), f"{module} is in no layer"


def test_no_product_module_over_500_lines():
    long = {str(p.relative_to(REPO)): n for p in _product_modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES
            and str(p.relative_to(REPO)) not in OVERSIZE_DEBT}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


DOMAIN = ("data.governance", "data.quality", "data.providers", "database", "sqlite3")


def test_root_commands_are_thin_and_never_reach_past_the_application():
    """The runbook's scripts are thin edges: options, one application call,
    errors to exit codes (through ``cli``); never the store, the rules or a
    provider directly, and never long."""
    scripts = ["ingest_history.py", "verify_backfill.py", "verify_db_status.py", "repair_db.py",
               "main.py", "trading_daemon.py", "feature_refresher.py", "scripts/train_ml_alpha.py"]
    for script in scripts:
        text = (REPO / script).read_text()
        assert len(text.splitlines()) <= 80, f"{script} is not thin"
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not any(name == d or name.startswith(d + ".") for d in DOMAIN), f"{script} imports {name}"


def test_nothing_outside_the_store_constructs_database():
    """The product opens its store with ``database.open_store`` (the one
    factory, where a second backend plugs in); only ``database/`` itself,
    the tests and the bench construct the SQLite class."""
    scripts = sorted(REPO.glob("*.py")) + sorted((REPO / "scripts").glob("*.py"))
    modules = [p for p in _product_modules() if p.relative_to(REPO).parts[0] != "database"]
    found = []
    for path in scripts + modules:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                if name == "Database":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, f"Database(...) outside database/ (use database.open_store): {found}"
