"""A fresh PostgreSQL schema for one test, dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
from conftest import require_service

from gateway.store.postgres import PostgresStore

DSN = os.environ.get("HOOKGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _reachable() -> bool:
    try:
        conn = await asyncpg.connect(DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    require_service(
        await _reachable(),
        f"no PostgreSQL at {DSN}: make test starts the machine's cluster (HOOKGATE_TEST_PG_DSN to use another)",
        required_by_env="HOOKGATE_REQUIRE_POSTGRES",
    )
    schema = f"hg_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        await _drop(schema)


async def _drop(schema: str) -> None:
    """Drop the schema, again if PostgreSQL chose the drop to end a deadlock: a gateway still
    running on the schema (stopped after this, by a fixture set up before it) may hold a lock on a
    table and ask for another one the drop holds."""
    conn = await asyncpg.connect(DSN)
    try:
        for attempt in range(5):
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def postgres_store() -> AsyncIterator[PostgresStore]:
    async with fresh_schema() as schema:
        store = PostgresStore(DSN, schema=schema)
        await store.open()
        try:
            yield store
        finally:
            await store.close()
