"""The backfill benchmark's code path at a small scale (the full 7.56 M-row
run lives in bench/backfill.py; its figures are recorded in bench/README.md).
No timing is asserted: only what the benchmark's figures rely on."""
import shutil

import pytest

from bench.backfill import run_bench


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 command-line shell (the floor) not installed")
def test_backfill_bench_path_small(tmp_path):
    result = run_bench(30, tmp_path / "bench")
    assert result["rows"] == 30 * 1260
    assert result["hash_identical"] is True
    assert result["runs_recorded"] == 2
    assert result["rows_written_rerun"] == 0
    assert result["storage_types"] == [("integer", "real", 30 * 1260)]
    assert result["verify_backfill_exit"] == 0 and result["verify_db_status_exit"] == 0
    assert result["incremental_rows_written"] == 30
    assert result["peak_rss_mib_first_process_tree"] > 0
