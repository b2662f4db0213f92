-- Jobs per state, kept by a trigger: the max_queued_jobs check on every trigger request (and the
-- metrics scrape, and the runs page's counts) sum a few rows instead of counting a queue that may
-- hold millions, a cost that grew with the queue (sqlite's 0007 does the same).
--
-- Each server process (backend) keeps its own rows, so that concurrent transactions never wait on
-- one another for a counter, and no two can deadlock over two of them: a row is only ever locked by
-- the one backend whose pid it carries (its pid is unique while it lives). The count of a state is
-- the sum over backends. Retention folds the rows nobody holds into backend 0
-- (``PostgresJobs.purge_finished``), so that the rows do not grow with the connections ever made.
CREATE TABLE job_counts (
    backend INTEGER NOT NULL,
    state   TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (backend, state)
);

INSERT INTO job_counts (backend, state, n) SELECT 0, state, count(*) FROM jobs GROUP BY state;

CREATE FUNCTION job_counts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO job_counts (backend, state, n) VALUES (pg_backend_pid(), OLD.state, -1)
            ON CONFLICT (backend, state) DO UPDATE SET n = job_counts.n - 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO job_counts (backend, state, n) VALUES (pg_backend_pid(), NEW.state, 1)
            ON CONFLICT (backend, state) DO UPDATE SET n = job_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_counts_insert_delete AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION job_counts_kept();

CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION job_counts_kept();
