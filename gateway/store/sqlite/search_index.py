"""The search index of new jobs (``jobs_args_text``, FTS5), written once per transaction.

A trigger indexed each job as it was inserted (migration 0012), and an FTS5 table written from a
trigger, one statement per job inside a transaction of many, cost more than the rest of the insert
put together: about 45 µs a job on this machine's disk against 10 µs for the same text indexed by
one statement for the transaction's jobs. So migration 0019 dropped that trigger, and every write
transaction of the store ends with one statement that indexes the jobs it inserted (a job
inserted is in the index when its insert commits, as before): the transaction notes the highest
job ``seq`` when it begins, and before its commit indexes every job above it. Jobs only ever get
higher numbers (``AUTOINCREMENT``), and no transaction deletes a job or rewrites its arguments in
the one that inserted it (retention and erasure are transactions of their own), so the triggers
that take a job out of the index never meet a job not yet in it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["index_new_jobs"]

_HIGHEST = "SELECT COALESCE(MAX(seq), 0) FROM jobs"
# As migration 0012 indexed them: jobs with arguments, except those erased after use.
_INDEX_ABOVE = (
    "INSERT INTO jobs_args_text (rowid, args) SELECT seq, args FROM jobs "
    "WHERE seq > ? AND args IS NOT NULL AND json_extract(options, '$.delete_after_use') IS NOT 1"
)


def index_new_jobs(conn: sqlite3.Connection) -> Callable[[sqlite3.Connection], None]:
    """Called once a write transaction has begun; what it returns is called just before its commit."""
    (highest,) = conn.execute(_HIGHEST).fetchone()

    def index(conn: sqlite3.Connection) -> None:
        conn.execute(_INDEX_ABOVE, (highest,))

    return index
