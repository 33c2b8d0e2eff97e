-- 0007: one alert policy across runs.  An alert names its problem by a
-- stable key (ingest.verification_failed, providers.all_failed,
-- job.ingest_history.exit, ...); alert_state holds each problem still open,
-- what was last delivered for it (fingerprint and severity: the same problem
-- alerts once until it changes or clears), and note says why an alert was
-- not sent (DUPLICATE of what, THROTTLED by which cap, MUTED until when).
ALTER TABLE alerts ADD COLUMN alert_key TEXT;
ALTER TABLE alerts ADD COLUMN note TEXT;

CREATE TABLE alert_state (
    alert_key        TEXT PRIMARY KEY,
    severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    fingerprint      TEXT NOT NULL,
    title            TEXT NOT NULL,
    source           TEXT,                 -- the command or run that raised it last
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    occurrences      INTEGER NOT NULL DEFAULT 1,
    sent_severity    TEXT,                 -- of the last alert delivered for it (NULL: never delivered)
    sent_fingerprint TEXT,
    last_sent        TEXT
);
