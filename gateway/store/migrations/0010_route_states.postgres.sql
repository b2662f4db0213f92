-- A route paused or resumed through the API: it wins over the file's state (every replica reads
-- it), until the API sets it again. Jobs a paused route holds are queued with HOLD added to their
-- run_after (see gateway.models.HOLD), so they need no table of their own.
CREATE TABLE route_states (
    route       TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    changed_at  DOUBLE PRECISION NOT NULL,
    changed_by  TEXT
);
