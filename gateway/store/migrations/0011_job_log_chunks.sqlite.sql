-- What running jobs print, in the chunks the dispatcher writes every half second, so that a
-- browser on any replica follows a job running on another. seq grows across all jobs: a stream
-- resumes after the last chunk it sent. Chunks live only while their job runs: its end's logs are
-- kept on the job, and the trigger deletes the chunks when it stops running or is deleted.
CREATE TABLE job_log_chunks (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL,
    text    TEXT NOT NULL,
    size    INTEGER NOT NULL
);
CREATE INDEX job_log_chunks_job ON job_log_chunks (job_id, seq);

CREATE TRIGGER job_log_chunks_stop AFTER UPDATE OF state ON jobs
WHEN OLD.state IS NOT NEW.state AND NEW.state NOT IN ('running', 'suspended')
BEGIN
    DELETE FROM job_log_chunks WHERE job_id = NEW.id;
END;

CREATE TRIGGER job_log_chunks_delete AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_log_chunks WHERE job_id = OLD.id;
END;
