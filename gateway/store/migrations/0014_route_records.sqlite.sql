-- What a route turned away (its filter, its provider's event list) and what it keeps to replay
-- (capture = N: the last N requests as received). Shared by replicas, purged with the retention.
CREATE TABLE ignored_requests (
    id          TEXT PRIMARY KEY,
    route       TEXT NOT NULL,
    method      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    arguments   TEXT,
    request_id  TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX ignored_requests_route ON ignored_requests (route, received_at);
CREATE INDEX ignored_requests_received ON ignored_requests (received_at);

CREATE TABLE route_captures (
    id          TEXT PRIMARY KEY,
    route       TEXT NOT NULL,
    method      TEXT NOT NULL,
    query       TEXT NOT NULL,
    headers     TEXT NOT NULL,
    body        BLOB,
    sealed_body TEXT,
    path_params TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    reason      TEXT,
    job_ids     TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX route_captures_route ON route_captures (route, received_at);
CREATE INDEX route_captures_received ON route_captures (received_at);
