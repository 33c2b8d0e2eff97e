-- 0009: never overwrite good with worse (issue 10, docs/decisions.md D-B4).
-- A re-fetched bar whose market values differ from the stored ones is a
-- correction: the stored row is kept here, as repairs keep the rows they
-- replace (price_history_replaced), so what a vendor changed can be seen
-- and put back.  Kept by a trigger, so every write path keeps it (the
-- ingest upsert, whatever the provider); the repair's own write and its
-- undo are left out: price_history_replaced already holds those rows.
CREATE TABLE price_history_corrections (
    run_id        TEXT NOT NULL,    -- the run whose write replaced the row
    symbol        TEXT NOT NULL,
    date          TEXT NOT NULL,
    -- The row as it was before the correction.
    open          REAL,
    high          REAL,
    low           REAL,
    close         REAL,
    adj_close     REAL,
    volume        INTEGER,
    provider      TEXT,
    old_run_id    TEXT,
    ingested_at   TEXT,
    corrected_at  TEXT NOT NULL,    -- the ingested_at of the new row
    PRIMARY KEY (run_id, symbol, date)
) WITHOUT ROWID;

CREATE TRIGGER price_history_keep_corrected BEFORE UPDATE ON price_history
WHEN (OLD.open IS NOT NEW.open OR OLD.high IS NOT NEW.high OR OLD.low IS NOT NEW.low
      OR OLD.close IS NOT NEW.close OR OLD.adj_close IS NOT NEW.adj_close OR OLD.volume IS NOT NEW.volume)
     AND NOT EXISTS (SELECT 1 FROM price_history_replaced r
                     WHERE r.symbol = OLD.symbol AND r.date = OLD.date
                       AND r.repair_run_id IN (NEW.run_id, OLD.run_id))
BEGIN
    INSERT OR IGNORE INTO price_history_corrections(run_id, symbol, date, open, high, low, close, adj_close,
                                                    volume, provider, old_run_id, ingested_at, corrected_at)
    VALUES (NEW.run_id, OLD.symbol, OLD.date, OLD.open, OLD.high, OLD.low, OLD.close, OLD.adj_close,
            OLD.volume, OLD.provider, OLD.run_id, OLD.ingested_at, NEW.ingested_at);
END;

-- How many stored bars each symbol's write corrected.
ALTER TABLE ingestion_audit ADD COLUMN rows_corrected INTEGER NOT NULL DEFAULT 0;
