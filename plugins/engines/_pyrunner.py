"""Run one Python script's ``main`` in a fresh interpreter (started by the ``local`` engine).

Standard library only, and started as a file rather than a module so that it costs nothing beyond
the interpreter itself. The arguments arrive as JSON on stdin; the outcome leaves as one JSON line on
the file descriptor named by ``HOOKGATE_RESULT_FD`` -- never on stdout, so the script prints freely.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any


class MissingArgument(TypeError):
    """``main`` requires an argument the request did not provide."""


_signature = functools.lru_cache(maxsize=1024)(inspect.signature)
"""The in-process ``python`` engine calls the same functions again and again."""


def select_arguments(func: Callable[..., Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Return the arguments ``func`` declares: all of them with ``**kwargs``; extras are dropped."""
    params = _signature(func).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(args)
    selected: dict[str, Any] = {}
    for param in params:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        if param.name in args:
            selected[param.name] = args[param.name]
        elif param.default is inspect.Parameter.empty:
            raise MissingArgument(
                f"main() requires the argument '{param.name}', which the request did not provide"
            )
    return selected


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Name, message and traceback of a failure, without the frames of this runner."""
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if f.filename != __file__])
    return {"name": type(exc).__name__, "message": str(exc), "stack": "".join(summary.format())}


def _load_main(script: str) -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location("hookgate_script", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hookgate_script"] = module
    spec.loader.exec_module(module)
    func = getattr(module, "main", None)
    if not callable(func):
        raise AttributeError(f"{os.path.basename(script)} defines no main() function")
    return func  # type: ignore[no-any-return]


def _send(channel: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    while data:
        written = os.write(channel, data)
        data = data[written:]


def run(script: str) -> int:
    channel = int(os.environ["HOOKGATE_RESULT_FD"])
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        args = json.loads(sys.stdin.buffer.read() or b"{}")
        func = _load_main(script)
        kwargs = select_arguments(func, args)
        result = asyncio.run(func(**kwargs)) if inspect.iscoroutinefunction(func) else func(**kwargs)
        try:
            _send(channel, {"kind": "result", "value": result})
        except (TypeError, ValueError) as exc:
            raise TypeError(f"main() returned a value that is not JSON: {exc}") from None
    except BaseException as exc:  # the job's failure, whatever it is, including SystemExit
        _send(channel, {"kind": "error", "error": describe_error(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
