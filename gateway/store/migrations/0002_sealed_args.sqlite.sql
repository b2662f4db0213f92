-- Real values of redacted arguments, encrypted; dropped when the job finishes.
ALTER TABLE jobs ADD COLUMN sealed_args TEXT;
