-- Who started a job (a principal id), for jobs:read:own.
ALTER TABLE jobs ADD COLUMN principal TEXT;
CREATE INDEX jobs_principal ON jobs (principal, seq);

-- Tokens hookgate issued (route tokens) and every revocation, issued here or not.
CREATE TABLE tokens (
    jti          TEXT PRIMARY KEY,
    label        TEXT,
    subject      TEXT,
    scopes       TEXT,
    expires_at   REAL,
    created_at   REAL,
    last_used_at REAL,
    revoked_at   REAL
);
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- Small shared values, such as the generated admin token's hash.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A delivery id seen on a route maps to the job it started, until it expires.
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
