"""The fenced shell and TOML blocks of README.md and docs/*.md, as the documentation test runs them.

A block is run unless the line above its fence says why not: ``<!-- not run: the reason -->``.
Shell blocks run in order, one document at a time, against a real gateway serving a copy of
config/gateway.toml, in a folder laid out like the repository (``config/``, ``.venv/bin/hookgate``),
so a reader's commands work as written. What the documents leave for the reader to fill in is
filled in: ``http://127.0.0.1:8080`` is the test gateway, ``hg_…`` its admin token, ``6f1c…`` the id
of the last job an earlier command answered. A comment ``# {…}`` after a command (on its line or the
next) is the output it must print; ``…`` there stands for anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "Command", "blocks_of", "commands_of", "output_matches"]

_FENCE = re.compile(r"^```(sh|bash|shell|toml)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.*?)\s*-->$")
_EXPECTED = re.compile(r"^\s*#\s*(?P<out>[\[{].*)$")
_TRAILING = re.compile(r"^(?P<command>.*?\S)\s+#\s*(?P<out>[\[{].*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    text: str
    not_run: str | None = None
    """The reason given in the Markdown, when the block is not run."""

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass
class Command:
    text: str
    expected: str | None = None
    lines: list[str] = field(default_factory=list)


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        above = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marked = _NOT_RUN.match(above.strip())
        found.append(
            Block(path, start + 1, fence.group(1), "\n".join(body), marked.group(1) if marked else None)
        )
        index += 1
    return found


def commands_of(text: str) -> list[Command]:
    """Commands (with their continuation lines) and the output each must print."""
    commands: list[Command] = []
    pending: list[str] = []
    for line in text.splitlines():
        expected = _EXPECTED.match(line)
        if expected and not pending and commands:
            commands[-1].expected = expected.group("out").strip()
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        trailing = _TRAILING.match(line)
        if trailing and not line.rstrip().endswith("\\"):
            pending.append(trailing.group("command"))
            commands.append(Command("\n".join(pending), trailing.group("out").strip()))
            pending = []
            continue
        pending.append(line)
        if not line.rstrip().endswith("\\"):
            commands.append(Command("\n".join(pending)))
            pending = []
    if pending:
        commands.append(Command("\n".join(pending)))
    return commands


def output_matches(expected: str, output: str) -> bool:
    """``…`` (and a word ending in it, such as ``6f1c…``) matches anything; spaces are not compared."""
    squeeze = re.compile(r"\s+")
    pattern = ""
    for part in re.split(r"[\w.:/-]*…", squeeze.sub("", expected)):
        pattern += re.escape(part) + ".*?"
    return re.fullmatch(pattern[: -len(".*?")], squeeze.sub("", output), re.DOTALL) is not None
