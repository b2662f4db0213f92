-- Background operations (a bulk retry of deliveries): one row each, its progress and where its
-- next batch starts, written with every batch. One replica runs it under a lease; a restart
-- resumes from the cursor. Finished operations are purged with the retention.
CREATE TABLE operations (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    params        TEXT NOT NULL,
    state         TEXT NOT NULL,
    matched       INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cursor        TEXT,
    principal     TEXT,
    error         TEXT,
    lease_owner   TEXT,
    lease_expires DOUBLE PRECISION,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION,
    finished_at   DOUBLE PRECISION
);
CREATE INDEX operations_running ON operations (lease_expires) WHERE state = 'running';
CREATE INDEX operations_finished ON operations (finished_at) WHERE finished_at IS NOT NULL;

-- Deliveries by subscription and event type (the deliveries page's filters and the bulk retry).
CREATE INDEX deliveries_subscription ON deliveries (subscription, state, created_at);
CREATE INDEX deliveries_event_type ON deliveries (event_type, state, created_at);

-- Each route's requests and last error per minute, added up by every replica (the routes page's
-- last hour). Purged after a day.
CREATE TABLE route_minutes (
    route         TEXT NOT NULL,
    minute        BIGINT NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    last_error    TEXT,
    last_error_at DOUBLE PRECISION,
    PRIMARY KEY (route, minute)
);
CREATE INDEX route_minutes_minute ON route_minutes (minute);
