-- A job's lineage (Windmill's parent_job / root_job: the flows build on these), when it was asked to
-- run (scheduled_in_secs / scheduled_for), and the scopes of whoever started it (its token's ceiling).
ALTER TABLE jobs ADD COLUMN parent_job TEXT;
ALTER TABLE jobs ADD COLUMN root_job TEXT;
ALTER TABLE jobs ADD COLUMN scheduled_for DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN principal_scopes TEXT;
CREATE INDEX jobs_by_root ON jobs (root_job) WHERE root_job IS NOT NULL;
