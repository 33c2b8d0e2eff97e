-- 0006: a run records who runs it, so that a run left RUNNING by a dead
-- process can be told from one still running (and closed ABORTED), and
-- every run that did not finish keeps why (issue 9, docs/decisions.md D-R1..).
ALTER TABLE ingestion_audit_runs ADD COLUMN owner_pid INTEGER;     -- the process running it
ALTER TABLE ingestion_audit_runs ADD COLUMN owner_host TEXT;       -- socket.gethostname() of that process
ALTER TABLE ingestion_audit_runs ADD COLUMN owner_started TEXT;    -- that process's start: boot id + start ticks (pid reuse)
ALTER TABLE ingestion_audit_runs ADD COLUMN error TEXT;            -- FAILED / ABORTED: what ended it
