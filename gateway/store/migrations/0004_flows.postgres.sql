-- Flows: a step's job names its step (its parent_job is the run), and a run's progress sits beside
-- its job, advanced by compare-and-set on version. Deleted with the run's job (the retention).
ALTER TABLE jobs ADD COLUMN flow_step TEXT;
CREATE INDEX jobs_by_parent ON jobs (parent_job) WHERE parent_job IS NOT NULL;
CREATE TABLE flow_runs (
    run_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    flow TEXT NOT NULL,
    flow_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    deadline DOUBLE PRECISION
);
CREATE INDEX flow_runs_open ON flow_runs (updated_at) WHERE settled = 0;
