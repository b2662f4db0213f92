"""The wheel, as ``pip install hookgate`` gets it: no top-level ``plugins`` package, entry points that
resolve, and the README's example served from a fresh venv with nothing of the checkout on its path."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from .harness import REPO, free_port

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO)],
        check=True,
    )
    (built,) = out.glob("hookgate-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies installed, as a user would have it."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True)
    return folder


def _clean_env() -> dict[str, str]:
    """Nothing of the checkout or of the test venv leaks in."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def test_the_wheel_holds_gateway_and_hookgate_plugins_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
    assert tops == {
        "gateway",
        "hookgate_plugins",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    assert "hookgate_plugins/engines/local.py" in names
    assert "gateway/store/migrations/0001_jobs.sqlite.sql" in names
    targets = re.findall(r"^\w+ = ([\w.]+):", declared, re.MULTILINE)
    assert targets and all(t.startswith(("gateway.", "hookgate_plugins.")) for t in targets), declared


def test_the_installed_wheel_has_no_top_level_plugins_and_loads_every_plugin(
    venv: Path, tmp_path: Path
) -> None:
    probe = (
        "import importlib.util, importlib.metadata as md, json\n"
        "loaded = {ep.group + ':' + ep.name: ep.load().__module__\n"
        "          for g in ('hookgate.engines', 'hookgate.notifiers') for ep in md.entry_points(group=g)}\n"
        "import hookgate_plugins\n"
        "print(json.dumps({'plugins': importlib.util.find_spec('plugins') is not None,\n"
        "                  'where': hookgate_plugins.__file__, 'loaded': loaded}))\n"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=_clean_env(),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = json.loads(out.stdout)
    assert found["plugins"] is False
    assert found["where"].startswith(str(venv))
    assert found["loaded"]["hookgate.engines:local"] == "hookgate_plugins.engines.local"
    assert found["loaded"]["hookgate.notifiers:slack"] == "hookgate_plugins.notifiers.slack"
    assert len(found["loaded"]) == 10


@pytest.fixture
async def served_from_wheel(venv: Path, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The README's `make run`, from the installed wheel: config/ copied, on a free port."""
    port = free_port()
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = tmp_path / "config" / "gateway.toml"
    config.write_text(re.sub(r"^port = 8080$", f"port = {port}", config.read_text(), flags=re.MULTILINE))
    log = open(tmp_path / "gateway.log", "ab")  # noqa: SIM115 - the child's
    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "hookgate"), "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(tmp_path), env=_clean_env(),
    )  # fmt: skip
    log.close()
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert b"serving on" in line, (tmp_path / "gateway.log").read_text()
        (token_file,) = tmp_path.rglob("admin.token")
        yield f"http://127.0.0.1:{port}", token_file.read_text().strip()
    finally:
        process.terminate()
        await process.wait()


async def test_the_installed_wheel_serves_the_readme_example(served_from_wheel: tuple[str, str]) -> None:
    url, token = served_from_wheel
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/hooks/hello?wait=true", json={"name": "Grace"}, headers=headers
        ) as answer:
            assert answer.status == 200, await answer.text()
            assert await answer.json() == {"greeting": "hello, Grace"}
        async with http.post(
            f"{url}/api/run_wait_result/u/demo/wordcount", json={"text": "one two three"}, headers=headers
        ) as answer:
            assert answer.status == 200, await answer.text()
            assert await answer.json() == {"words": 3}, await answer.text()
