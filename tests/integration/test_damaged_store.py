"""A damaged store reaches the operator as one line, never a traceback: the
store turns sqlite3's exceptions into its own StoreAccessError, and the
commands map it to their documented exits."""
from __future__ import annotations

from click.testing import CliRunner

import ingest_history
import main as main_cli
import verify_db_status


def damage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database " * 200)


def test_ingest_on_a_damaged_store_names_the_runbook_procedure(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(ingest_history.main, ["--provider", "synthetic", "--as-of", "2026-11-19"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: database error: file is not a database "
                                     "(see docs/runbook.md, 'Database corruption')")


def test_verify_db_status_on_a_damaged_store_is_a_data_error(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(verify_db_status.main, ["--json"])
    assert result.exit_code == 65
    assert result.stderr.strip() == f"error: {runtime.db}: not a readable SQLite database (file is not a database)"


def test_stage2_on_a_damaged_store_names_the_runbook_procedure(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(main_cli.main, ["--run-once"])
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("(see docs/runbook.md, 'Database corruption')")
    assert "file is not a database" in result.stderr
