"""Real peers, measured in the same run as hookgate: adnanh/webhook (Debian's ``webhook``).

webhook maps a URL to a command, as hookgate's ``local`` engine maps a route to a script. Its
configuration is bench/peers/webhook/hooks.json (a template: the interpreter, the script and the
secret come from the environment):
- ``hello`` runs the same hello script with the same interpreter and answers with its output
  (``include-command-output-in-response``): against hookgate's spawned and prefork sync routes;
- ``github`` checks the same ``X-Hub-Signature-256`` (``payload-hmac-sha256``) and spawns
  ``/bin/true`` without waiting: against hookgate's ``github`` route, which verifies and commits a
  job before its ``202``.

and Node-RED 5 (npm ``node-red``, bench/peers/node-red: its package.json, flows.json and
settings.js): ``POST /echo`` through ``http in → function → http response``, answering the same
1 KB JSON, against hookgate's sync route on the ``python`` engine at 1 and 16 connections.
Node-RED 5 needs Node.js 22.9 or newer; where the machine's is older, the npm package
``node-linux-<arch>`` (an optional dependency there) brings one.

and, on demand only (``make bench PEERS=n8n``: a 3 GB install), n8n 2 (npm ``n8n``,
bench/peers/n8n: its package.json and workflow.json): ``POST /webhook/echo`` through a Webhook node
answering with its last node, a Code node returning the body, against the same sync route at 1 and
16 connections. n8n records every execution (in its SQLite file) as hookgate records every job.
The workflow is imported and published with n8n's own CLI into a fresh user folder, and n8n's
calls home (telemetry, version checks, templates) are switched off; n8n 2 needs Node.js 24, which
``node-linux-<arch>`` brings where the machine's is older.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import run

BENCH = Path(__file__).parent
HOOKS = BENCH / "peers" / "webhook" / "hooks.json"
NODE_RED = BENCH / "peers" / "node-red"
NODE_RED_CONNECTIONS = (1, 16)
N8N = BENCH / "peers" / "n8n"
N8N_CONNECTIONS = (1, 16)
N8N_WORKFLOW = "hgBenchEcho00001"  # the id in workflow.json
GITHUB_SECRET = "bench-github-secret"


def github_headers(body: bytes) -> dict[str, str]:
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}


def webhook_server(port: int) -> run.Server:
    env = {
        "BENCH_PYTHON": sys.executable,
        "BENCH_HELLO": str(run.SCRIPTS / "spawn" / "s" / "hello.py"),
        "BENCH_GITHUB_SECRET": GITHUB_SECRET,
    }
    binary = shutil.which("webhook") or "/usr/bin/webhook"
    argv = [binary, "-hooks", str(HOOKS), "-template", "-ip", "127.0.0.1", "-port", str(port), "-verbose"]
    return run.Server(argv, env=env, ready_line=False)


def measure(
    args: argparse.Namespace, tmp: Path, *, on_demand: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The peers' figures and hookgate's counterparts, each the median of ``--repeat`` runs;
    ``on_demand``: the peers measured only when asked for (``n8n``)."""
    found = _or_error(lambda: measure_webhook(args, tmp))
    found["node_red"] = _or_error(lambda: measure_node_red(args, tmp))
    if "n8n" in on_demand:
        found["n8n"] = _or_error(lambda: measure_n8n(args, tmp))
    return found


def _or_error(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A peer that fails while measured (errors under load, no answer) gets a row that says why:
    the peers come last, and a failure there must not throw away the half hour of figures before."""
    try:
        return measure()
    except SystemExit as exc:
        return {"error": str(exc)}


def node_binary(folder: Path = NODE_RED, minimum: tuple[int, ...] = (22, 9)) -> str | None:
    """A Node.js new enough for the peer in ``folder``: the machine's, else the one npm installed there."""
    bundled = sorted(str(p) for p in (folder / "node_modules").glob("node-linux-*/bin/node"))
    for candidate in (shutil.which("node"), *bundled):
        if candidate and _node_version(candidate) >= minimum:
            return candidate
    return None


def _node_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    try:
        return tuple(int(part) for part in out.strip().lstrip("v").split(".")[:2])
    except ValueError:
        return (0,)


def node_red_server(node: str, port: int, tmp: Path) -> run.Server:
    user_dir = tmp / f"node-red-{port}"
    user_dir.mkdir()
    red = NODE_RED / "node_modules" / "node-red" / "red.js"
    env = {"BENCH_NODE_RED_FLOWS": str(NODE_RED / "flows.json"), "BENCH_NODE_RED_PORT": str(port)}
    argv = [node, str(red), "--settings", str(NODE_RED / "settings.js"), "--userDir", str(user_dir)]
    return run.Server(argv, env=env, ready_line=False)


def measure_node_red(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    node = node_binary()
    if not (NODE_RED / "node_modules" / "node-red" / "red.js").exists() or node is None:
        return {"error": "Node-RED is not installed (make bench runs npm ci in bench/peers/node-red)"}
    found: dict[str, Any] = {}
    port = run.free_port()
    with node_red_server(node, port, tmp):
        run.wait_listening(port, timeout=60)
        for connections in NODE_RED_CONNECTIONS:
            found[f"node_red_{connections}"] = _figure(
                f"http://127.0.0.1:{port}/echo", connections, args, tmp, {}
            )
    for connections in NODE_RED_CONNECTIONS:
        found[f"hookgate_sync_{connections}"] = run.asdict(
            run.measure_hookgate("/hooks/sync", connections, args, tmp)
        )
    return found


def n8n_env(port: int, folder: Path) -> dict[str, str]:
    """n8n in a user folder of its own, on loopback, with nothing that calls out."""
    return {
        "N8N_USER_FOLDER": str(folder),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_LOG_LEVEL": "warn",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
        "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",  # its default, said: every execution recorded
    }


def n8n_server(node: str, port: int, tmp: Path) -> run.Server:
    """The workflow imported and published by n8n's CLI, then ``n8n start``."""
    env = {**os.environ, **n8n_env(port, tmp / f"n8n-{port}")}
    cli = [node, str(N8N / "node_modules" / "n8n" / "bin" / "n8n")]
    for command in (
        ["import:workflow", f"--input={N8N / 'workflow.json'}"],
        ["publish:workflow", f"--id={N8N_WORKFLOW}"],
    ):
        subprocess.run([*cli, *command], env=env, check=True, capture_output=True, timeout=300)
    return run.Server([*cli, "start"], env=n8n_env(port, tmp / f"n8n-{port}"), ready_line=False)


def wait_for_webhook(url: str, timeout: float = 120.0) -> None:
    """n8n listens before it has registered the published workflow's webhook: wait for a 200."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(
            url, data=run.body_1kb(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"n8n did not answer {url} within {timeout:.0f} s")
        time.sleep(0.5)


def measure_n8n(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    node = node_binary(N8N, (24, 0))
    if not (N8N / "node_modules" / "n8n" / "bin" / "n8n").exists() or node is None:
        return {"error": "n8n is not installed (make bench PEERS=n8n installs it in bench/peers/n8n)"}
    found: dict[str, Any] = {}
    port = run.free_port()
    with n8n_server(node, port, tmp):
        url = f"http://127.0.0.1:{port}/webhook/echo"
        wait_for_webhook(url)
        for connections in N8N_CONNECTIONS:
            found[f"n8n_{connections}"] = _figure(url, connections, args, tmp, {})
    for connections in N8N_CONNECTIONS:
        found[f"hookgate_sync_{connections}"] = run.asdict(
            run.measure_hookgate("/hooks/sync", connections, args, tmp)
        )
    return found


def measure_webhook(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if not (shutil.which("webhook") or Path("/usr/bin/webhook").exists()):
        return {"error": "webhook is not installed (make bench installs Debian's package)"}
    found: dict[str, Any] = {}
    body = run.body_1kb()
    port = run.free_port()
    with webhook_server(port):
        run.wait_listening(port)
        base = f"http://127.0.0.1:{port}/hooks"
        for connections in (1, 4):
            found[f"webhook_hello_{connections}"] = _figure(f"{base}/hello", connections, args, tmp, {})
        found["webhook_github"] = _figure(f"{base}/github", run.CONNECTIONS, args, tmp, github_headers(body))
    found["hookgate_spawn_4"] = run.asdict(run.measure_hookgate("/hooks/spawn", 4, args, tmp))
    port = run.free_port()
    server, _ = run.hookgate_server(tmp, port)
    with server:
        found["hookgate_github"] = _figure(
            f"http://127.0.0.1:{port}/hooks/github", run.CONNECTIONS, args, tmp, github_headers(body)
        )
    return found


def _figure(url: str, connections: int, args: argparse.Namespace, tmp: Path, headers: dict[str, str]) -> Any:
    return run.asdict(run.measure_http(url, connections, args, tmp, headers))


def on_demand(names: str) -> frozenset[str]:
    """``--peers n8n,…``: the peers measured only when asked for."""
    return frozenset(name.strip() for name in names.split(",") if name.strip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", default="", help="peers measured on demand, comma-separated (n8n)")
    import json
    import tempfile

    parsed = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(BENCH))
    with tempfile.TemporaryDirectory() as name:
        print(json.dumps(measure(parsed, Path(name), on_demand=on_demand(parsed.peers))))
