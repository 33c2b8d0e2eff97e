"""A damaged store reaches the operator as one line, never a traceback: the
store turns sqlite3's exceptions into its own typed StoreAccessError, and the
commands map it to their documented exits (a text file is not a database,
65; binary junk is corruption, 79, with 'Database corruption')."""
from __future__ import annotations

from click.testing import CliRunner

import ingest_history
import main as main_cli
import verify_db_status

CORRUPTION = "(see docs/runbook.md, 'Database corruption')"


def damage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((i * 131 + 7) % 256 for i in range(8192)))


def test_ingest_on_a_damaged_store_names_the_runbook_procedure(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(ingest_history.main, ["--provider", "synthetic", "--as-of", "2026-11-19"])
    assert result.exit_code == 79
    assert result.stderr.strip() == (f"error: database error: {runtime.db}: no SQLite header (file is not a "
                                     f"database): the file is damaged {CORRUPTION}")


def test_verify_db_status_on_a_damaged_store_names_the_runbook_procedure(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(verify_db_status.main, ["--json"])
    assert result.exit_code == 79
    assert result.stderr.strip().endswith(CORRUPTION)


def test_a_text_file_is_not_a_database(runtime):
    runtime.db.write_text("this is not a database " * 200)
    result = CliRunner().invoke(verify_db_status.main, ["--json"])
    assert result.exit_code == 65
    assert "a text file, not a SQLite database" in result.stderr and CORRUPTION not in result.stderr


def test_stage2_on_a_damaged_store_names_the_runbook_procedure(runtime):
    damage(runtime.db)
    result = CliRunner().invoke(main_cli.main, ["--run-once"])
    assert result.exit_code == 79
    assert result.stderr.strip().endswith(CORRUPTION)
    assert "file is not a database" in result.stderr
