"""The engine's side of the fork server (``_forkserver.py``): ask for a job's process, follow it.

A ``ForkedProcess`` looks to the engine like ``asyncio.subprocess.Process`` (``pid``, ``stdin``,
``stdout``, ``wait()``, ``returncode``), so supervising a forked job is the same code as supervising
a spawned one. The fork server is started on first use and again if it dies; a job whose server
died is reported as killed, never left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ForkServer", "ForkedProcess"]

log = logging.getLogger("hookgate.engines.local")

_SERVER = str(Path(__file__).with_name("_forkserver.py"))
_LOST = -int(signal.SIGKILL)
"""The status of a job whose fork server died: as if killed."""


class ForkedProcess:
    def __init__(self, pid: int, stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr: asyncio.StreamReader | None = None  # stdout and stderr share one pipe
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def exited(self, status: int) -> None:
        if not self._exited.done():
            self.returncode = status
            self._exited.set_result(status)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class ForkServer:
    """One warm interpreter (``python``) forking this engine's Python jobs."""

    def __init__(self, python: str, *, log_limit: int) -> None:
        self.python = python
        self.log_limit = log_limit
        self._server: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ids = itertools.count(1)
        self._asked: dict[int, asyncio.Future[int]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early: dict[int, int] = {}  # exits reported before the engine saw the pid (a fast job)
        self._starting = asyncio.Lock()

    async def spawn(
        self, script: Path, *, version: str | None, cwd: Path, env: Mapping[str, str]
    ) -> tuple[ForkedProcess, int]:
        """A child running ``script`` (``version``: its content hash); returns it and the read end
        of its result channel."""
        control = await self._running()
        loop = asyncio.get_running_loop()
        stdin_read, stdin_write = os.pipe()
        logs_read, logs_write = os.pipe()
        channel_read, channel_write = os.pipe()
        request_id = next(self._ids)
        asked = self._asked[request_id] = loop.create_future()
        message = {
            "id": request_id,
            "script": str(script),
            "version": version,
            "cwd": str(cwd),
            "env": dict(env),
        }
        try:
            socket.send_fds(control, [orjson.dumps(message)], [stdin_read, logs_write, channel_write])
        except BaseException:
            self._asked.pop(request_id, None)
            for fd in (stdin_write, logs_read, channel_read):
                os.close(fd)
            raise
        finally:
            for fd in (stdin_read, logs_write, channel_write):
                os.close(fd)
        try:
            pid = await asked
        except BaseException:
            for fd in (stdin_write, logs_read, channel_read):
                os.close(fd)
            raise
        stdout = asyncio.StreamReader(limit=self.log_limit)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdout), os.fdopen(logs_read, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(stdin_write, "wb", buffering=0)
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        process = self._children[pid] = ForkedProcess(pid, stdin, stdout)
        if pid in self._early:
            self._exit(pid, self._early.pop(pid))
        return process, channel_read

    async def _running(self) -> socket.socket:
        async with self._starting:
            if self._control is None or self._server is None or self._server.poll() is not None:
                self._start()
            assert self._control is not None
            return self._control

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._server = subprocess.Popen(
                [self.python, _SERVER, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the gateway's terminal is the gateway's only
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)
        self._control = ours
        log.info("prefork server started (pid %d)", self._server.pid)

    def _readable(self) -> None:
        assert self._control is not None
        while True:
            try:
                data = self._control.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            message: dict[str, Any] = orjson.loads(data)
            if "exited" in message:
                self._exit(int(message["exited"]), int(message["status"]))
                continue
            asked = self._asked.pop(int(message["id"]), None)
            if asked is None or asked.done():
                continue
            if "pid" in message:
                asked.set_result(int(message["pid"]))
            else:
                asked.set_exception(OSError(f"the prefork server could not fork: {message.get('error')}"))

    def _exit(self, pid: int, status: int) -> None:
        process = self._children.pop(pid, None)
        if process is None:
            self._early[pid] = status
        else:
            process.exited(status)

    def _lost(self) -> None:
        """The server died: its children can no longer be followed, so they are killed and reported."""
        log.error("the prefork server stopped; its jobs are failed and it starts again on the next job")
        self._detach()
        for pid, process in list(self._children.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            process.exited(_LOST)
        self._children.clear()
        for asked in self._asked.values():
            if not asked.done():
                asked.set_exception(OSError("the prefork server stopped"))
        self._asked.clear()

    def _detach(self) -> None:
        if self._control is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._control.fileno())
            self._control.close()
            self._control = None

    async def close(self) -> None:
        self._detach()
        server, self._server = self._server, None
        if server is not None:
            try:
                await asyncio.to_thread(server.wait, 5)
            except subprocess.TimeoutExpired:
                server.kill()
                await asyncio.to_thread(server.wait)
