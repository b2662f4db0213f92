"""How a finished ``local`` job becomes an ``Outcome``: its result channel, its stdout, its exit code.

The result and the step reports of a Python script travel on a pipe of their own
(``HOOKGATE_RESULT_FD``), never on stdout; an executable's result is its stdout. Both are read with
a bound, so a job that writes without end cannot exhaust the gateway's memory. On that pipe a step
is a JSON line; the runner's outcome is a JSON line too, or a marshal frame (``_pyrunner.FRAME``),
which the reader turns into a JSON line. The frame comes from the job's own process, which runs
the operator's script with the gateway's rights: reading it gives a script no power it lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import marshal
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway.plugin import Job, Outcome, Step

from ._pyrunner import FRAME

__all__ = [
    "Tail",
    "executable_outcome",
    "exit_error",
    "python_outcome",
    "read_bounded",
    "read_channel",
    "text",
]

_READ_CHUNK = 65536


def python_outcome(job: Job, returncode: int | None, *, logs: str, channel: bytes) -> Outcome:
    message = _last_message(channel)
    if message is not None and message.get("kind") == "result" and returncode == 0:
        return Outcome(job.id, "succeeded", result=message.get("value"), logs=logs)
    if message is not None and message.get("kind") == "error":
        return Outcome(job.id, "failed", error=message.get("error"), logs=logs)
    return Outcome(job.id, "failed", error=exit_error(returncode, logs), logs=logs)


def executable_outcome(job: Job, returncode: int | None, *, stdout: bytes, logs: str) -> Outcome:
    if returncode != 0:
        return Outcome(job.id, "failed", error=exit_error(returncode, logs), logs=logs)
    return Outcome(job.id, "succeeded", result=_parse_stdout(stdout), logs=logs)


# --- process helpers ------------------------------------------------------------------------------


class Tail:
    """The bounded end of a stream as it arrives, and how many bytes of its start were let go:
    a running job's logs, shown live."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        over = len(self.data) - self.limit
        if over > 0:
            del self.data[:over]
            self.dropped += over


async def read_bounded(
    stream: asyncio.StreamReader, limit: int, *, keep_tail: bool = True, into: Tail | None = None
) -> bytes:
    """Read to EOF keeping at most ``limit`` bytes (the end for logs, the start for a result).

    ``into`` (a tail) is filled as the bytes arrive, so a running job's logs can be shown live.
    """
    if into is not None:
        while chunk := await stream.read(_READ_CHUNK):
            into.add(chunk)
        return bytes(into.data)
    kept = bytearray()
    while chunk := await stream.read(_READ_CHUNK):
        kept += chunk
        if len(kept) > limit:
            if keep_tail:
                del kept[: len(kept) - limit]
            else:
                del kept[limit:]
    return bytes(kept)


async def read_channel(fd: int, limit: int, *, on_step: Callable[[Step], Awaitable[None]]) -> bytes:
    """Read the job's result channel as lines arrive: steps are relayed at once, the outcome is kept."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    outcome = b""
    try:
        while first := await reader.read(1):
            if first == FRAME:
                outcome = _frame_outcome(await _read_frame(reader, limit))
                continue
            line = first if first == b"\n" else first + await reader.readline()
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("kind") == "step":
                await on_step(_step(message))
            elif message.get("kind") in ("result", "error"):
                outcome = line
    except ValueError:  # a line or a frame longer than the limit
        error = {"name": "ResultTooLarge", "message": f"the result is larger than {limit} bytes"}
        outcome = orjson.dumps({"kind": "error", "error": error})
    except asyncio.IncompleteReadError:  # the process ended within a frame
        outcome = b""
    finally:
        transport.close()
    return outcome


async def _read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    size = int.from_bytes(await reader.readexactly(4), "big")
    if size > limit:
        raise ValueError(size)
    return await reader.readexactly(size)


def _frame_outcome(frame: bytes) -> bytes:
    """The marshalled outcome as the JSON line the runner would have written (json for what orjson
    refuses, such as an integer beyond 64 bits, as the runner's json did)."""
    try:
        message = marshal.loads(frame)
    except (EOFError, ValueError, TypeError):
        message = None
    if not isinstance(message, dict):
        error = {"name": "BadResult", "message": "the result channel held an outcome that cannot be read"}
        return orjson.dumps({"kind": "error", "error": error})
    try:
        return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(message, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        error = {"name": "TypeError", "message": f"main() returned a value that is not JSON: {exc}"}
        return orjson.dumps({"kind": "error", "error": error})


def _step(message: dict[str, Any]) -> Step:
    return Step(
        rule=str(message.get("rule") or "step"),
        status=str(message.get("status") or "completed"),
        message=message.get("message") if isinstance(message.get("message"), str) else None,
        outputs=message.get("outputs"),
    )


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _last_message(data: bytes) -> dict[str, Any] | None:
    for line in reversed(data.splitlines()):
        with contextlib.suppress(orjson.JSONDecodeError):
            message = orjson.loads(line)
            if isinstance(message, dict) and message.get("kind") in ("result", "error"):
                return message
    return None


def _parse_stdout(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return text(data).rstrip("\n")


def exit_error(returncode: int | None, logs: str) -> dict[str, Any]:
    if returncode is not None and returncode < 0:
        message = f"the script was killed by signal {-returncode}"
    else:
        message = f"the script exited with status {returncode}"
    return {"name": "ExitError", "message": message, "exit_code": returncode, "stderr": logs[-4096:]}
