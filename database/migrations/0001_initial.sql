-- 0001: every table of DESIGN section 5.
-- Dates are ISO text 'YYYY-MM-DD'; timestamps ISO-8601 UTC text.

-- Daily bars.  WITHOUT ROWID: the (symbol, date) key is the storage order,
-- so a symbol's history is contiguous and a range read is one seek.
CREATE TABLE price_history (
    symbol      TEXT    NOT NULL,
    date        TEXT    NOT NULL,
    open        REAL,
    high        REAL,
    low         REAL,
    close       REAL,
    adj_close   REAL,
    volume      INTEGER,
    provider    TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    ingested_at TEXT    NOT NULL,
    PRIMARY KEY (symbol, date)
) WITHOUT ROWID;

CREATE TABLE corporate_actions (
    symbol    TEXT NOT NULL,
    date      TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('dividend', 'split')),
    value     REAL NOT NULL,       -- cash per share, or split ratio new/old (2.0 = 2-for-1)
    provider  TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    PRIMARY KEY (symbol, date, action)
) WITHOUT ROWID;

CREATE TABLE ingestion_audit_runs (
    run_id             TEXT PRIMARY KEY,
    mode               TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    as_of              TEXT,
    status             TEXT NOT NULL DEFAULT 'RUNNING',  -- RUNNING, SUCCESS, PARTIAL, FAILED
    symbols_requested  INTEGER NOT NULL DEFAULT 0,
    symbols_succeeded  INTEGER NOT NULL DEFAULT 0,
    symbols_failed     INTEGER NOT NULL DEFAULT 0,
    rows_written       INTEGER NOT NULL DEFAULT 0,
    providers_used     TEXT,            -- JSON object provider -> symbols served
    verification       TEXT,            -- PASSED / FAILED / NULL (not verified)
    params             TEXT             -- JSON of the run's flags
);

CREATE TABLE ingestion_audit (
    run_id          TEXT NOT NULL REFERENCES ingestion_audit_runs(run_id),
    symbol          TEXT NOT NULL,
    asset_class     TEXT,
    providers_tried TEXT NOT NULL,      -- JSON list of {provider, outcome, error_code}
    provider_used   TEXT,
    outcome         TEXT NOT NULL,      -- SUCCESS, FAILED, UP_TO_DATE, NO_VALID_PROVIDER, SKIPPED_DEAD_LETTER
    error_code      TEXT,
    error_message   TEXT,
    window_start    TEXT,
    window_end      TEXT,
    expected_rows   INTEGER,
    rows_received   INTEGER NOT NULL DEFAULT 0,
    duplicate_rows  INTEGER NOT NULL DEFAULT 0,
    rows_written    INTEGER NOT NULL DEFAULT 0,
    adjustment      TEXT,               -- vendor / computed / unadjusted
    raw_archive     TEXT,               -- path of the gzip payload
    latency_ms      REAL,
    PRIMARY KEY (run_id, symbol)
);

CREATE TABLE symbol_governance (
    symbol        TEXT PRIMARY KEY,
    asset_class   TEXT,
    state         TEXT NOT NULL CHECK (state IN ('ACTIVE', 'DEGRADED', 'QUARANTINED')),
    reason        TEXT NOT NULL,
    rows          INTEGER NOT NULL DEFAULT 0,
    quality_score REAL,
    first_date    TEXT,
    last_date     TEXT,
    provider      TEXT,
    run_id        TEXT,
    updated_at    TEXT NOT NULL
);

CREATE TABLE governance_events (
    id           INTEGER PRIMARY KEY,
    ts           TEXT NOT NULL,
    run_id       TEXT,
    symbol       TEXT,                  -- NULL for universe-wide events
    event        TEXT NOT NULL,         -- STATE_CHANGE, NO_VALID_PROVIDER, INGEST_SUCCESS, ...
    before_state TEXT,
    after_state  TEXT,
    reason       TEXT,
    detail       TEXT                   -- JSON
);
CREATE INDEX governance_events_symbol ON governance_events(symbol, id);

CREATE TABLE data_quality (
    run_id             TEXT NOT NULL,
    symbol             TEXT NOT NULL,
    rows               INTEGER NOT NULL,
    expected_rows      INTEGER NOT NULL,
    missing_dates_pct  REAL NOT NULL,
    duplicate_pct      REAL NOT NULL,
    zero_negative_flag REAL NOT NULL,
    extreme_spike_flag REAL NOT NULL,
    quality_score      REAL NOT NULL,
    findings           TEXT,            -- JSON list of findings
    computed_at        TEXT NOT NULL,
    PRIMARY KEY (run_id, symbol)
);

CREATE TABLE fetch_state (
    symbol               TEXT PRIMARY KEY,
    last_date            TEXT,
    last_success_run     TEXT,
    last_provider        TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error_code      TEXT,
    dead_letter          INTEGER NOT NULL DEFAULT 0,
    dead_letter_since    TEXT,
    updated_at           TEXT NOT NULL
);

CREATE TABLE provider_health (
    run_id        TEXT NOT NULL,
    provider      TEXT NOT NULL,
    requests      INTEGER NOT NULL DEFAULT 0,
    successes     INTEGER NOT NULL DEFAULT 0,
    failures      TEXT,                 -- JSON object error_code -> count
    p50_ms        REAL,
    p95_ms        REAL,
    circuit_open  INTEGER NOT NULL DEFAULT 0,
    entitled      INTEGER,
    PRIMARY KEY (run_id, provider)
);

-- Paper broker.
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    session     TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity    REAL NOT NULL CHECK (quantity > 0),
    order_type  TEXT NOT NULL DEFAULT 'MARKET',
    status      TEXT NOT NULL,          -- NEW, FILLED, REJECTED, CANCELLED
    reason      TEXT,
    mode        TEXT NOT NULL DEFAULT 'paper'
);

CREATE TABLE fills (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    filled_at   TEXT NOT NULL,
    session     TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL,
    quantity    REAL NOT NULL,
    price       REAL NOT NULL,
    commission  REAL NOT NULL DEFAULT 0
);

CREATE TABLE positions (
    symbol      TEXT PRIMARY KEY,
    quantity    REAL NOT NULL,
    avg_price   REAL NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
