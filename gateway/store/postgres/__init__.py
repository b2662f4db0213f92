"""The shared store: PostgreSQL, for several gateway replicas (and processes) on one database.

Same ``Store`` protocol and the same records as SQLite, with what sharing needs: claims use
``FOR UPDATE SKIP LOCKED`` so each job and delivery goes to one replica at a time; concurrency keys
are counted under a per-key advisory lock; wake-ups travel as ``NOTIFY hookgate`` inside the
committing transaction and reach every replica's listener (waiters also re-check every few seconds,
so a missed notification delays, never loses); migrations run once under an advisory lock when
several replicas start together.

One module per concern, each a mixin over ``base.PostgresBase`` (the pool, transactions,
migrations and the listener), so that the SQL a concern runs is read in one place. It needs the
``asyncpg`` driver: ``pip install 'hookgate[postgres]'``.
"""

from __future__ import annotations

from gateway.store.postgres.callbacks import PostgresCallbacks
from gateway.store.postgres.deliveries import PostgresDeliveries
from gateway.store.postgres.flows import PostgresFlows
from gateway.store.postgres.jobs import PostgresJobs
from gateway.store.postgres.operations import PostgresOperations
from gateway.store.postgres.route_records import PostgresRouteRecords
from gateway.store.postgres.sessions import PostgresSessions
from gateway.store.postgres.tokens import PostgresTokens

__all__ = ["PostgresStore"]


class PostgresStore(
    PostgresJobs,
    PostgresFlows,
    PostgresCallbacks,
    PostgresDeliveries,
    PostgresOperations,
    PostgresRouteRecords,
    PostgresTokens,
    PostgresSessions,
):
    """Every concern of the ``Store`` Protocol on one PostgreSQL database, shared by every replica."""
