"""The postgres store: the outbox: deliveries, attempts, disabled subscriptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.models import Attempt, Delivery, SigningSecret, SubscriptionHealth
from gateway.store.postgres.base import PostgresBase, Tx
from gateway.store.protocol import OUTBOX_TOPIC, HealthUpdate, Pace
from gateway.store.rows import (
    HEALTH_COLUMNS,
    SECRET_COLUMNS,
    bucket_clock,
    health_values,
    refilled,
    row_to_attempt,
    row_to_delivery,
    row_to_health,
    row_to_secret,
    secret_values,
)

__all__ = ["PostgresDeliveries"]


async def _probes(tx: Tx, *, now: float, lease: float, limit: int) -> list[Any]:
    """One delivery per subscription whose open circuit may try again: it goes half-open. The
    update decides which replica sends the probe."""
    probes: list[Any] = []
    if limit <= 0:
        return probes
    due = await tx.conn.fetch(
        "SELECT name FROM subscription_health WHERE state != 'closed' AND retry_at <= $1 "
        "AND name NOT IN (SELECT name FROM disabled_subscriptions) ORDER BY retry_at LIMIT $2",
        now,
        limit,
    )
    for record in due:
        row = await tx.conn.fetchrow(
            "SELECT * FROM deliveries WHERE subscription = $1 AND state = 'pending' "
            "AND (lease_expires IS NULL OR lease_expires < $2) ORDER BY next_attempt_at LIMIT 1 "
            "FOR UPDATE SKIP LOCKED",
            record["name"],
            now,
        )
        if row is None:
            continue
        won = await tx.conn.fetchval(
            "UPDATE subscription_health SET state = 'half_open', retry_at = $1 "
            "WHERE name = $2 AND state != 'closed' AND retry_at <= $3 RETURNING name",
            now + lease,
            record["name"],
            now,
        )
        if won is not None:
            probes.append(row)
    return probes


async def _paced(tx: Tx, name: str, pace: Pace, *, now: float, limit: int) -> list[Any]:
    """A fifo or rate-limited subscription's claims. Its bucket row is locked first, so replicas
    claim for it one after the other: the head of a fifo queue is never passed over because another
    replica holds it, and the tokens are spent once."""
    if limit <= 0:
        return []
    conn = tx.conn
    await conn.execute(
        "INSERT INTO subscription_pace (name, tokens, at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        name,
        pace.burst,
        now,
    )
    bucket = await conn.fetchrow("SELECT tokens, at FROM subscription_pace WHERE name = $1 FOR UPDATE", name)
    held_back = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM disabled_subscriptions WHERE name = $1) OR "
        "EXISTS (SELECT 1 FROM subscription_health WHERE name = $1 AND state != 'closed')",
        name,
    )
    if held_back:
        return []
    if pace.fifo:
        head = await conn.fetchrow(
            "SELECT * FROM deliveries WHERE subscription = $1 AND state = 'pending' "
            "ORDER BY created_at, id LIMIT 1",
            name,
        )
        due = head is not None and head["next_attempt_at"] <= now
        in_flight = head is not None and head["lease_expires"] is not None and head["lease_expires"] >= now
        candidates = [head] if due and not in_flight else []
    else:
        candidates = list(
            await conn.fetch(
                "SELECT * FROM deliveries WHERE subscription = $1 AND state = 'pending' AND next_attempt_at <= $2 "
                "AND (lease_expires IS NULL OR lease_expires < $2) ORDER BY next_attempt_at LIMIT $3 "
                "FOR UPDATE SKIP LOCKED",
                name,
                now,
                limit,
            )
        )
    if pace.rate is None or not candidates:
        return candidates
    tokens = refilled(bucket["tokens"], bucket["at"], rate=pace.rate, burst=pace.burst, now=now)
    taken = candidates[: int(tokens)]
    await conn.execute(
        "UPDATE subscription_pace SET tokens = $2, at = $3 WHERE name = $1",
        name,
        tokens - len(taken),
        bucket_clock(bucket["at"], now),
    )
    return taken


class PostgresDeliveries(PostgresBase):
    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        async with self._transaction() as tx:
            await self._insert_deliveries(tx, deliveries)

    async def claim_due_deliveries(
        self, *, worker: str, now: float, lease: float, limit: int, paces: Mapping[str, Pace] | None = None
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        paced = dict(paces or {})
        async with self._transaction() as tx:
            rows = list(
                await tx.conn.fetch(
                    "SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 "
                    "AND (lease_expires IS NULL OR lease_expires < $1) "
                    "AND subscription NOT IN (SELECT name FROM disabled_subscriptions) "
                    "AND subscription NOT IN (SELECT name FROM subscription_health WHERE state != 'closed') "
                    "AND NOT subscription = ANY($3::text[]) "
                    "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                    now,
                    limit,
                    list(paced),
                )
            )
            rows += await _probes(tx, now=now, lease=lease, limit=limit - len(rows))
            for name, pace in paced.items():
                rows += await _paced(tx, name, pace, now=now, limit=limit - len(rows))
            await tx.conn.executemany(
                "UPDATE deliveries SET lease_owner = $1, lease_expires = $2 WHERE id = $3",
                [(worker, now + lease, r["id"]) for r in rows],
            )
        return [row_to_delivery(r) for r in rows]

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
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, status, error, response) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, number) DO UPDATE SET "
                "started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms, status = EXCLUDED.status, "
                "error = EXCLUDED.error, response = EXCLUDED.response",
                attempt.delivery_id,
                attempt.number,
                attempt.started_at,
                attempt.duration_ms,
                attempt.status,
                attempt.error,
                attempt.response,
            )
            await tx.conn.execute(
                "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), "
                "last_status = $4, last_error = $5, lease_owner = NULL, lease_expires = NULL, "
                "settled_at = CASE WHEN $6 THEN $7::double precision ELSE NULL END, "
                "body = CASE WHEN $6 AND erase_on_settle = 1 THEN NULL ELSE body END WHERE id = $8",
                state,
                attempt.number,
                next_attempt_at,
                attempt.status,
                attempt.error,
                settled,
                attempt.started_at,
                attempt.delivery_id,
            )
            if health is not None and subscription is not None:
                await self._settle_health(tx, subscription, health)
            if not settled:
                tx.touch(OUTBOX_TOPIC)

    async def _settle_health(self, tx: Tx, name: str, update: HealthUpdate) -> None:
        """The row is created if missing, then locked: replicas settling attempts to the same
        subscription change its health one after the other."""
        await tx.conn.execute(
            "INSERT INTO subscription_health (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name
        )
        row = await tx.conn.fetchrow("SELECT * FROM subscription_health WHERE name = $1 FOR UPDATE", name)
        settled = update(row_to_health(row))
        sets = ", ".join(f"{column} = ${i + 2}" for i, column in enumerate(HEALTH_COLUMNS[1:]))
        await tx.conn.execute(
            f"UPDATE subscription_health SET {sets} WHERE name = $1", *health_values(settled.health)
        )
        if settled.disable_reason is not None:
            await tx.conn.execute(
                "INSERT INTO disabled_subscriptions (name, reason, disabled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET reason = EXCLUDED.reason, disabled_at = EXCLUDED.disabled_at",
                name,
                settled.disable_reason,
                settled.health.last_attempt_at or 0.0,
            )
        await self._insert_deliveries(tx, settled.deliveries)

    async def signing_secrets(self, subscription: str | None = None) -> list[SigningSecret]:
        if subscription is None:
            rows = await self._fetch("SELECT * FROM signing_secrets ORDER BY created_at DESC, kid")
        else:
            rows = await self._fetch(
                "SELECT * FROM signing_secrets WHERE subscription = $1 ORDER BY created_at DESC, kid",
                subscription,
            )
        return [row_to_secret(r) for r in rows]

    async def add_signing_secret(self, secret: SigningSecret, *, retire_others_at: float | None) -> bool:
        marks = ", ".join(f"${i + 1}" for i in range(len(SECRET_COLUMNS)))
        async with self._transaction() as tx:
            added = await tx.conn.fetchval(
                f"INSERT INTO signing_secrets ({', '.join(SECRET_COLUMNS)}) VALUES ({marks}) "
                "ON CONFLICT (subscription, kid) DO NOTHING RETURNING kid",
                *secret_values(secret),
            )
            if added is not None and retire_others_at is not None:
                await tx.conn.execute(
                    "UPDATE signing_secrets SET retire_at = $1 WHERE subscription = $2 AND kind = $3 AND kid != $4 "
                    "AND (retire_at IS NULL OR retire_at > $1)",
                    retire_others_at,
                    secret.subscription,
                    secret.kind,
                    secret.kid,
                )
        return added is not None

    async def subscription_health(self) -> list[SubscriptionHealth]:
        rows = await self._fetch("SELECT * FROM subscription_health ORDER BY name")
        return [row_to_health(r) for r in rows]

    async def enable_subscription(self, name: str, *, deliveries: Sequence[Delivery] = ()) -> bool:
        async with self._transaction() as tx:
            status = await tx.conn.execute("DELETE FROM disabled_subscriptions WHERE name = $1", name)
            was = str(status).split()[-1] != "0"
            await tx.conn.execute(
                "UPDATE subscription_health SET state = 'closed', attempts = 0, failures = 0, "
                "opened_at = NULL, retry_at = NULL, failing_since = NULL WHERE name = $1",
                name,
            )
            if was:
                await self._insert_deliveries(tx, deliveries)
            tx.touch(OUTBOX_TOPIC)
        return was

    async def count_deliveries(self, *, state: str, due_before: float | None = None) -> int:
        if due_before is None:
            row = await self._fetchrow("SELECT count(*) FROM deliveries WHERE state = $1", state)
        else:
            row = await self._fetchrow(
                "SELECT count(*) FROM deliveries WHERE state = $1 AND next_attempt_at <= $2",
                state,
                due_before,
            )
        return int(row[0])

    async def next_delivery_due(self) -> float | None:
        row = await self._fetchrow("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")
        return float(row[0]) if row and row[0] is not None else None

    async def list_deliveries(
        self, *, job_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("job_id", job_id), ("state", state)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        params.append(limit)
        sql = "SELECT * FROM deliveries" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at DESC, id LIMIT ${len(params)}"
        return [row_to_delivery(r) for r in await self._fetch(sql, *params)]

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
        return row_to_delivery(row) if row else None

    async def list_attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        rows = await self._fetch(
            "SELECT * FROM delivery_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, number",
            list(delivery_ids),
        )
        return [row_to_attempt(r) for r in rows]

    async def retry_delivery(self, delivery_id: str, *, now: float) -> Delivery | None:
        async with self._transaction() as tx:
            row = await tx.conn.fetchrow(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, settled_at = NULL "
                "WHERE id = $2 AND state = 'failed' AND body IS NOT NULL RETURNING *",
                now,
                delivery_id,
            )
            if row is None:
                return None
            await tx.conn.execute("DELETE FROM disabled_subscriptions WHERE name = $1", row["subscription"])
            tx.touch(OUTBOX_TOPIC)
        return row_to_delivery(row)

    async def disable_subscription(self, name: str, *, reason: str, now: float) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "INSERT INTO disabled_subscriptions (name, reason, disabled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET reason = EXCLUDED.reason, disabled_at = EXCLUDED.disabled_at",
                name,
                reason,
                now,
            )

    async def disabled_subscriptions(self) -> set[str]:
        return {r["name"] for r in await self._fetch("SELECT name FROM disabled_subscriptions")}
