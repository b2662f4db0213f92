"""Run one Python script's ``main`` in a fresh interpreter (started by the ``local`` engine).

Standard library only, and started as a file rather than a module so that it costs nothing beyond
the interpreter itself. The arguments arrive marshalled on stdin; the outcome leaves on the file
descriptor named by ``HOOKGATE_RESULT_FD`` -- never on stdout, so the script prints freely -- as one
marshal frame when it holds only JSON's types, else as a JSON line (``_send``). marshal is built
into the interpreter: ``json`` imports ``re`` and ``enum``, which cost a spawned job more than all
the rest of this runner (15-20 ms of a 45 ms job, measured on the bench's machine).
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds at every job's start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

# Only what every run needs is imported above: a job pays for the interpreter's start, not for
# asyncio (~60 ms), inspect or traceback, which are imported when a job needs them.

FRAME = b"\x00"
"""Starts a marshalled outcome on the result channel (a JSON line never starts with it); its
length follows in four bytes, big-endian."""
MARSHAL_VERSION = 4
"""Read alike by every Python since 3.4, so the gateway and ``python`` may be different ones."""

EVENT_KEY = "WEBHOOK__EVENT__"
"""The whole request, for a script's ``preprocessor(event)`` (``gateway.triggers.preprocessing``)."""
FunctionType = type(lambda: None)
"""As ``types`` defines it, without the import of ``types``: nothing else here needs it."""
_CO_VARKEYWORDS = 0x08
_CO_COROUTINE = 0x80


class MissingArgument(TypeError):
    """``main`` requires an argument the request did not provide."""


def _parameters(func: Callable[..., Any]) -> tuple[bool, list[tuple[str, bool]]]:
    """Whether ``func`` takes ``**kwargs``, and its keyword-passable parameters with whether each is
    required. Read off the code object for a plain function; ``inspect`` for anything else."""
    if type(func) is FunctionType:
        code = func.__code__
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        positional = names[code.co_posonlyargcount : code.co_argcount]
        first_default = code.co_argcount - len(func.__defaults__ or ())
        keyword_defaults = func.__kwdefaults__ or {}
        found = [(name, code.co_posonlyargcount + i < first_default) for i, name in enumerate(positional)]
        found += [(name, name not in keyword_defaults) for name in names[code.co_argcount :]]
        return bool(code.co_flags & _CO_VARKEYWORDS), found
    import inspect

    params = inspect.signature(func).parameters.values()
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params), [
        (p.name, p.default is inspect.Parameter.empty) for p in params if p.kind not in skipped
    ]


def is_coroutine_function(func: Callable[..., Any]) -> bool:
    if type(func) is FunctionType:
        return bool(func.__code__.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(func)


def select_arguments(func: Callable[..., Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Return the arguments ``func`` declares: all of them with ``**kwargs``; extras are dropped."""
    takes_all, parameters = _parameters(func)
    if takes_all:
        return dict(args)
    selected: dict[str, Any] = {}
    for name, required in parameters:
        if name in args:
            selected[name] = args[name]
        elif required:
            raise MissingArgument(f"main() requires the argument '{name}', which the request did not provide")
    return selected


def preprocessor_of(func: Callable[..., Any]) -> Callable[..., Any] | None:
    """The ``preprocessor`` defined beside ``main`` in the same module, if there is one."""
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    found = getattr(module, "preprocessor", None)
    return found if callable(found) else None


def preprocessed(result: Any) -> dict[str, Any]:
    """What ``preprocessor`` returned, checked to be ``main``'s arguments."""
    if not isinstance(result, dict):
        raise TypeError(
            f"preprocessor() must return an object of arguments for main(), not {type(result).__name__}"
        )
    return result


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Name, message and traceback of a failure, without the frames of this runner."""
    import traceback

    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if f.filename != __file__])
    return {"name": type(exc).__name__, "message": str(exc), "stack": "".join(summary.format())}


def _load_main(script: str) -> Callable[..., Any]:
    # What importlib.util re-exports, from the import system the interpreter has already loaded:
    # importing importlib.util itself costs a spawned job several milliseconds.
    from _frozen_importlib import module_from_spec
    from _frozen_importlib_external import spec_from_file_location

    spec = spec_from_file_location("hookgate_script", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = module_from_spec(spec)
    sys.modules["hookgate_script"] = module
    spec.loader.exec_module(module)
    func = getattr(module, "main", None)
    if not callable(func):
        raise AttributeError(f"{os.path.basename(script)} defines no main() function")
    return func  # type: ignore[no-any-return]


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if is_coroutine_function(func):
        import asyncio

        return asyncio.run(func(*args, **kwargs))
    return func(*args, **kwargs)


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is made of JSON's types only (exactly them: a subclass such as an enum or an
    OrderedDict is encoded by json, as it always was)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(key) is str and _is_plain(item) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(_is_plain(item) for item in value)
    return False


def framed(body: bytes) -> bytes:
    """``body`` as a frame of the result channel: ``FRAME``, its length, itself."""
    return FRAME + len(body).to_bytes(4, "big") + body


def _encoded(message: dict[str, Any]) -> bytes:
    try:
        plain = _is_plain(message)
    except RecursionError:  # too deep, or a value that holds itself: json says which
        plain = False
    if plain:
        return framed(marshal.dumps(message, MARSHAL_VERSION))
    import json  # only an outcome that is not plain pays for json's import

    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def _send(channel: int, message: dict[str, Any]) -> None:
    data = _encoded(message)
    while data:
        written = os.write(channel, data)
        data = data[written:]


def run(script: str) -> int:
    channel = int(os.environ["HOOKGATE_RESULT_FD"])
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    return run_job(lambda: _load_main(script), channel)


def run_job(load: Callable[[], Callable[..., Any]], channel: int) -> int:
    """Arguments from stdin, ``main`` from ``load()``, the outcome on ``channel``; the exit status."""
    try:
        received = sys.stdin.buffer.read()
        args = marshal.loads(received) if received else {}
        func = load()
        preprocessor = preprocessor_of(func) if EVENT_KEY in args else None
        if preprocessor is not None:
            args = preprocessed(_call(preprocessor, args[EVENT_KEY]))
        kwargs = select_arguments(func, args)
        result = _call(func, **kwargs)
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
