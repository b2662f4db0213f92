-- Each subscription's circuit breaker and failure record (gateway/outbound/health.py), written in
-- the transaction that settles an attempt. Claims skip a subscription whose circuit is open, and
-- let one probe through once its retry_at has passed. A disabled subscription is still a row of
-- disabled_subscriptions.
CREATE TABLE subscription_health (
    name             TEXT PRIMARY KEY,
    state            TEXT NOT NULL DEFAULT 'closed',
    window_start     REAL NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    opened_at        REAL,
    retry_at         REAL,
    failing_since    REAL,
    last_status      INTEGER,
    last_error       TEXT,
    last_attempt_at  REAL
);
-- A paced subscription's (fifo, max_rate) claims: the token bucket of max_rate, and the row its
-- claims lock one after the other on PostgreSQL, so that order and rate hold across replicas.
CREATE TABLE subscription_pace (
    name    TEXT PRIMARY KEY,
    tokens  REAL NOT NULL,
    at      REAL NOT NULL
);
