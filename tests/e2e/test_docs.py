"""The documents run as written: every fenced sh and toml block of README.md and docs/*.md is run
(a TOML block is checked by the configuration parser check-config uses) or says, in the Markdown,
why it is not (tests/e2e/docs.py has the rules)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.flows.definition import parse_flow

from .docs import Block, blocks_of, commands_of, output_matches
from .harness import REPO, SUPPORT, free_port

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [block for document in DOCUMENTS for block in blocks_of(document)]
TOML = [b for b in BLOCKS if b.language == "toml" and b.not_run is None]
SHELL_DOCUMENTS = sorted({b.path for b in BLOCKS if b.language != "toml" and b.not_run is None})


def test_every_block_is_run_or_says_why_not() -> None:
    assert BLOCKS, "no fenced blocks found: the reader of the Markdown is broken"
    for block in BLOCKS:
        assert block.not_run is None or len(block.not_run) >= 10, f"{block.where}: say why it is not run"
    assert any(b.path.name == "README.md" and b.language == "sh" and b.not_run is None for b in BLOCKS)


def _placeholders(text: str) -> dict[str, str]:
    """Every ${VAR} a document leaves to the reader's environment, as a plain value."""
    return {name: f"value-of-{name.lower()}" for name in re.findall(r"\$\{(\w+)", text)}


def _merged(snippet: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    base: dict[str, Any] = {"server": {"data_dir": str(data_dir)}}
    if "engines" not in snippet:
        base["engines"] = [
            {"name": "local", "type": "local", "scripts_dir": str(REPO / "config" / "scripts")}
        ]
    for key, value in snippet.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("block", TOML, ids=[b.where for b in TOML])
def test_toml_blocks_are_valid_configuration(block: Block, tmp_path: Path) -> None:
    """A block with ``[[steps]]`` is a flow file, checked as check-config checks one."""
    snippet = tomllib.loads(block.text)
    if "steps" in snippet:
        parse_flow("f/docs", snippet, content_hash="", where=block.where)
        return
    parse_config(_merged(snippet, tmp_path), base_dir=REPO / "config", environ=_placeholders(block.text))


def test_the_flow_in_docs_flows_is_the_example_make_run_serves() -> None:
    (shown,) = [b for b in TOML if b.path.name == "flows.md" and "steps" in tomllib.loads(b.text)]
    served = REPO / "config" / "flows" / "f" / "demo" / "release.flow.toml"
    assert tomllib.loads(shown.text) == tomllib.loads(served.read_text())


# --- the shell blocks, against a real gateway --------------------------------------------------


async def _lay_out(folder: Path, port: int) -> None:
    """A folder like the repository: config/ (a copy, on a free port) and .venv/bin/hookgate."""
    shutil.copytree(REPO / "config", folder / "config")
    config = folder / "config" / "gateway.toml"
    config.write_text(re.sub(r"^port = 8080$", f"port = {port}", config.read_text(), flags=re.MULTILINE))
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "hookgate"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}:{SUPPORT}" exec "{sys.executable}" -m gateway "$@"\n')
    wrapper.chmod(0o755)


@contextlib.asynccontextmanager
async def _serve(folder: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    log = open(folder / "gateway.log", "ab")  # noqa: SIM115 - the child's
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(folder),
        env={**os.environ, "PYTHONPATH": f"{REPO}:{SUPPORT}"},
    )  # fmt: skip
    log.close()
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert b"serving on" in line, (folder / "gateway.log").read_text()
    try:
        yield process
    finally:
        process.terminate()
        await process.wait()


def _last_job_id(command: str) -> str:
    """``6f1c…`` becomes the last job id, spelled for where it stands (inside single quotes too)."""
    out, quote = [], None
    index = 0
    while index < len(command):
        if command.startswith("6f1c…", index):
            out.append("'\"$HG_LAST_JOB\"'" if quote == "'" else "${HG_LAST_JOB}")
            index += len("6f1c…")
            continue
        char = command[index]
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        out.append(char)
        index += 1
    return "".join(out)


def _script(block_text: str, *, url: str, token: str, outputs: Path, start: int) -> tuple[str, list[Any]]:
    commands = commands_of(block_text)
    lines = []
    for number, command in enumerate(commands, start=start):
        text = command.text.replace("http://127.0.0.1:8080", url).replace("hg_…", token)
        text = _last_job_id(text)
        out = outputs / f"{number}.out"
        lines += [
            f"{{ {text}\n}} > '{out}' 2>&1; echo $? > '{out}.rc'",
            f"found=$(grep -o '\"job_id\":\"[^\"]*\"' '{out}' | tail -n 1 | cut -d'\"' -f4)",
            '[ -n "$found" ] && HG_LAST_JOB=$found',
        ]
    return "\n".join(lines) + "\n", commands


async def _run_document(document: Path, folder: Path, url: str, token: str) -> list[str]:
    problems: list[str] = []
    outputs = folder / "outputs" / document.stem
    outputs.mkdir(parents=True)
    script, checks = 'cd "$HG_FOLDER"\nHG_LAST_JOB=none\n', []
    number = 0
    for block in blocks_of(document):
        if block.language == "toml" or block.not_run is not None:
            continue
        text, commands = _script(block.text, url=url, token=token, outputs=outputs, start=number)
        script += text
        checks += [(block, number + i, c) for i, c in enumerate(commands)]
        number += len(commands)
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=str(folder),
        env={**os.environ, "HG_FOLDER": str(folder), "PATH": f"{folder}/.venv/bin:{os.environ['PATH']}"},
    )  # fmt: skip
    await asyncio.wait_for(process.wait(), 120)
    for block, index, command in checks:
        output = (outputs / f"{index}.out").read_text(errors="replace").strip()
        code = (outputs / f"{index}.out.rc").read_text().strip()
        where = f"{block.where}: {command.text.splitlines()[0][:80]}"
        if code != "0":
            problems.append(f"{where}\n  exited {code}: {output[:300]}")
        elif command.expected is not None and not output_matches(command.expected, output):
            problems.append(f"{where}\n  printed  {output[:300]}\n  expected {command.expected}")
        elif command.expected is None and output.startswith('{"error"'):
            problems.append(f"{where}\n  answered an error: {output[:300]}")
    return problems


async def test_shell_blocks_run_as_written(tmp_path: Path) -> None:
    port = free_port()
    await _lay_out(tmp_path, port)
    problems: list[str] = []
    async with _serve(tmp_path):
        token = (tmp_path / ".hookgate" / "admin.token").read_text().strip()
        for document in SHELL_DOCUMENTS:
            problems += await _run_document(document, tmp_path, f"http://127.0.0.1:{port}", token)
    assert not problems, "\n".join(problems)
