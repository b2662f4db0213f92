CREATE TABLE jobs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
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
    created_at      REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    run_after       REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    concurrency_key TEXT,
    max_concurrent  INTEGER,
    options         TEXT NOT NULL,
    origin          TEXT,
    engine_ref      TEXT,
    lease_owner     TEXT,
    lease_expires   REAL,
    erased          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_queue ON jobs (engine, run_after) WHERE state = 'queued';
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_script ON jobs (script, seq);
CREATE INDEX jobs_active_key ON jobs (concurrency_key) WHERE state IN ('running', 'suspended');
CREATE INDEX jobs_lease ON jobs (lease_expires) WHERE state IN ('running', 'suspended');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE script_versions (
    hash       TEXT PRIMARY KEY,
    engine     TEXT NOT NULL,
    path       TEXT NOT NULL,
    filename   TEXT NOT NULL,
    content    BLOB NOT NULL,
    created_at REAL NOT NULL
);
