"""A complete third-party engine, as docs/engines.md walks through it: it answers in capitals.

Registered through the ``hookgate.engines`` entry point by the ``.dist-info`` folder beside this
file, exactly as an installed package would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.config import EngineConfig, Table
from gateway.engine import EngineContext, JobContext, Outcome, content_hash
from gateway.models import Job, ScriptVersion


def create(config: EngineConfig) -> ShoutEngine:
    options = Table.of(config)
    prefix = options.get("prefix", str, "shout", required=False)
    options.raise_problems()  # unknown options and bad values fail at start-up, with their path
    return ShoutEngine(config.name, prefix)


class ShoutEngine:
    def __init__(self, name: str, prefix: str) -> None:
        self.name, self.prefix = name, prefix
        self._context: EngineContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def scripts(self) -> Mapping[str, str]:
        return {f"{self.prefix}/say": "says its text in capitals"}

    def resolve(self, path: str) -> ScriptVersion | None:
        if path not in self.scripts():
            return None
        return ScriptVersion(
            hash=content_hash(path.encode()), engine=self.name, path=path, filename=path, content=b""
        )

    async def start(self, context: EngineContext) -> None:
        self._context = context

    async def submit(self, job: Job, context: JobContext) -> str:
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job.id

    async def _run(self, job: Job) -> None:
        text = str((job.args or {}).get("text", ""))
        assert self._context is not None
        await self._context.report(Outcome(job.id, "succeeded", result=text.upper()))

    async def cancel(self, job_id: str) -> None:
        return None  # nothing here runs long enough to stop

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    def free_slots(self) -> int:
        return 100 - len(self._tasks)

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        return None

    def live_logs(self, job_id: str) -> str | None:
        return None
