"""Drives operations: claims those nobody holds, runs their batches, lets a cancel stop them.

Every batch is one store transaction with the operation's progress, so a crash loses at most the
batch in flight (which then never happened) and the next runner starts at the cursor. A runner
holds an operation under a lease it renews with each batch; one that died lets its operations go
when the lease runs out, and another replica (or the same one, restarted) claims them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from gateway.models import Operation
from gateway.store import OPERATIONS_TOPIC, Store

__all__ = ["BATCH", "OperationRunner"]

log = logging.getLogger("hookgate.operations")

BATCH = 500
"""Records per batch: one transaction each, short enough that a cancel takes effect soon."""
IDLE_CHECK = 5.0
"""Without a notification, how often to look for operations a dead replica let go."""

Step = Callable[..., Awaitable[Operation | None]]


class OperationRunner:
    def __init__(
        self,
        *,
        store: Store,
        lease: float = 30.0,
        batch: int = BATCH,
        pause: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``pause`` rests between batches ([operations] pause): room for the live traffic."""
        self.store = store
        self.lease = lease
        self.batch = batch
        self.pause = pause
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._steps: dict[str, Step] = {"retry_deliveries": store.retry_deliveries_step}
        self._driving: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._claim_forever())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._driving.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _claim_forever(self) -> None:
        with self.store.listen(OPERATIONS_TOPIC) as changed:
            while True:
                changed.clear()
                try:
                    await self.claim()
                except Exception:
                    log.exception("claiming operations failed")
                await changed.wait_for(IDLE_CHECK)

    async def claim(self) -> None:
        """Take every operation nobody holds and drive each in a task of its own."""
        claimed = await self.store.claim_operations(worker=self.worker, now=self.clock(), lease=self.lease)
        for operation in claimed:
            if operation.id not in self._driving:
                self._driving[operation.id] = asyncio.create_task(self._drive(operation))

    async def _drive(self, operation: Operation) -> None:
        try:
            await self._run(operation)
        finally:
            self._driving.pop(operation.id, None)

    async def _run(self, operation: Operation) -> None:
        step = self._steps.get(operation.kind)
        if step is None:
            log.error(
                "operation %s is of an unknown kind %r: left for one that knows it",
                operation.id,
                operation.kind,
            )
            return
        current: Operation | None = operation
        while current is not None and not current.finished:
            try:
                current = await step(
                    current.id, worker=self.worker, limit=self.batch, now=self.clock(), lease=self.lease
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a batch of operation %s failed; retrying it", operation.id)
                await asyncio.sleep(1.0)  # a period: the store may be briefly unavailable
            await asyncio.sleep(self.pause)  # other work (requests, other operations) between batches
        if current is not None:
            log.info(
                "operation %s %s: %d of %d done, %d failed",
                current.id,
                current.state,
                current.done,
                current.matched,
                current.failed,
            )
