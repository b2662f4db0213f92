-- Search in the arguments (the dashboard's search box): a full-text index of the words of
-- jobs.args, so that a search is an index lookup, never a scan. The words are the runs of letters
-- and digits, as SQLite's FTS5 (unicode61) sees them: the same search finds the same runs on both
-- stores. Redacted values are stored as "***", so they are never found; jobs erased after use are
-- not searchable, as on SQLite.
CREATE INDEX jobs_args_text ON jobs USING gin (
    to_tsvector('simple', regexp_replace(coalesce(args, ''), '[^[:alnum:]]+', ' ', 'g'))
) WHERE (options::jsonb ->> 'delete_after_use') IS DISTINCT FROM 'true';
