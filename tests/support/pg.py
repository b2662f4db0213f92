"""A fresh PostgreSQL schema for one test, dropped afterwards."""

from __future__ import annotations

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
        conn = await asyncpg.connect(DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
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
