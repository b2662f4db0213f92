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
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import run

BENCH = Path(__file__).parent
HOOKS = BENCH / "peers" / "webhook" / "hooks.json"
NODE_RED = BENCH / "peers" / "node-red"
NODE_RED_CONNECTIONS = (1, 16)
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


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The peers' figures and hookgate's counterparts, each the median of ``--repeat`` runs."""
    found = measure_webhook(args, tmp)
    found["node_red"] = measure_node_red(args, tmp)
    return found


def node_binary() -> str | None:
    """A Node.js new enough for Node-RED 5: the machine's, else the one npm installed beside it."""
    bundled = sorted(str(p) for p in (NODE_RED / "node_modules").glob("node-linux-*/bin/node"))
    for candidate in (shutil.which("node"), *bundled):
        if candidate and _node_version(candidate) >= (22, 9):
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    import json
    import tempfile

    parsed = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(BENCH))
    with tempfile.TemporaryDirectory() as name:
        print(json.dumps(measure(parsed, Path(name))))
