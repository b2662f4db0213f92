-- Search in the arguments (the dashboard's search box): an FTS5 index of the words of jobs.args
-- (runs of letters and digits, any case), kept by triggers, so that a search is an index lookup,
-- never a scan. Words, not trigrams: a trigram index of a 2 KB webhook body writes some 2,000
-- terms per job, which the write path cannot afford. Redacted values are stored as "***", so they
-- are never found. Jobs erased after use are never indexed: an FTS index keeps old terms until it
-- merges, and theirs must not linger.
CREATE VIRTUAL TABLE jobs_args_text USING fts5(
    args, content = 'jobs', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO jobs_args_text (rowid, args)
    SELECT seq, args FROM jobs
    WHERE args IS NOT NULL AND json_extract(options, '$.delete_after_use') IS NOT 1;

CREATE TRIGGER jobs_args_text_insert AFTER INSERT ON jobs
WHEN NEW.args IS NOT NULL AND json_extract(NEW.options, '$.delete_after_use') IS NOT 1
BEGIN
    INSERT INTO jobs_args_text (rowid, args) VALUES (NEW.seq, NEW.args);
END;

CREATE TRIGGER jobs_args_text_delete AFTER DELETE ON jobs
WHEN OLD.args IS NOT NULL AND json_extract(OLD.options, '$.delete_after_use') IS NOT 1
BEGIN
    INSERT INTO jobs_args_text (jobs_args_text, rowid, args) VALUES ('delete', OLD.seq, OLD.args);
END;

CREATE TRIGGER jobs_args_text_update AFTER UPDATE OF args ON jobs
WHEN json_extract(NEW.options, '$.delete_after_use') IS NOT 1
BEGIN
    INSERT INTO jobs_args_text (jobs_args_text, rowid, args)
        SELECT 'delete', OLD.seq, OLD.args WHERE OLD.args IS NOT NULL;
    INSERT INTO jobs_args_text (rowid, args) SELECT NEW.seq, NEW.args WHERE NEW.args IS NOT NULL;
END;
