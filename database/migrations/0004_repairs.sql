-- 0004: repairs keep the rows they replace, so a repair can be undone.
CREATE TABLE price_history_replaced (
    repair_run_id TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    date          TEXT NOT NULL,
    change        TEXT NOT NULL CHECK (change IN ('updated', 'inserted')),
    -- The row as it was before the repair (NULL for an inserted date).
    open          REAL,
    high          REAL,
    low           REAL,
    close         REAL,
    adj_close     REAL,
    volume        INTEGER,
    provider      TEXT,
    run_id        TEXT,
    ingested_at   TEXT,
    replaced_at   TEXT NOT NULL,
    undone_at     TEXT,
    PRIMARY KEY (repair_run_id, symbol, date)
) WITHOUT ROWID;
