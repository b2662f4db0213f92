-- A debounced route's pending job per key: a newer call with the same key supersedes it (the old
-- job becomes 'debounced', superseded_by the new one) while it is still queued. first_at is when
-- the burst began, for max_delay. Rows outlive their job harmlessly: a key whose job has started
-- begins a new burst, and retention removes old rows.
ALTER TABLE jobs ADD COLUMN superseded_by TEXT;
CREATE TABLE debounces (
    key       TEXT PRIMARY KEY,
    job_id    TEXT NOT NULL,
    first_at  REAL NOT NULL
);
