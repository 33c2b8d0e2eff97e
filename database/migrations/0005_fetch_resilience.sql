-- 0005: dead letters remember the universe entry they were recorded under
-- (an edited entry revives the symbol), and provider health keeps detail.
ALTER TABLE fetch_state ADD COLUMN dead_letter_entry TEXT;
ALTER TABLE provider_health ADD COLUMN detail TEXT;    -- JSON: retries, 429s, waits, HTTP statuses
