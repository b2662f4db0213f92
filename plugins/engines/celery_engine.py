"""Run jobs as Celery tasks on an existing cluster (Redis by default).

``send_task`` with the arguments as kwargs, the Celery task id equal to the hookgate job id, and
the job's id, token and gateway URL as task headers (``hookgate_job_id``, ``hookgate_job_token``,
``hookgate_url``; tasks read them with ``gateway.client.celery_job_info(self)``). Results are watched
from a worker thread, never with a blocking ``AsyncResult.get()`` on the event loop. Cancel is
``revoke(terminate=True)``. A job claimed again after a gateway restart finds its task by id and
resumes watching rather than sending it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from gateway.plugin import (
    ConfigError,
    Duration,
    EngineConfig,
    EngineContext,
    EngineUnavailable,
    Job,
    JobContext,
    Outcome,
    PluginOptions,
    Positive,
    ScriptVersion,
    content_hash,
    declare_options,
)

__all__ = ["CeleryEngine", "create"]

log = logging.getLogger("hookgate.engines.celery")
RUNNING_STATES = frozenset({"PENDING", "RECEIVED", "STARTED", "RETRY"})


class CeleryOptions(PluginOptions):
    """``[[engines]] type = "celery"``: a Celery cluster (``pip install "hookgate[celery]"``)."""

    broker: str = Field("redis://127.0.0.1:6379/0", description="the Celery broker URL")
    backend: str | None = Field(None, description="the result backend; default: the broker")
    tasks: dict[str, str] = Field(description="script path -> Celery task name")
    app: str | None = Field(None, description='"module:app", to use your app\'s configuration instead')
    queue: str | None = None
    routing_key: str | None = None
    concurrency: Positive = Field(1000, description="tasks watched at once")
    poll_interval: Duration = Field(0.2, description="how often results are looked at")
    transport_options: dict[str, Any] = Field(default_factory=dict)


@declare_options(CeleryOptions)
def create(config: EngineConfig) -> CeleryEngine:
    try:
        importlib.import_module("celery")
    except ImportError:
        raise ConfigError(
            f'{config.path}.type: the "celery" engine needs Celery: pip install "hookgate[celery]"'
        ) from None
    options = CeleryOptions.of(config)
    tasks = {k.strip("/"): v for k, v in options.tasks.items()}
    return CeleryEngine(
        config.name, options.model_copy(update={"tasks": tasks, "backend": options.backend or options.broker})
    )


class CeleryEngine:
    def __init__(self, name: str, options: CeleryOptions) -> None:
        self.name = name
        self.options = options
        self._app: Any = None
        self._context: EngineContext | None = None
        self._watched: set[str] = set()
        self._suspended: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None

    def scripts(self) -> Mapping[str, str]:
        return dict(self.options.tasks)

    def resolve(self, path: str) -> ScriptVersion | None:
        task = self.options.tasks.get(path)
        if task is None:
            return None
        marker = f"{self.name} celery {task}".encode()
        return ScriptVersion(
            hash=content_hash(marker), engine=self.name, path=path, filename=task, content=marker
        )

    async def start(self, context: EngineContext) -> None:
        self._context = context
        self._app = await asyncio.to_thread(self._make_app)
        self._watcher = asyncio.create_task(self._watch(), name=f"celery:{self.name}")

    def _make_app(self) -> Any:
        if self.options.app:
            module, _, attribute = self.options.app.partition(":")
            return getattr(importlib.import_module(module), attribute or "app")
        from celery import Celery

        app = Celery(f"hookgate-{self.name}", broker=self.options.broker, backend=self.options.backend)
        app.conf.broker_transport_options = dict(self.options.transport_options)
        app.conf.broker_connection_retry_on_startup = True
        return app

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._app is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._app.close)

    def free_slots(self) -> int:
        return self.options.concurrency - len(self._watched) + len(self._suspended & self._watched)

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        (self._suspended.add if suspended else self._suspended.discard)(job_id)

    def live_logs(self, job_id: str) -> str | None:
        return None

    async def submit(self, job: Job, context: JobContext) -> str:
        task = self.options.tasks[job.script]
        try:
            await asyncio.to_thread(self._send, job, context, task)
        except Exception as exc:  # the broker is down: the job waits in hookgate's queue
            raise EngineUnavailable(f"the Celery broker is unreachable: {exc}") from exc
        self._watched.add(job.id)
        return job.id

    def _send(self, job: Job, context: JobContext, task: str) -> None:
        from celery.result import AsyncResult

        if AsyncResult(job.id, app=self._app).state not in ("PENDING",):
            return  # sent before a restart: keep watching it rather than running it twice
        headers = {"hookgate_job_id": job.id, "hookgate_url": context.gateway_url}
        token = context.token()
        if token:
            headers["hookgate_job_token"] = token
        self._app.send_task(
            task,
            kwargs=job.args or {},
            task_id=job.id,
            headers=headers,
            queue=self.options.queue,
            routing_key=self.options.routing_key,
        )

    async def cancel(self, job_id: str) -> None:
        self._watched.discard(job_id)
        try:
            await asyncio.to_thread(self._app.control.revoke, job_id, terminate=True)
        except Exception:
            log.exception("revoking Celery task %s failed", job_id)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.options.poll_interval)  # the result backend is polled, off the loop
            if not self._watched:
                continue
            try:
                outcomes = await asyncio.to_thread(self._finished, list(self._watched))
            except Exception:
                log.exception("reading Celery results failed")
                continue
            for outcome in outcomes:
                if outcome.job_id in self._watched:
                    self._watched.discard(outcome.job_id)
                    self._suspended.discard(outcome.job_id)
                    if self._context is not None:
                        await self._context.report(outcome)

    def _finished(self, job_ids: list[str]) -> list[Outcome]:
        from celery.result import AsyncResult

        outcomes = []
        for job_id in job_ids:
            result = AsyncResult(job_id, app=self._app)
            state = result.state
            if state in RUNNING_STATES:
                continue
            if state == "SUCCESS":
                outcomes.append(Outcome(job_id, "succeeded", result=result.result))
            elif state == "REVOKED":
                outcomes.append(
                    Outcome(job_id, "failed", error={"name": "Revoked", "message": "the task was revoked"})
                )
            else:
                exc = result.result
                error = {
                    "name": type(exc).__name__ if isinstance(exc, BaseException) else state,
                    "message": str(exc),
                    "stack": result.traceback or "",
                    "celery_state": state,
                }
                outcomes.append(Outcome(job_id, "failed", error=error))
        return outcomes
