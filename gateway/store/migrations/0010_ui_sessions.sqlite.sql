-- Dashboard sessions. The cookie holds the session id; the store keeps only its SHA-256, and what
-- the session may do (the principal and scopes of the token it was opened with), so that every
-- replica accepts it. Ended sessions are deleted; idle ones expire and are purged.
CREATE TABLE ui_sessions (
    id_hash     TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    jti         TEXT,
    token_hash  TEXT,
    csrf        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    last_seen   REAL NOT NULL
);
CREATE INDEX ui_sessions_seen ON ui_sessions (last_seen);
