-- The whole schema for PostgreSQL (its history starts here; SQLite's files are separate).
CREATE TABLE jobs (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    engine          TEXT NOT NULL,
    script          TEXT NOT NULL,
    script_hash     TEXT,
    route           TEXT,
    args            TEXT,
    result          TEXT,
    error           TEXT,
    logs            TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    started_at      DOUBLE PRECISION,
    finished_at     DOUBLE PRECISION,
    run_after       DOUBLE PRECISION NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    concurrency_key TEXT,
    max_concurrent  INTEGER,
    options         TEXT NOT NULL,
    origin          TEXT,
    engine_ref      TEXT,
    lease_owner     TEXT,
    lease_expires   DOUBLE PRECISION,
    erased          INTEGER NOT NULL DEFAULT 0,
    sealed_args     TEXT,
    principal       TEXT,
    waiting_for     TEXT
);
CREATE INDEX jobs_queue ON jobs (engine, run_after) WHERE state = 'queued';
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_script ON jobs (script, seq);
CREATE INDEX jobs_principal ON jobs (principal, seq);
CREATE INDEX jobs_active_key ON jobs (concurrency_key) WHERE state IN ('running', 'suspended');
CREATE INDEX jobs_lease ON jobs (lease_expires) WHERE state IN ('running', 'suspended');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE script_versions (
    hash       TEXT PRIMARY KEY,
    engine     TEXT NOT NULL,
    path       TEXT NOT NULL,
    filename   TEXT NOT NULL,
    content    BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE tokens (
    jti          TEXT PRIMARY KEY,
    label        TEXT,
    subject      TEXT,
    scopes       TEXT,
    expires_at   DOUBLE PRECISION,
    created_at   DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION
);
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE callbacks (
    id            TEXT PRIMARY KEY,
    job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    method        TEXT NOT NULL,
    schema        TEXT,
    max_calls     INTEGER NOT NULL,
    accepted      INTEGER NOT NULL DEFAULT 0,
    expires_at    DOUBLE PRECISION NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    approval      TEXT,
    require_token INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX callbacks_job ON callbacks (job_id);

CREATE TABLE callback_calls (
    seq         BIGSERIAL PRIMARY KEY,
    callback_id TEXT NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    method      TEXT NOT NULL,
    headers     TEXT,
    query       TEXT,
    body        TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    consumed_at DOUBLE PRECISION
);
CREATE INDEX callback_calls_pending ON callback_calls (callback_id, seq) WHERE consumed_at IS NULL;

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    subscription    TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    job_id          TEXT REFERENCES jobs (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    body            BYTEA,
    content_type    TEXT NOT NULL,
    headers         TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner     TEXT,
    lease_expires   DOUBLE PRECISION,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    settled_at      DOUBLE PRECISION,
    erase_on_settle INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_job ON deliveries (job_id, created_at);
CREATE INDEX deliveries_state ON deliveries (state, created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    status      INTEGER,
    error       TEXT,
    response    TEXT,
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE disabled_subscriptions (
    name        TEXT PRIMARY KEY,
    reason      TEXT,
    disabled_at DOUBLE PRECISION NOT NULL
);

-- Shared rate limits: the request times inside each key's window.
CREATE TABLE rate_events (
    key TEXT NOT NULL,
    at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (key, at);
