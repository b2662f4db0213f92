"""Real peers, measured in the same run as hookgate: adnanh/webhook (Debian's ``webhook``).

webhook maps a URL to a command, as hookgate's ``local`` engine maps a route to a script. Its
configuration is bench/peers/webhook/hooks.json (a template: the interpreter, the script and the
secret come from the environment):
- ``hello`` runs the same hello script with the same interpreter and answers with its output
  (``include-command-output-in-response``): against hookgate's spawned and prefork sync routes;
- ``github`` checks the same ``X-Hub-Signature-256`` (``payload-hmac-sha256``) and spawns
  ``/bin/true`` without waiting: against hookgate's ``github`` route, which verifies and commits a
  job before its ``202``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import run

BENCH = Path(__file__).parent
HOOKS = BENCH / "peers" / "webhook" / "hooks.json"
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
    """The peer's figures and hookgate's counterparts, each the median of ``--repeat`` runs."""
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
