-- Callback endpoints. The URL's token is never stored: only its SHA-256, to find the endpoint.
CREATE TABLE callbacks (
    id            TEXT PRIMARY KEY,
    job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    method        TEXT NOT NULL,
    schema        TEXT,
    max_calls     INTEGER NOT NULL,
    accepted      INTEGER NOT NULL DEFAULT 0,
    expires_at    REAL NOT NULL,
    created_at    REAL NOT NULL,
    approval      TEXT,
    require_token INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX callbacks_job ON callbacks (job_id);

-- Accepted calls, in order; an await takes the oldest one not yet consumed.
CREATE TABLE callback_calls (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id TEXT NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    method      TEXT NOT NULL,
    headers     TEXT,
    query       TEXT,
    body        TEXT,
    received_at REAL NOT NULL,
    consumed_at REAL
);
CREATE INDEX callback_calls_pending ON callback_calls (callback_id, seq) WHERE consumed_at IS NULL;

-- Which callback a suspended job waits for (shown by the jobs API).
ALTER TABLE jobs ADD COLUMN waiting_for TEXT;
