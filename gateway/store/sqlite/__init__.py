"""The embedded store: one SQLite file in WAL mode, owned by one gateway process.

Writes go through one connection, one transaction at a time (``BEGIN IMMEDIATE`` under an asyncio
lock), so a compare-and-set is a plain ``UPDATE ... WHERE state IN (...)``; reads use a second
connection and see only committed data. A lock file beside the database makes a second process on
the same data directory refuse to start instead of corrupting the first one's leases.

One module per concern, each a mixin over ``base.SQLiteBase`` (the connections, transactions,
migrations and wake-ups), so that the SQL a concern runs is read in one place.
"""

from __future__ import annotations

from gateway.store.sqlite.base import CHECKPOINT_INTERVAL, WAL_LIMIT, WAL_SIZE_CHECK, sqlite_path_from_url
from gateway.store.sqlite.callbacks import SQLiteCallbacks
from gateway.store.sqlite.deliveries import SQLiteDeliveries
from gateway.store.sqlite.flows import SQLiteFlows
from gateway.store.sqlite.jobs import RESTART_ERROR, SQLiteJobs
from gateway.store.sqlite.operations import SQLiteOperations
from gateway.store.sqlite.route_records import SQLiteRouteRecords
from gateway.store.sqlite.sessions import SQLiteSessions
from gateway.store.sqlite.tokens import SQLiteTokens

__all__ = [
    "CHECKPOINT_INTERVAL",
    "RESTART_ERROR",
    "WAL_LIMIT",
    "WAL_SIZE_CHECK",
    "SQLiteStore",
    "sqlite_path_from_url",
]


class SQLiteStore(
    SQLiteJobs,
    SQLiteFlows,
    SQLiteCallbacks,
    SQLiteDeliveries,
    SQLiteOperations,
    SQLiteRouteRecords,
    SQLiteTokens,
    SQLiteSessions,
):
    """Every concern of the ``Store`` Protocol on one SQLite file."""
