import sqlite3

import numpy as np
import pandas as pd
import pytest

from database.manager import (SCHEMA_VERSION, Database, MixedOriginError, StoreAccessError, StoreError,
                              SymbolWrite)


def bars(start="2026-01-05", n=5, close=100.0, volume=1000):
    dates = pd.bdate_range(start, periods=n)
    c = close + np.arange(n, dtype=float)
    return pd.DataFrame({"date": dates, "open": c, "high": c + 1, "low": c - 1, "close": c, "adj_close": c,
                         "volume": pd.array(np.full(n, volume), dtype="Int64")})


def write(db, symbol, frame, provider="file", run_id="r1"):
    return db.bars.write_symbols(run_id, "2026-01-01T00:00:00Z",
                                 [SymbolWrite(symbol, provider, frame, {"outcome": "SUCCESS"})])


def test_fresh_store_has_every_table_and_pragmas(fresh_db):
    tables = {r[0] for r in fresh_db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"price_history", "symbol_governance", "data_quality", "ingestion_audit", "ingestion_audit_runs",
            "corporate_actions", "governance_events", "fetch_state", "provider_health", "orders", "fills",
            "positions"} <= tables
    assert fresh_db.schema_version() == SCHEMA_VERSION
    assert fresh_db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert fresh_db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert fresh_db.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_a_newer_schema_is_refused(db_path):
    Database(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this code"):
        Database(db_path)


def test_upsert_is_idempotent_and_keeps_provenance(fresh_db):
    frame = bars()
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    fresh_db.runs.begin("r2", "deep_backfill", None, {}, "2026-01-02T00:00:00Z", 1)
    assert write(fresh_db, "AAPL", frame, run_id="r1") == 5
    before = fresh_db.bars.content_hash(include_provenance=True)
    assert write(fresh_db, "AAPL", frame, run_id="r2") == 0
    assert fresh_db.bars.content_hash(include_provenance=True) == before
    changed = frame.copy()
    changed.loc[2, "close"] = 102.5
    assert write(fresh_db, "AAPL", changed, run_id="r2") == 1    # a valid correction (inside [low, high])
    row = fresh_db.conn.execute("SELECT close, run_id FROM price_history WHERE symbol='AAPL' AND date=?",
                                (str(frame.date[2].date()),)).fetchone()
    assert row == (102.5, "r2")


def test_volumes_are_integers_and_prices_real(fresh_db):
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    frame = bars()
    frame["volume"] = frame["volume"].astype("int64")  # numpy int64 must not become a BLOB
    write(fresh_db, "AAPL", frame)
    types = fresh_db.conn.execute("SELECT DISTINCT typeof(volume), typeof(close), typeof(adj_close) "
                                  "FROM price_history").fetchall()
    assert types == [("integer", "real", "real")]


def test_missing_values_are_stored_as_null(fresh_db):
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    frame = bars()
    frame.loc[1, "close"] = np.nan
    frame["volume"] = pd.array([1, None, 3, 4, 5], dtype="Int64")
    write(fresh_db, "AAPL", frame)
    nulls = fresh_db.conn.execute("SELECT SUM(close IS NULL), SUM(volume IS NULL) FROM price_history").fetchone()
    assert nulls == (1, 1)


def test_corporate_actions_store_only_real_events(fresh_db):
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    frame = bars()
    frame["dividend"] = [0, 0, 0.5, 0, 0]
    frame["split_ratio"] = [1, 1, 1, 2.0, 1]
    write(fresh_db, "AAPL", frame)
    actions = fresh_db.bars.corporate_actions(["AAPL"])["AAPL"]
    assert list(actions.action) == ["dividend", "split"]
    assert list(actions.value) == [0.5, 2.0]


def test_synthetic_and_vendor_data_never_mix(fresh_db):
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    write(fresh_db, "AAPL", bars(), provider="synthetic")
    with pytest.raises(MixedOriginError, match="holds synthetic data"):
        write(fresh_db, "MSFT", bars(), provider="yahoo")
    assert fresh_db.bars.history_summary(["MSFT"])["MSFT"]["rows"] == 0


def test_failed_transaction_leaves_nothing(fresh_db):
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    good = SymbolWrite("AAPL", "file", bars(), {"outcome": "SUCCESS"})
    bad = SymbolWrite("MSFT", "synthetic", bars(), {"outcome": "SUCCESS"})
    with pytest.raises(MixedOriginError):
        fresh_db.bars.write_symbols("r1", "t", [good, bad])
    assert fresh_db.table_count("price_history") == 0
    assert fresh_db.table_count("ingestion_audit") == 0


def test_governance_changes_append_events_only_on_change(fresh_db):
    row = {"symbol": "AAPL", "state": "ACTIVE", "reason": "OK", "rows": 1260, "quality_score": 1.0}
    assert len(fresh_db.governance.set_states([row], run_id="r1")) == 1
    assert fresh_db.governance.set_states([row], run_id="r2") == []
    changes = fresh_db.governance.set_states([dict(row, state="DEGRADED", reason="LOW_QUALITY")], run_id="r3")
    assert changes == [{"symbol": "AAPL", "before_state": "ACTIVE", "after_state": "DEGRADED",
                        "reason": "LOW_QUALITY"}]
    events = fresh_db.governance.events(symbol="AAPL", event="STATE_CHANGE")
    assert [(e["before_state"], e["after_state"]) for e in events] == [("ACTIVE", "DEGRADED"), (None, "ACTIVE")]


def test_sqlite_errors_reach_the_caller_as_store_access_errors(db_path):
    """The store's callers see its own StoreError, never sqlite3's exceptions."""
    db_path.write_bytes(b"SQLite format 3\x00" + b"this is not a database " * 200)
    for readonly in (False, True):
        with pytest.raises(StoreAccessError, match="not a database") as caught:
            Database(db_path, readonly=readonly)
        assert isinstance(caught.value, StoreError)
        assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert db_path.read_bytes().endswith(b"this is not a database ")     # refused, not written


def test_a_write_through_a_read_only_store_is_refused_and_reads_go_on(db_path):
    Database(db_path).close()
    with Database(db_path, readonly=True) as db:
        with pytest.raises(StoreAccessError, match="readonly"):
            db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
        assert db.runs.recent() == []


def test_a_symbol_write_records_its_audit_row_fetch_state_and_origin(fresh_db):
    """One transaction across the aggregates that share the connection."""
    fresh_db.runs.begin("r1", "deep_backfill", None, {}, "2026-01-01T00:00:00Z", 1)
    write(fresh_db, "AAPL", bars())
    assert fresh_db.runs.audit_rows("r1")[0]["rows_written"] == 5
    assert fresh_db.fetch_state.by_symbol()["AAPL"]["last_date"] == fresh_db.bars.last_dates(["AAPL"])["AAPL"]
    assert fresh_db.data_origin() == "vendor"
