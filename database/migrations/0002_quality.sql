-- 0002: quality & governance (issue 3).

-- Duplicates the vendor payload held (counted at ingest, before the upsert
-- collapsed them).  Kept so that a verify run, which re-scores from the
-- store without fetching, scores duplicate_pct from the last payload seen.
ALTER TABLE data_quality ADD COLUMN payload_duplicates INTEGER NOT NULL DEFAULT 0;

-- Every alert the product raised, whether it was delivered or not.  Bodies
-- are redacted before they are stored; targets name the service only (an
-- alert URL carries its token, so it is never stored).
CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY,
    ts        TEXT NOT NULL,
    run_id    TEXT,
    severity  TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    title     TEXT NOT NULL,
    body      TEXT NOT NULL,
    outcome   TEXT NOT NULL,            -- SENT, PARTIAL, FAILED, DRY_RUN, THROTTLED, NOT_CONFIGURED, BELOW_SEVERITY
    targets   TEXT,                     -- JSON list of {service, ok, error}
    artifact  TEXT                      -- dry-run file under runtime/alerts/
);
CREATE INDEX alerts_run ON alerts(run_id, id);
