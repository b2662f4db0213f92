"""The embedded engine: scripts from a folder, each job a subprocess of its own.

A ``.py`` script defines ``main(...)`` and is run by ``_pyrunner.py`` (its return value is the
result, sent on a dedicated pipe). Any other executable file gets the arguments as JSON on stdin,
and its stdout (JSON when it parses, text otherwise) is the result; a non-zero exit is a failure.
Every job runs in its own process group, so a timeout or a cancel kills what it spawned too.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import marshal
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol

import orjson
from pydantic import AfterValidator, Field

from gateway.plugin import (
    Duration,
    EngineConfig,
    EngineContext,
    Job,
    JobContext,
    LiveLogs,
    Outcome,
    PluginOptions,
    Positive,
    RelativePath,
    ScriptVersion,
    Size,
    Step,
    content_hash,
    declare_options,
)

from ._outcome import Tail, executable_outcome, python_outcome, read_bounded, read_channel, text
from ._prefork import ForkServer
from ._pyrunner import MARSHAL_VERSION

__all__ = ["LocalEngine", "create"]

_RUNNER = str(Path(__file__).with_name("_pyrunner.py"))
_RACY_NS = 2_000_000_000
_LOCATE_TTL = 1.0
_LOCATE_CACHE = 10_000


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder")
    return path


def _defines_preprocessor(source: bytes) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # the job reports the script's error when it runs
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "preprocessor"
        for node in tree.body
    )


class LocalOptions(PluginOptions):
    """``[[engines]] type = "local"``: scripts run as subprocesses (docs/engines.md)."""

    scripts_dir: Annotated[RelativePath, AfterValidator(_folder)] = Field(
        description="the folder of the scripts; a script's path is its file path under it"
    )
    concurrency: Positive = Field(default_factory=lambda: os.cpu_count() or 2, description="jobs at once")
    python: str = Field(default_factory=lambda: sys.executable, description="the interpreter of .py scripts")
    default_timeout: Duration = Field(3600.0, description="run time when the route sets none")
    max_log_bytes: Size = Field(64 * 1024, description="tail of stdout/stderr kept as the job's logs")
    max_result_bytes: Size = Field(16 * 1024 * 1024, description="the largest result a script may return")
    prefork: bool = Field(False, description="import .py scripts once in a warm interpreter, fork per job")


@declare_options(LocalOptions)
def create(config: EngineConfig) -> LocalEngine:
    return LocalEngine(config.name, LocalOptions.of(config))


class Process(Protocol):
    """A spawned ``asyncio.subprocess.Process`` or a job forked by the prefork server."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stdin(self) -> asyncio.StreamWriter | None: ...
    @property
    def stdout(self) -> asyncio.StreamReader | None: ...
    @property
    def stderr(self) -> asyncio.StreamReader | None: ...
    async def wait(self) -> int: ...


class ScriptPathError(ValueError):
    """A script path that tries to leave the scripts folder or is otherwise not a plain path."""


class LocalEngine:
    def __init__(self, name: str, options: LocalOptions) -> None:
        self.name = name
        self.options = options
        self._context: EngineContext | None = None
        self._running: dict[str, Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancelled: set[str] = set()
        self._suspended: set[str] = set()
        self._live: dict[str, Tail] = {}
        self._versions: dict[tuple[Path, int, int], ScriptVersion] = {}
        self._locations: dict[str, tuple[Path | None, float]] = {}
        self._preprocessors: dict[str, bool] = {}
        self._forkserver = (
            ForkServer(options.python, log_limit=options.max_log_bytes) if options.prefork else None
        )

    # --- the script folder --------------------------------------------------------------------------

    def scripts(self) -> Mapping[str, str]:
        found: dict[str, str] = {}
        root = self.options.scripts_dir
        for file in sorted(root.rglob("*")):
            relative = file.relative_to(root)
            if any(part.startswith((".", "_")) for part in relative.parts) or not self._is_script(file):
                continue
            path = relative.with_suffix("").as_posix()
            if path in found:
                raise ScriptPathError(
                    f"{root}: two files are both script '{path}' ({found[path]} and {relative})"
                )
            found[path] = relative.as_posix()
        return found

    @staticmethod
    def _is_script(file: Path) -> bool:
        if not file.is_file():
            return False
        return file.suffix == ".py" or os.access(file, os.X_OK)

    def _locate(self, path: str) -> Path | None:
        parts = path.split("/")
        if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
            raise ScriptPathError(f"'{path}' is not a script path")
        if any(p.startswith((".", "_")) for p in parts):
            raise ScriptPathError(f"'{path}' is hidden: names starting with '.' or '_' are helpers")
        root = self.options.scripts_dir
        base = root / path
        candidates = [base.with_name(base.name + ".py")] if base.suffix != ".py" else []
        candidates.append(base)
        candidates.extend(sorted(p for p in base.parent.glob(base.name + ".*") if p.suffix != ".py"))
        for candidate in candidates:
            if not self._is_script(candidate):
                continue
            real = candidate.resolve()
            if not real.is_relative_to(root):
                raise ScriptPathError(f"'{path}' leads outside the scripts folder")
            return candidate
        return None

    def _located(self, path: str) -> Path | None:
        """``_locate`` (a glob, a realpath) remembered for a second: a trigger costs one ``stat``.
        A file added, renamed or removed is seen within that second; an edit, at the next ``stat``."""
        now = time.monotonic()
        found = self._locations.get(path)
        if found is not None and now - found[1] < _LOCATE_TTL:
            return found[0]
        file = self._locate(path)
        if len(self._locations) >= _LOCATE_CACHE:
            self._locations.clear()
        self._locations[path] = (file, now)
        return file

    def resolve(self, path: str) -> ScriptVersion | None:
        try:
            file = self._located(path)
        except ScriptPathError:
            return None
        if file is None:
            return None
        try:
            stat = file.stat()
        except FileNotFoundError:  # removed since it was located
            self._locations.pop(path, None)
            return None
        key = (file, stat.st_mtime_ns, stat.st_size)
        version = self._versions.get(key)
        # As git does with its index: a file modified within the timestamp granularity may change
        # again without its mtime or size moving, so its cached hash is only trusted once it is older.
        racy = time.time_ns() - stat.st_mtime_ns < _RACY_NS
        if version is None or racy:
            content = file.read_bytes()
            version = ScriptVersion(
                hash=content_hash(content), engine=self.name, path=path, filename=file.name, content=content
            )
            self._versions = {k: v for k, v in self._versions.items() if k[0] != file}
            self._versions[key] = version
        return version

    def defines_preprocessor(self, version: ScriptVersion) -> bool:
        """Whether a ``.py`` script defines ``preprocessor`` at its top level (read, never run)."""
        if not version.filename.endswith(".py"):
            return False
        found = self._preprocessors.get(version.hash)
        if found is None:
            found = _defines_preprocessor(version.content)
            if len(self._preprocessors) >= _LOCATE_CACHE:
                self._preprocessors.clear()
            self._preprocessors[version.hash] = found
        return found

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, context: EngineContext) -> None:
        self._context = context
        self.scripts()  # refuse an ambiguous folder at start-up rather than at the first request

    async def close(self) -> None:
        for job_id in list(self._running):
            await self.cancel(job_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._forkserver is not None:
            await self._forkserver.close()

    def free_slots(self) -> int:
        # ``_running`` is emptied before the outcome is reported, so the dispatcher woken by that
        # report already sees the free slot. A job awaiting a callback holds no slot.
        return self.options.concurrency - len(self._running) + len(self._suspended & self._running.keys())

    def _step_reporter(self, job_id: str) -> Callable[[Step], Awaitable[None]]:
        async def report(step: Step) -> None:
            if self._context is not None and self._context.report_step is not None:
                await self._context.report_step(job_id, step)

        return report

    def live_logs(self, job_id: str) -> LiveLogs | None:
        tail = self._live.get(job_id)
        return None if tail is None else LiveLogs(bytes(tail.data), tail.dropped, tail.limit)

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        if suspended:
            self._suspended.add(job_id)
        else:
            self._suspended.discard(job_id)

    async def cancel(self, job_id: str) -> None:
        process = self._running.get(job_id)
        if process is not None:
            self._cancelled.add(job_id)
            _kill_group(process)

    # --- running ------------------------------------------------------------------------------------

    async def submit(self, job: Job, context: JobContext) -> str:
        file = await self._file_for(job)
        env = {**os.environ, **context.environment()}
        env.pop("HOOKGATE_RESULT_FD", None)
        if self._forkserver is not None and file.suffix == ".py":
            forked, channel = await self._forkserver.spawn(
                file, version=job.script_hash, cwd=file.parent, env=env
            )
            return self._follow(job, forked, channel)
        read_fd = write_fd = -1
        if file.suffix == ".py":
            read_fd, write_fd = os.pipe()
            env["HOOKGATE_RESULT_FD"] = str(write_fd)
            argv = [self.options.python, _RUNNER, str(file)]
        else:
            argv = [str(file)]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if read_fd >= 0 else asyncio.subprocess.PIPE,
                cwd=str(file.parent),
                env=env,
                pass_fds=(write_fd,) if write_fd >= 0 else (),
                start_new_session=True,
            )
        except BaseException:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
            raise
        if write_fd >= 0:
            os.close(write_fd)
        return self._follow(job, process, read_fd)

    def _follow(self, job: Job, process: Process, result_fd: int) -> str:
        self._running[job.id] = process
        task = asyncio.create_task(self._supervise(job, process, result_fd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return str(process.pid)

    async def _file_for(self, job: Job) -> Path:
        """The file holding exactly the version pinned on the job (an older one is restored)."""
        current = self.resolve(job.script)
        if current is not None and (job.script_hash is None or current.hash == job.script_hash):
            located = self._located(job.script)
            if located is not None:
                return located
        if job.script_hash is None or self._context is None:
            raise FileNotFoundError(f"script '{job.script}' is not in {self.options.scripts_dir}")
        version = await self._context.load_version(job.script_hash)
        if version is None:
            raise FileNotFoundError(f"version {job.script_hash} of '{job.script}' is not in the store")
        return self._materialize(version)

    def _materialize(self, version: ScriptVersion) -> Path:
        assert self._context is not None
        folder = self._context.data_dir / "script-versions" / version.hash
        file = folder / version.filename
        if not file.exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(file.name + ".partial")
            partial.write_bytes(version.content)
            partial.chmod(0o700)
            partial.replace(file)
        return file

    async def _supervise(self, job: Job, process: Process, result_fd: int) -> None:
        try:
            outcome = await self._wait_outcome(job, process, result_fd)
        except Exception as exc:  # a bug here must fail the job, not leave it running forever
            _kill_group(process)
            error = {"name": type(exc).__name__, "message": f"the local engine lost the job: {exc}"}
            outcome = Outcome(job.id, "failed", error=error)
        finally:
            self._running.pop(job.id, None)
            self._suspended.discard(job.id)
            self._live.pop(job.id, None)
        if job.id in self._cancelled:
            self._cancelled.discard(job.id)
            return
        if self._context is not None:
            await self._context.report(outcome)

    async def _wait_outcome(self, job: Job, process: Process, result_fd: int) -> Outcome:
        timeout = job.options.timeout or self.options.default_timeout
        python = result_fd >= 0
        assert process.stdin is not None and process.stdout is not None
        arguments = _runner_arguments(job.args or {}) if python else orjson.dumps(job.args or {})
        stdin_task = asyncio.create_task(_feed_stdin(process.stdin, arguments))
        # Python scripts: stdout and stderr together are the logs, the outcome comes on its own pipe.
        # Executables: stdout is the result, stderr the logs.
        stdout_limit = self.options.max_log_bytes if python else self.options.max_result_bytes
        live = self._live[job.id] = Tail(self.options.max_log_bytes)
        if python:
            stdout = asyncio.create_task(read_bounded(process.stdout, stdout_limit, into=live))
            second = asyncio.create_task(
                read_channel(result_fd, self.options.max_result_bytes, on_step=self._step_reporter(job.id))
            )
        else:
            assert process.stderr is not None
            stdout = asyncio.create_task(read_bounded(process.stdout, stdout_limit, keep_tail=False))
            second = asyncio.create_task(read_bounded(process.stderr, self.options.max_log_bytes, into=live))
        timed_out = False
        try:
            async with asyncio.timeout(timeout):  # wait_for could swallow a cancel on 3.11
                await process.wait()
        except TimeoutError:
            timed_out = True
            _kill_group(process)
            await process.wait()
        _kill_group(process)  # whatever the script left behind in its group goes with it
        out, other = await stdout, await second
        await stdin_task
        if timed_out:
            logs = text(out if python else other)
            return Outcome(job.id, "failed", error=_timeout_error(job, self.options), logs=logs)
        if python:
            return python_outcome(job, process.returncode, logs=text(out), channel=other)
        return executable_outcome(job, process.returncode, stdout=out, logs=text(other))


def _kill_group(process: Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _runner_arguments(args: dict[str, Any]) -> bytes:
    """A job's arguments as ``_pyrunner`` reads them. They came from JSON, so marshal carries them
    all; a value of another type (a plugin's) travels as JSON would."""
    try:
        return marshal.dumps(args, MARSHAL_VERSION)
    except ValueError:
        return marshal.dumps(orjson.loads(orjson.dumps(args, default=str)), MARSHAL_VERSION)


async def _feed_stdin(stream: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stream.write(data)
        await stream.drain()
        stream.close()


def _timeout_error(job: Job, options: LocalOptions) -> dict[str, Any]:
    timeout = job.options.timeout or options.default_timeout
    return {
        "name": "Timeout",
        "message": f"the job ran longer than its timeout of {timeout:g}s and was killed",
    }
