"""A missing data directory is the operator's input missing: exit 66 before
any state changes, never a per-symbol provider crash or a governance
decision (DESIGN section 2, "blast radius is one item")."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

import ingest_history
from core.inputs import load_inputs
from data.collectors.data_router import DataRouter
from data.collectors.ingestion import IngestOptions, run_ingestion
from data.collectors.ingestion.payload import PayloadPrep
from data.collectors.ingestion.pool import fetch_and_prepare
from data.providers.base import FetchRequest
from data.providers.file import DataDirectoryNotFound, FileDataProvider
from database.manager import Database

AS_OF = "2026-11-19"


def universe_file(tmp_path, symbols=("AAPL", "MSFT")):
    path = tmp_path / "universe.json"
    path.write_text(json.dumps({"symbols": [{"symbol": s} for s in symbols]}))
    return str(path)


@pytest.mark.parametrize("args, env, named", [
    (["--provider", "file"], {}, "--data-dir or FILE_PROVIDER_DIR"),
    (["--provider", "file", "--data-dir", "{missing}"], {}, "{missing}"),
    ([], {"FILE_PROVIDER_DIR": "{missing}"}, "{missing}"),
])
def test_ingest_without_its_data_directory_exits_66_and_writes_nothing(runtime, tmp_path, monkeypatch, args,
                                                                       env, named):
    missing = str(tmp_path / "no-such-dir")
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(missing=missing))
    result = CliRunner().invoke(ingest_history.main, ["--universe", universe_file(tmp_path), "--as-of", AS_OF,
                                                      *(a.format(missing=missing) for a in args)])
    assert result.exit_code == 66, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert named.format(missing=missing) in result.stderr
    assert "Traceback" not in result.output
    assert not runtime.db.exists()
    # Nothing of a run: the trail holds only the command's exit (cli.job_alerts), and its alert.
    lines = [json.loads(line) for line in runtime.audit_jsonl.read_text().splitlines()]
    assert [(e["event"], e.get("exit_code"), e.get("severity")) for e in lines] == \
        [("job_exit", 66, None), ("ALERT", None, "critical")]
    assert {e["module"] for e in lines} == {"job.ingest_history"}


def test_the_run_refuses_a_missing_directory_before_any_state_change(runtime, tmp_path, settings):
    """Called as a library (no CLI validation in front of it), the run
    raises DataDirectoryNotFound before writing a run row, an audit row or
    a governance event."""
    universe, settings = load_inputs(universe_file(tmp_path))
    options = IngestOptions(provider="file", data_dir=str(tmp_path / "gone"), as_of=dt.date.fromisoformat(AS_OF))
    with Database(runtime.db) as db:
        with pytest.raises(DataDirectoryNotFound, match="gone does not exist"):
            run_ingestion(db, universe, settings, runtime, options)
        assert db.runs.recent() == [] and db.governance.events() == [] and db.governance.states() == {}
        assert db.table_count("ingestion_audit") == 0


def test_a_directory_gone_mid_run_is_raised_not_turned_into_outcomes(tmp_path):
    """The fetch pool turns a provider's failures into per-symbol outcomes,
    but a missing data directory is not a provider's failure: it is raised."""
    data_dir = tmp_path / "csv"
    data_dir.mkdir()
    provider = FileDataProvider(directory=str(data_dir))
    data_dir.rmdir()
    request = FetchRequest("AAPL", "stocks", dt.date(2026, 11, 16), dt.date(2026, 11, 19))
    with pytest.raises(DataDirectoryNotFound, match="csv does not exist"):
        fetch_and_prepare(provider, "file", [request], PayloadPrep(None, 1, None))


def test_the_router_refuses_a_missing_directory_when_built(settings, tmp_path):
    with pytest.raises(DataDirectoryNotFound):
        DataRouter(settings, env={}, data_dir=str(tmp_path / "absent"))
    with pytest.raises(DataDirectoryNotFound, match="is not set"):
        DataRouter(settings, env={}, only="file")
    assert DataRouter(settings, env={}, data_dir=str(tmp_path)).priority[-1] == "file"
