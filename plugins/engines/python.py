"""The in-process engine: a script path maps to a ``module:function`` called inside the gateway.

For embedding hookgate in an application and for tests: no process start, so a job costs a function
call. Coroutine functions run on the event loop, plain functions in a thread pool. The running job
is visible to the function through ``gateway.client.current_job``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import Field

from gateway.plugin import (
    ConfigError,
    Duration,
    EngineConfig,
    EngineContext,
    Job,
    JobContext,
    JobInfo,
    Outcome,
    PluginOptions,
    Positive,
    ScriptVersion,
    Step,
    content_hash,
    current_job,
    declare_options,
)

from ._pyrunner import EVENT_KEY, describe_error, preprocessed, preprocessor_of, select_arguments

__all__ = ["PythonEngine", "create"]


class PythonOptions(PluginOptions):
    """``[[engines]] type = "python"``: functions called in the gateway's own process."""

    functions: dict[str, str] = Field(description='script path -> "module:function"')
    concurrency: Positive = Field(100, description="calls at once")
    default_timeout: Duration = Field(3600.0, description="run time when the route sets none")


@declare_options(PythonOptions)
def create(config: EngineConfig) -> PythonEngine:
    options = PythonOptions.of(config)
    functions: dict[str, Callable[..., Any]] = {}
    problems = []
    for path, target in options.functions.items():
        try:
            functions[path.strip("/")] = _import(target)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            problems.append(f'{config.path}.functions.{path}: cannot import "{target}": {exc}')
    if problems:
        raise ConfigError(problems)
    return PythonEngine(
        config.name,
        functions,
        dict(options.functions),
        concurrency=options.concurrency,
        default_timeout=options.default_timeout,
    )


async def _preprocessed(func: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """``main``'s arguments: what the module's ``preprocessor`` makes of the request, when it has one."""
    preprocessor = preprocessor_of(func) if EVENT_KEY in args else None
    if preprocessor is None:
        return args
    if inspect.iscoroutinefunction(preprocessor):
        return preprocessed(await preprocessor(args[EVENT_KEY]))
    return preprocessed(await asyncio.to_thread(preprocessor, args[EVENT_KEY]))


def _import(target: object) -> Callable[..., Any]:
    if not isinstance(target, str) or ":" not in target:
        raise ValueError('expected "module:function"')
    module_name, _, attribute = target.partition(":")
    func = importlib.import_module(module_name)
    for part in attribute.split("."):
        func = getattr(func, part)
    if not callable(func):
        raise TypeError(f"{target} is not callable")
    return func


class PythonEngine:
    def __init__(
        self,
        name: str,
        functions: Mapping[str, Callable[..., Any]],
        targets: Mapping[str, str],
        *,
        concurrency: int,
        default_timeout: float,
    ) -> None:
        self.name = name
        self._functions = dict(functions)
        self._versions = {
            path: ScriptVersion(
                hash=content_hash(target.encode()),
                engine=name,
                path=path,
                filename=target,
                content=target.encode(),
            )
            for path, target in targets.items()
        }
        self._concurrency = concurrency
        self._default_timeout = default_timeout
        self._context: EngineContext | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._suspended: set[str] = set()
        self._step_tasks: set[asyncio.Task[None]] = set()
        self._loop_thread = 0

    def scripts(self) -> Mapping[str, str]:
        return {path: version.filename for path, version in self._versions.items()}

    def resolve(self, path: str) -> ScriptVersion | None:
        return self._versions.get(path)

    def defines_preprocessor(self, version: ScriptVersion) -> bool:
        func = self._functions.get(version.path)
        return func is not None and preprocessor_of(func) is not None

    async def start(self, context: EngineContext) -> None:
        self._context = context
        self._loop_thread = threading.get_ident()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def free_slots(self) -> int:
        return self._concurrency - len(self._tasks) + len(self._suspended & self._tasks.keys())

    def _step_reporter(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        """Steps may be reported from the loop (async functions) or a worker thread (sync ones)."""
        loop = asyncio.get_running_loop()

        def report(message: dict[str, Any]) -> None:
            if self._context is None or self._context.report_step is None:
                return
            step = Step(
                rule=str(message.get("rule") or "step"),
                status=str(message.get("status") or "completed"),
                message=message.get("message"),
                outputs=message.get("outputs"),
            )
            coroutine = self._context.report_step(job_id, step)
            if threading.get_ident() == self._loop_thread:
                task = loop.create_task(coroutine)
                self._step_tasks.add(task)
                task.add_done_callback(self._step_tasks.discard)
            else:
                asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

        return report

    def live_logs(self, job_id: str) -> str | None:
        return None  # functions in this process have no output stream of their own

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        if suspended:
            self._suspended.add(job_id)
        else:
            self._suspended.discard(job_id)

    async def submit(self, job: Job, context: JobContext) -> str:
        func = self._functions.get(job.script)
        if func is None:
            raise LookupError(f"no function for script '{job.script}'")
        task = asyncio.create_task(self._run(job, func, context))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return job.id

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()  # a thread-pool call cannot be interrupted; its outcome is dropped

    async def _run(self, job: Job, func: Callable[..., Any], context: JobContext) -> None:
        current_job.set(
            JobInfo(
                job_id=job.id,
                gateway_url=context.gateway_url,
                token_source=context.token,
                report_step=self._step_reporter(job.id),
            )
        )
        timeout = job.options.timeout or self._default_timeout
        try:
            async with asyncio.timeout(timeout):  # no extra task per job, unlike wait_for
                kwargs = select_arguments(func, await _preprocessed(func, job.args or {}))
                if inspect.iscoroutinefunction(func):
                    result = await func(**kwargs)
                else:
                    result = await asyncio.to_thread(func, **kwargs)
            orjson.dumps(result)
            outcome = Outcome(job.id, "succeeded", result=result)
        except TimeoutError:
            message = f"the job ran longer than its timeout of {timeout:g}s"
            outcome = Outcome(job.id, "failed", error={"name": "Timeout", "message": message})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = Outcome(job.id, "failed", error=describe_error(exc))
        self._tasks.pop(job.id, None)  # free the slot before the report wakes the dispatcher
        self._suspended.discard(job.id)
        if self._context is not None:
            await self._context.report(outcome)
