"""A warm Python that imports each script once and forks a child per job (``prefork = true``).

Started by the ``local`` engine with one end of a ``SOCK_SEQPACKET`` socket pair. Each request is
one message — the script, its folder, the job's environment — carrying three file descriptors: the
job's stdin (its arguments), its log pipe (stdout and stderr) and its result channel. The server
answers with the child's pid, and later with its exit status. The child runs in a session of its
own (its own process group, which the engine kills whole on a timeout or a cancel; the server
has no terminal, so neither has the child), with the job's environment and
folder, exactly as ``_pyrunner.py`` would run it in a fresh interpreter: what a job pays for is a
fork, not an interpreter start and an import.

Standard library only; single-threaded, so forking is safe. A script whose content changed (the
engine sends the hash it resolved) is imported again before the next fork, and a script that fails
to import fails its job with that error, as it would without prefork. A script's module-level code
runs once, in the server: what it opens there (a connection, a file) every job inherits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _pyrunner import run_job

MAX_MESSAGE = 1 << 20

Loaded = tuple[str, Callable[..., Any] | None, BaseException | None]


class Scripts:
    """Each script's ``main``, imported once per version of its file.

    The version is the content hash the engine resolved for the job (the same file content it
    would run without prefork); without one, the file's mtime and size stand in for it."""

    def __init__(self) -> None:
        self._loaded: dict[str, Loaded] = {}

    def main_of(self, script: str, version: str | None = None) -> Callable[[], Callable[..., Any]]:
        if version is None:
            stat = os.stat(script)
            version = f"{stat.st_mtime_ns}:{stat.st_size}"
        loaded = self._loaded.get(script)
        if loaded is None or loaded[0] != version:
            loaded = (version, *_import(script))
            if loaded[1] is not None:  # an import error is tried again next time
                self._loaded[script] = loaded
        _, func, error = loaded

        def load() -> Callable[..., Any]:
            if error is not None:
                raise error
            assert func is not None
            return func

        return load


def _import(script: str) -> tuple[Callable[..., Any] | None, BaseException | None]:
    folder = os.path.dirname(os.path.abspath(script))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"hookgate_script_{abs(hash(script))}"
    try:
        spec = importlib.util.spec_from_file_location(name, script)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {script}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        func = getattr(module, "main", None)
        if not callable(func):
            raise AttributeError(f"{os.path.basename(script)} defines no main() function")
        return func, None
    except BaseException as exc:  # the job's failure, reported by the child like any other
        sys.modules.pop(name, None)
        return None, exc


def _child(request: dict[str, Any], fds: list[int], control: socket.socket, load: Callable[[], Any]) -> None:
    """In the forked child: become the job, run it, and leave without running the server's code."""
    code = 1
    try:
        control.close()
        os.setpgid(0, 0)  # a process group of its own (the parent sets it too: no race with a kill)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        stdin, logs, channel = fds
        os.dup2(stdin, 0)
        os.dup2(logs, 1)
        os.dup2(logs, 2)
        os.close(stdin)
        os.close(logs)
        _become(request["env"])
        os.environ["HOOKGATE_RESULT_FD"] = str(channel)
        os.chdir(request["cwd"])
        code = run_job(load, channel)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the pipe may be gone; the status still counts
                stream.flush()
        os._exit(code)


def _become(env: dict[str, str]) -> None:
    """The job's environment, changing only what differs: it is mostly the server's own, and
    ``os.environ.clear()`` costs time quadratic in its size (most of a fork's cost, measured)."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def serve(control: socket.socket) -> None:
    scripts = Scripts()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd is what matters
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine stops us by closing the socket
    while True:
        ready, _, _ = select.select([control.fileno(), wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _reap(control)
        if control.fileno() in ready:
            try:
                data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 3)
            except ConnectionResetError:
                data = b""
            if not data:
                return  # the engine closed its end: stop (children already forked run on)
            _fork(json.loads(data), fds, control, scripts)


def _fork(request: dict[str, Any], fds: list[int], control: socket.socket, scripts: Scripts) -> None:
    answer: dict[str, Any] = {"id": request["id"]}
    try:
        load = scripts.main_of(request["script"], request.get("version"))
        pid = os.fork()
        if pid == 0:
            _child(request, fds, control, load)
        # Before anyone learns the pid: the engine kills the job's group, which must exist by then.
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it may be done already
            os.setpgid(pid, pid)
        answer["pid"] = pid
    except OSError as exc:
        answer["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for fd in fds:
            os.close(fd)
    control.send(json.dumps(answer).encode())


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(json.dumps({"exited": pid, "status": os.waitstatus_to_exitcode(status)}).encode())


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
