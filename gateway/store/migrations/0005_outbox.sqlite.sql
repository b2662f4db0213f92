-- The outbox: every outbound delivery, written in the same transaction as the change it reports.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    subscription    TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    job_id          TEXT REFERENCES jobs (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    body            BLOB,
    content_type    TEXT NOT NULL,
    headers         TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner     TEXT,
    lease_expires   REAL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    settled_at      REAL,
    erase_on_settle INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_job ON deliveries (job_id, created_at);
CREATE INDEX deliveries_state ON deliveries (state, created_at);

-- Every attempt, for the API and the CLI.
CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    duration_ms REAL NOT NULL,
    status      INTEGER,
    error       TEXT,
    response    TEXT,
    PRIMARY KEY (delivery_id, number)
);

-- A subscription whose receiver answered 410 Gone stays disabled until re-enabled.
CREATE TABLE disabled_subscriptions (
    name        TEXT PRIMARY KEY,
    reason      TEXT,
    disabled_at REAL NOT NULL
);
