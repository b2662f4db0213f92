"""The local engine running real subprocesses from a scripts folder."""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest
from hookgate_plugins.engines._outcome import read_channel
from hookgate_plugins.engines._pyrunner import FRAME, framed
from hookgate_plugins.engines.local import LocalEngine, create
from proc import process_gone

from gateway.config import EngineConfig
from gateway.errors import ConfigError
from gateway.jobs.engine import EngineContext, JobContext, Outcome, content_hash
from gateway.models import Job, JobOptions, ScriptVersion
from gateway.plugin import Step

CONTEXT = JobContext(job_id="ignored", gateway_url="http://gw")


def write(folder: Path, name: str, text: str, *, executable: bool = False) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    if executable:
        path.chmod(0o755)
    return path


class Harness:
    def __init__(self, engine: LocalEngine, tmp: Path) -> None:
        self.engine = engine
        self.outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self.versions: dict[str, ScriptVersion] = {}
        self.tmp = tmp

    async def report(self, outcome: Outcome) -> None:
        await self.outcomes.put(outcome)

    async def load(self, content_hash: str) -> ScriptVersion | None:
        return self.versions.get(content_hash)

    async def run(self, script: str, args: dict | None = None, **job_fields: object) -> Outcome:
        version = self.engine.resolve(script)
        job = Job(
            id=f"job-{script}",
            engine="local",
            script=script,
            args=args or {},
            script_hash=version.hash if version else None,
            **job_fields,
        )
        await self.engine.submit(job, JobContext(job_id=job.id, gateway_url="http://gw"))
        return await asyncio.wait_for(self.outcomes.get(), 20)


@contextlib.asynccontextmanager
async def started(tmp_path: Path, **options: object) -> AsyncIterator[Harness]:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    engine = create(
        EngineConfig(
            name="local",
            type="local",
            options=MappingProxyType({"scripts_dir": "scripts", "concurrency": 2, **options}),
            path="engines[0]",
            base_dir=tmp_path,
        )
    )
    h = Harness(engine, tmp_path)
    await engine.start(EngineContext(report=h.report, load_version=h.load, data_dir=tmp_path / "data"))
    try:
        yield h
    finally:
        await engine.close()


@pytest.fixture(params=[False, True], ids=["spawn", "prefork"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Every behaviour holds alike for a fresh interpreter per job and for the prefork server."""
    async with started(tmp_path, prefork=request.param) as h:
        yield h


def test_options_are_validated_with_their_path(tmp_path: Path) -> None:
    config = EngineConfig(
        name="l",
        type="local",
        options=MappingProxyType({"scripts_dir": "nope", "concurrency": 0, "x": 1}),
        path="engines[2]",
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError) as info:
        create(config)
    assert any(p.startswith("engines[2].scripts_dir:") for p in info.value.problems)
    assert "engines[2].concurrency: expected >= 1, got 0" in info.value.problems
    assert "engines[2].x: unknown key" in info.value.problems


async def test_lists_scripts_by_path_without_extension(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    write(folder, "u/bot/hello.py", "def main(): return 1\n")
    write(folder, "tool.sh", "#!/bin/sh\necho 1\n", executable=True)
    write(folder, "notes.txt", "not a script")
    write(folder, "_helpers.py", "X = 1\n")
    assert set(harness.engine.scripts()) == {"u/bot/hello", "tool"}


async def test_python_main_gets_the_arguments_it_declares(harness: Harness) -> None:
    write(
        harness.engine.options.scripts_dir,
        "s.py",
        """
        def main(a, b=2, *, c=3):
            print("this is a log line")
            return {"a": a, "b": b, "c": c}
    """,
    )
    outcome = await harness.run("s", {"a": 1, "c": 9, "extra": "dropped"})
    assert outcome.state == "succeeded"
    assert outcome.result == {"a": 1, "b": 2, "c": 9}
    assert "this is a log line" in (outcome.logs or "")


async def test_kwargs_receives_everything_and_async_main_works(harness: Harness) -> None:
    write(
        harness.engine.options.scripts_dir,
        "s.py",
        """
        import asyncio
        async def main(**kwargs):
            await asyncio.sleep(0)
            return kwargs
    """,
    )
    assert (await harness.run("s", {"x": 1, "y": [2]})).result == {"x": 1, "y": [2]}


async def test_missing_argument_and_exceptions_are_failures(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    write(folder, "needs.py", "def main(required):\n    return required\n")
    outcome = await harness.run("needs", {})
    assert outcome.state == "failed" and outcome.error is not None
    assert outcome.error["name"] == "MissingArgument" and "'required'" in outcome.error["message"]
    write(folder, "boom.py", "def main():\n    raise KeyError('k')\n")
    outcome = await harness.run("boom")
    assert outcome.error is not None and outcome.error["name"] == "KeyError"
    assert "boom.py" in outcome.error["stack"]


async def test_result_channel_is_not_stdout(harness: Harness) -> None:
    write(
        harness.engine.options.scripts_dir,
        "noisy.py",
        """
        import sys
        def main():
            print('{"kind": "result", "value": "forged"}')
            sys.stdout.flush()
            return "real"
    """,
    )
    assert (await harness.run("noisy")).result == "real"


async def test_unserializable_result_and_hard_exit_fail(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    write(folder, "obj.py", "def main():\n    return object()\n")
    outcome = await harness.run("obj")
    assert outcome.state == "failed" and "not JSON" in outcome.error["message"]
    write(folder, "exit.py", "import os\ndef main():\n    os._exit(7)\n")
    outcome = await harness.run("exit")
    assert outcome.state == "failed" and outcome.error["exit_code"] == 7


async def test_json_values_travel_whole_and_a_spawned_job_never_imports_json(harness: Harness) -> None:
    """Arguments and a result made of JSON's types go marshalled (a spawned job's interpreter then
    loads neither json nor re, whose import cost it more than the rest of the runner); anything
    else is encoded by json, exactly as before, errors included."""
    folder = harness.engine.options.scripts_dir
    write(
        folder,
        "plain.py",
        """
        import sys
        def main(**args):
            loaded = [name for name in ("json", "re", "importlib.util") if name in sys.modules]
            return {"args": args, "loaded": loaded, "pair": (1, "two"), "deep": [{"é": 1.5, "no": None}]}
        """,
    )
    args = {"text": "ünïcode ✓", "n": 2**40, "items": [1, {"a": None, "b": False}], "f": -0.25}
    outcome = await harness.run("plain", args)
    assert outcome.state == "succeeded", outcome.error
    assert outcome.result["args"] == args
    assert outcome.result["pair"] == [1, "two"] and outcome.result["deep"] == [{"é": 1.5, "no": None}]
    if not harness.engine.options.prefork:  # the prefork server has imported them once for all
        assert outcome.result["loaded"] == []
    write(
        folder,
        "subclassed.py",
        """
        import collections, enum
        class Level(enum.IntEnum):
            HIGH = 3
        def main():
            return collections.OrderedDict(level=Level.HIGH, keys={1: "one"})
        """,
    )
    assert (await harness.run("subclassed")).result == {"level": 3, "keys": {"1": "one"}}
    write(folder, "aset.py", "def main():\n    return {'s': {1, 2}}\n")
    outcome = await harness.run("aset")
    assert outcome.state == "failed" and "not JSON" in outcome.error["message"]
    assert "set" in outcome.error["message"]


@pytest.mark.parametrize("prefork", [False, True], ids=["spawn", "prefork"])
async def test_a_result_beyond_max_result_bytes_fails_marshalled_or_not(
    tmp_path: Path, prefork: bool
) -> None:
    async with started(tmp_path, prefork=prefork, max_result_bytes=4096) as h:
        folder = h.engine.options.scripts_dir
        write(folder, "big.py", "def main(n):\n    return 'x' * n\n")
        write(
            folder,
            "bigdict.py",
            "import collections\ndef main(n):\n    return collections.OrderedDict(x='x' * n)\n",
        )
        for script in ("big", "bigdict"):
            assert (await h.run(script, {"n": 100})).result in ("x" * 100, {"x": "x" * 100})
            outcome = await h.run(script, {"n": 10_000})
            assert outcome.state == "failed" and outcome.error["name"] == "ResultTooLarge", script


async def test_executables_read_stdin_and_answer_on_stdout(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    write(folder, "json.sh", "#!/bin/sh\ncat\n", executable=True)
    write(folder, "text.sh", "#!/bin/sh\necho plain words\n", executable=True)
    write(folder, "bad.sh", "#!/bin/sh\necho oops >&2\nexit 3\n", executable=True)
    assert (await harness.run("json", {"k": [1]})).result == {"k": [1]}
    assert (await harness.run("text")).result == "plain words"
    outcome = await harness.run("bad")
    assert outcome.state == "failed"
    assert outcome.error is not None and outcome.error["exit_code"] == 3 and "oops" in outcome.error["stderr"]


async def test_timeout_kills_the_whole_process_group(harness: Harness) -> None:
    pidfile = harness.tmp / "child.pid"
    write(
        harness.engine.options.scripts_dir,
        "spawn.py",
        f"""
        import subprocess, time
        def main():
            child = subprocess.Popen(["sleep", "60"])
            open({str(pidfile)!r}, "w").write(str(child.pid))
            time.sleep(60)
    """,
    )
    outcome = await harness.run("spawn", options=JobOptions(timeout=1.0))
    assert outcome.state == "failed" and outcome.error is not None and outcome.error["name"] == "Timeout"
    child = int(pidfile.read_text())
    for _ in range(100):  # SIGKILL is delivered asynchronously
        if process_gone(child):
            break
        await asyncio.sleep(0.01)
    assert process_gone(child)


async def test_cancel_kills_and_reports_nothing(harness: Harness) -> None:
    write(harness.engine.options.scripts_dir, "long.py", "import time\ndef main():\n    time.sleep(60)\n")
    job = Job(id="long", engine="local", script="long", args={})
    await harness.engine.submit(job, CONTEXT)
    assert harness.engine.free_slots() == 1
    await harness.engine.cancel("long")
    for _ in range(200):
        if harness.engine.free_slots() == 2:
            break
        await asyncio.sleep(0.01)
    assert harness.engine.free_slots() == 2
    assert harness.outcomes.empty()


async def test_paths_may_not_leave_the_folder(harness: Harness, tmp_path: Path) -> None:
    outside = write(tmp_path, "outside.py", "def main(): return 'escaped'\n")
    (harness.engine.options.scripts_dir / "link.py").symlink_to(outside)
    assert harness.engine.resolve("link") is None
    assert harness.engine.resolve("../outside") is None
    assert harness.engine.resolve("/etc/passwd") is None
    write(harness.engine.options.scripts_dir, "_private.py", "def main(): return 'helper'\n")
    assert harness.engine.resolve("_private") is None


async def test_a_pinned_older_version_is_restored_from_the_store(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    old = b"def main():\n    return 'old'\n"
    write(folder, "v.py", old.decode())
    old_version = harness.engine.resolve("v")
    assert old_version is not None and old_version.hash == content_hash(old)
    harness.versions[old_version.hash] = old_version
    write(folder, "v.py", "def main():\n    return 'new'\n")
    assert (await harness.run("v")).result == "new"
    job = Job(id="pinned", engine="local", script="v", script_hash=old_version.hash, args={})
    await harness.engine.submit(job, CONTEXT)
    assert (await asyncio.wait_for(harness.outcomes.get(), 20)).result == "old"


async def test_job_environment(harness: Harness) -> None:
    write(
        harness.engine.options.scripts_dir,
        "env.py",
        "import os\ndef main():\n    return [os.environ['HOOKGATE_URL'], os.environ['HOOKGATE_JOB_ID']]\n",
    )
    assert (await harness.run("env")).result == ["http://gw", "job-env"]


@pytest.fixture
async def prefork(tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "scripts").mkdir()
    options = {"scripts_dir": "scripts", "concurrency": 4, "prefork": True}
    engine = create(
        EngineConfig(
            name="local", type="local", options=MappingProxyType(options), path="e", base_dir=tmp_path
        )
    )
    h = Harness(engine, tmp_path)
    await engine.start(EngineContext(report=h.report, load_version=h.load, data_dir=tmp_path / "data"))
    yield h
    await engine.close()


async def run_as(h: Harness, job_id: str, script: str, args: dict | None = None) -> Outcome:
    version = h.engine.resolve(script)
    assert version is not None
    job = Job(id=job_id, engine="local", script=script, args=args or {}, script_hash=version.hash)
    await h.engine.submit(job, JobContext(job_id=job_id, gateway_url="http://gw"))
    return await asyncio.wait_for(h.outcomes.get(), 20)


async def test_prefork_imports_a_script_once_and_forks_each_job_apart(prefork: Harness) -> None:
    imports = prefork.tmp / "imports.log"
    write(
        prefork.engine.options.scripts_dir,
        "counted.py",
        f"""
        import os
        open({str(imports)!r}, "a").write("imported\\n")
        SEEN = []
        def main(n):
            SEEN.append(n)  # module state: each job has its own copy, forked from the import
            return {{"seen": SEEN, "pid": os.getpid()}}
        """,
    )
    outcomes = [await run_as(prefork, f"j{n}", "counted", {"n": n}) for n in range(3)]
    assert [o.result["seen"] for o in outcomes] == [[0], [1], [2]]  # type: ignore[index]
    assert len({o.result["pid"] for o in outcomes}) == 3  # type: ignore[index]
    assert imports.read_text() == "imported\n"


async def test_prefork_picks_up_a_changed_script_and_reports_import_errors(prefork: Harness) -> None:
    folder = prefork.engine.options.scripts_dir
    write(folder, "v.py", "def main():\n    return 'one'\n")
    assert (await run_as(prefork, "a", "v")).result == "one"
    write(folder, "v.py", "def main():\n    return 'two'\n")  # same size, maybe the same mtime
    assert (await run_as(prefork, "b", "v")).result == "two"
    write(folder, "v.py", "def main(:\n")
    broken = await run_as(prefork, "c", "v")
    assert broken.state == "failed" and broken.error is not None and broken.error["name"] == "SyntaxError"
    write(folder, "v.py", "def main():\n    return 'three'\n")
    assert (await run_as(prefork, "d", "v")).result == "three"


async def test_a_dead_prefork_server_fails_its_jobs_and_is_started_again(prefork: Harness) -> None:
    folder = prefork.engine.options.scripts_dir
    write(folder, "long.py", "import time\ndef main():\n    time.sleep(60)\n")
    write(folder, "quick.py", "def main():\n    return 'ok'\n")
    version = prefork.engine.resolve("long")
    assert version is not None
    job = Job(id="long", engine="local", script="long", args={}, script_hash=version.hash)
    await prefork.engine.submit(job, CONTEXT)
    server = prefork.engine._forkserver._server  # type: ignore[union-attr]
    assert server is not None
    server.kill()
    lost = await asyncio.wait_for(prefork.outcomes.get(), 20)
    assert lost.job_id == "long" and lost.state == "failed"
    assert (await run_as(prefork, "after", "quick")).result == "ok"


async def test_a_preprocessor_makes_mains_arguments_from_the_event(harness: Harness) -> None:
    folder = harness.engine.options.scripts_dir
    write(
        folder,
        "pre.py",
        """
        async def preprocessor(event):
            return {"n": len(event["raw_string"]), "kind": event["kind"]}
        def main(n, kind):
            return [n, kind]
    """,
    )
    version = harness.engine.resolve("pre")
    assert version is not None and harness.engine.defines_preprocessor(version)
    event = {"kind": "http", "raw_string": "abcd"}
    assert (await harness.run("pre", {"ignored": 1, "WEBHOOK__EVENT__": event})).result == [4, "http"]
    assert (await harness.run("pre", {"n": 1, "kind": "direct"})).result == [
        1,
        "direct",
    ]  # no event: main alone
    write(folder, "bad.py", "def preprocessor(event):\n    return [1]\ndef main():\n    return 0\n")
    outcome = await harness.run("bad", {"WEBHOOK__EVENT__": event})
    assert outcome.error is not None and "must return an object of arguments" in outcome.error["message"]
    write(folder, "nested.py", "def main():\n    def preprocessor(event):\n        return {}\n    return 0\n")
    nested = harness.engine.resolve("nested")
    assert nested is not None and not harness.engine.defines_preprocessor(nested)  # top level only


async def test_the_result_channel_reads_steps_frames_and_what_a_broken_script_leaves() -> None:
    async def read(data: bytes) -> tuple[bytes, list[str]]:
        steps: list[str] = []

        async def on_step(step: Step) -> None:
            steps.append(step.rule)

        read_fd, write_fd = os.pipe()
        os.write(write_fd, data)
        os.close(write_fd)
        return await read_channel(read_fd, 4096, on_step=on_step), steps

    result = marshal.dumps({"kind": "result", "value": {"a": [1, 2.5, None]}})
    step = b'{"kind":"step","rule":"fetch"}\n'
    outcome, steps = await read(b"\n" + step + framed(result) + b"\n\n" + step)
    assert (
        orjson.loads(outcome) == {"kind": "result", "value": {"a": [1, 2.5, None]}} and steps == ["fetch"] * 2
    )
    assert (await read(step + framed(result)[:-3]))[0] == b""  # the process died within the frame
    garbage, _ = await read(framed(b"\xff\x00junk"))
    assert orjson.loads(garbage)["error"]["name"] == "BadResult"
    too_large, _ = await read(FRAME + (10_000).to_bytes(4, "big"))
    assert orjson.loads(too_large)["error"]["name"] == "ResultTooLarge"
