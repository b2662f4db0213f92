-- The search index of new jobs is written by the store once per transaction, for every job the
-- transaction inserted (gateway/store/sqlite/search_index.py), instead of by this trigger once per
-- job: from a trigger, FTS5 cost more than the rest of the insert. The triggers that take a job
-- out of the index (deleted, or its arguments erased) stay.
DROP TRIGGER jobs_args_text_insert;
