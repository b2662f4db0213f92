"""The sqlite store: the outbox: deliveries, attempts, disabled subscriptions."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from gateway.models import Attempt, Delivery, SigningSecret, SubscriptionHealth
from gateway.store.group_commit import Batch
from gateway.store.protocol import OUTBOX_TOPIC, HealthUpdate, Pace
from gateway.store.rows import (
    DELIVERY_COLUMNS,
    HEALTH_COLUMNS,
    SECRET_COLUMNS,
    bucket_clock,
    delivery_values,
    health_values,
    refilled,
    row_to_attempt,
    row_to_delivery,
    row_to_health,
    row_to_secret,
    secret_values,
)
from gateway.store.sqlite.base import SQLiteBase

__all__ = ["INSERT_DELIVERY", "SQLiteDeliveries", "insert_deliveries"]

INSERT_DELIVERY = (
    f"INSERT INTO deliveries ({DELIVERY_COLUMNS}, state, attempts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"
)


def insert_deliveries(conn: sqlite3.Connection, batch: Batch, deliveries: Sequence[Delivery]) -> None:
    if deliveries:
        conn.executemany(INSERT_DELIVERY, [delivery_values(d) for d in deliveries])
        batch.touch(OUTBOX_TOPIC)


def _probes(conn: sqlite3.Connection, *, now: float, lease: float, limit: int) -> list[sqlite3.Row]:
    """One delivery per subscription whose open circuit may try again: it goes half-open."""
    probes: list[sqlite3.Row] = []
    due = conn.execute(
        "SELECT name FROM subscription_health WHERE state != 'closed' AND retry_at <= ? "
        "AND name NOT IN (SELECT name FROM disabled_subscriptions) ORDER BY retry_at",
        (now,),
    ).fetchall()
    for (name,) in due[: max(limit, 0)]:
        row = conn.execute(
            "SELECT * FROM deliveries WHERE subscription = ? AND state = 'pending' "
            "AND (lease_expires IS NULL OR lease_expires < ?) ORDER BY next_attempt_at LIMIT 1",
            (name, now),
        ).fetchone()
        if row is None:
            continue  # nothing waits: it stays open until there is something to probe with
        conn.execute(
            "UPDATE subscription_health SET state = 'half_open', retry_at = ? WHERE name = ?",
            (now + lease, name),
        )
        probes.append(row)
    return probes


def _paced(conn: sqlite3.Connection, name: str, pace: Pace, *, now: float, limit: int) -> list[sqlite3.Row]:
    """A fifo or rate-limited subscription's claims (SQLite has one writer: no lock to take)."""
    if limit <= 0 or _held_back(conn, name):
        return []
    if pace.fifo:
        head = conn.execute(
            "SELECT * FROM deliveries WHERE subscription = ? AND state = 'pending' "
            "ORDER BY created_at, id LIMIT 1",
            (name,),
        ).fetchone()
        due = head is not None and head["next_attempt_at"] <= now
        in_flight = head is not None and head["lease_expires"] is not None and head["lease_expires"] >= now
        candidates = [head] if due and not in_flight else []
    else:
        candidates = conn.execute(
            "SELECT * FROM deliveries WHERE subscription = ? AND state = 'pending' AND next_attempt_at <= ? "
            "AND (lease_expires IS NULL OR lease_expires < ?) ORDER BY next_attempt_at LIMIT ?",
            (name, now, now, limit),
        ).fetchall()
    if pace.rate is None or not candidates:
        return candidates
    bucket = conn.execute("SELECT tokens, at FROM subscription_pace WHERE name = ?", (name,)).fetchone()
    tokens = refilled(*(bucket or (None, None)), rate=pace.rate, burst=pace.burst, now=now)
    taken = candidates[: int(tokens)]
    conn.execute(
        "INSERT OR REPLACE INTO subscription_pace (name, tokens, at) VALUES (?, ?, ?)",
        (name, tokens - len(taken), bucket_clock(bucket["at"] if bucket else None, now)),
    )
    return taken


def _held_back(conn: sqlite3.Connection, name: str) -> bool:
    """Disabled, or its circuit is not closed (its probe is ``_probes``'s)."""
    return (
        conn.execute(
            "SELECT 1 FROM disabled_subscriptions WHERE name = ? UNION ALL "
            "SELECT 1 FROM subscription_health WHERE name = ? AND state != 'closed'",
            (name, name),
        ).fetchone()
        is not None
    )


def _settle_health(conn: sqlite3.Connection, batch: Batch, name: str, update: HealthUpdate) -> None:
    row = conn.execute("SELECT * FROM subscription_health WHERE name = ?", (name,)).fetchone()
    settled = update(row_to_health(row) if row is not None else SubscriptionHealth(name=name))
    marks = ", ".join("?" for _ in HEALTH_COLUMNS)
    conn.execute(
        f"INSERT OR REPLACE INTO subscription_health ({', '.join(HEALTH_COLUMNS)}) VALUES ({marks})",
        health_values(settled.health),
    )
    if settled.disable_reason is not None:
        conn.execute(
            "INSERT OR REPLACE INTO disabled_subscriptions (name, reason, disabled_at) VALUES (?, ?, ?)",
            (name, settled.disable_reason, settled.health.last_attempt_at or 0.0),
        )
    insert_deliveries(conn, batch, settled.deliveries)


class SQLiteDeliveries(SQLiteBase):
    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        await self._grouped().write(lambda conn, batch: insert_deliveries(conn, batch, deliveries))

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int, paces: Mapping[str, Pace] | None = None
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        paced = dict(paces or {})
        skip = f"AND subscription NOT IN ({', '.join('?' for _ in paced)}) " if paced else ""

        def claim(conn: sqlite3.Connection, batch: Batch) -> list[Delivery]:
            rows = conn.execute(
                # Without statistics the planner prefers (state, created_at) and sorts every
                # pending delivery on each claim; the due index yields them in order.
                "SELECT * FROM deliveries INDEXED BY deliveries_due "
                "WHERE state = 'pending' AND next_attempt_at <= ? "
                "AND (lease_expires IS NULL OR lease_expires < ?) "
                "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                "AND subscription NOT IN (SELECT name FROM subscription_health WHERE state != 'closed') "
                f"{skip}ORDER BY next_attempt_at LIMIT ?",
                (now, now, *paced, limit),
            ).fetchall()
            rows += _probes(conn, now=now, lease=lease, limit=limit - len(rows))
            for name, pace in paced.items():
                rows += _paced(conn, name, pace, now=now, limit=limit - len(rows))
            conn.executemany(
                "UPDATE deliveries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                [(worker, now + lease, row["id"]) for row in rows],
            )
            return [row_to_delivery(row) for row in rows]

        return await self._grouped().write(claim)

    async def settle_delivery(
        self,
        attempt: Attempt,
        *,
        state: str,
        next_attempt_at: float | None,
        subscription: str | None = None,
        health: HealthUpdate | None = None,
    ) -> None:
        settled = state != "pending"

        def settle(conn: sqlite3.Connection, batch: Batch) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO delivery_attempts (delivery_id, number, started_at, duration_ms, "
                "status, error, response) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.delivery_id,
                    attempt.number,
                    attempt.started_at,
                    attempt.duration_ms,
                    attempt.status,
                    attempt.error,
                    attempt.response,
                ),
            )
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?, last_error = ?, "
                "lease_owner = NULL, lease_expires = NULL, settled_at = CASE WHEN ? THEN ? ELSE NULL END, "
                "body = CASE WHEN ? AND erase_on_settle THEN NULL ELSE body END WHERE id = ?",
                (
                    state,
                    attempt.number,
                    next_attempt_at,
                    attempt.status,
                    attempt.error,
                    settled,
                    attempt.started_at,
                    settled,
                    attempt.delivery_id,
                ),
            )
            if health is not None and subscription is not None:
                _settle_health(conn, batch, subscription, health)
            if not settled:
                batch.touch(OUTBOX_TOPIC)

        await self._grouped().write(settle)

    async def signing_secrets(self, subscription: str | None = None) -> list[SigningSecret]:
        sql = "SELECT * FROM signing_secrets"
        params: tuple[str, ...] = ()
        if subscription is not None:
            sql += " WHERE subscription = ?"
            params = (subscription,)
        async with self._db().execute(sql + " ORDER BY created_at DESC, kid", params) as cur:
            return [row_to_secret(row) for row in await cur.fetchall()]

    async def add_signing_secret(self, secret: SigningSecret, *, retire_others_at: float | None) -> bool:
        def add(conn: sqlite3.Connection, batch: Batch) -> bool:
            marks = ", ".join("?" for _ in SECRET_COLUMNS)
            added = (
                conn.execute(
                    f"INSERT OR IGNORE INTO signing_secrets ({', '.join(SECRET_COLUMNS)}) VALUES ({marks})",
                    secret_values(secret),
                ).rowcount
                > 0
            )
            if added and retire_others_at is not None:
                conn.execute(
                    "UPDATE signing_secrets SET retire_at = ? WHERE subscription = ? AND kind = ? "
                    "AND kid != ? AND (retire_at IS NULL OR retire_at > ?)",
                    (retire_others_at, secret.subscription, secret.kind, secret.kid, retire_others_at),
                )
            return added

        return await self._grouped().write(add)

    async def subscription_health(self) -> list[SubscriptionHealth]:
        async with self._db().execute("SELECT * FROM subscription_health ORDER BY name") as cur:
            return [row_to_health(row) for row in await cur.fetchall()]

    async def enable_subscription(self, name: str, *, deliveries: Sequence[Delivery] = ()) -> bool:
        def enable(conn: sqlite3.Connection, batch: Batch) -> bool:
            was = conn.execute("DELETE FROM disabled_subscriptions WHERE name = ?", (name,)).rowcount > 0
            conn.execute(
                "UPDATE subscription_health SET state = 'closed', attempts = 0, failures = 0, "
                "opened_at = NULL, retry_at = NULL, failing_since = NULL WHERE name = ?",
                (name,),
            )
            if was:
                insert_deliveries(conn, batch, deliveries)
            batch.touch(OUTBOX_TOPIC)
            return was

        return await self._grouped().write(enable)

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        sql = "SELECT COUNT(*) FROM deliveries WHERE state = ?"
        params: list[object] = [state]
        if due_before is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_before)
        async with self._db().execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def next_delivery_due(self) -> float | None:
        sql = "SELECT MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_due WHERE state = 'pending'"
        async with self._db().execute(sql) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[object] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        sql = "SELECT * FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        async with self._db().execute(sql, (*params, limit)) as cur:
            return [row_to_delivery(row) for row in await cur.fetchall()]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        async with self._db().execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)) as cur:
            row = await cur.fetchone()
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        marks = ", ".join("?" for _ in delivery_ids)
        sql = f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({marks}) ORDER BY delivery_id, number"
        async with self._db().execute(sql, tuple(delivery_ids)) as cur:
            rows = await cur.fetchall()
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, settled_at = NULL "
                "WHERE id = ? AND state = 'failed' AND body IS NOT NULL",
                (now, delivery_id),
            )
            if cur.rowcount == 0:
                return None
            await db.execute(
                "DELETE FROM disabled_subscriptions "
                "WHERE name = (SELECT subscription FROM deliveries WHERE id = ?)",
                (delivery_id,),
            )
            self._touch(OUTBOX_TOPIC)
        return await self.get_delivery(delivery_id)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO disabled_subscriptions (name, reason, disabled_at) VALUES (?, ?, ?)",
                (name, reason, now),
            )

    async def disabled_subscriptions(self) -> set[str]:
        async with self._db().execute("SELECT name FROM disabled_subscriptions") as cur:
            return {row[0] for row in await cur.fetchall()}
