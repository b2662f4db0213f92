"""Measure hookgate against a bare aiohttp handler, in one run on this machine, and print ratios.

Each figure is the median of ``--repeat`` runs of ``--duration`` seconds after a warm-up. The
server and the load generator are pinned to different cores where there are two. Load comes from
wrk (POSTs through a Lua script) when it is installed, else from bench/loadgen.py in its own process;
the table says which. Results go to bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

BENCH = Path(__file__).parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str  # "baseline" or "hookgate"
    path: str
    connections: int
    target: float | None  # minimum ratio of the baseline's requests/s
    description: str


SCENARIOS = [
    Scenario("baseline", "baseline", "/", 64, None, "bare aiohttp handler: read 1 KB JSON, answer JSON"),
    Scenario(
        "async",
        "hookgate",
        "/api/run/bench/echo",
        64,
        0.5,
        "async trigger: 1 KB JSON shaped, job committed, 202",
    ),
    Scenario(
        "sync",
        "hookgate",
        "/api/run_wait_result/bench/echo",
        64,
        0.3,
        "sync trigger, python engine echo: full lifecycle",
    ),
    Scenario("baseline-1conn", "baseline", "/", 1, None, "bare handler at one connection (latency)"),
    Scenario(
        "sync-1conn",
        "hookgate",
        "/api/run_wait_result/bench/echo",
        1,
        None,
        "sync trigger at one connection (latency)",
    ),
]

HOOKGATE_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
max_queued_jobs = 100000000
max_sync_waiting = 100000
retention = "1h"

[[engines]]
name = "py"
type = "python"
concurrency = 1000
functions = {{ "bench/echo" = "bench_funcs:echo" }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(core: int) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def body_1kb() -> bytes:
    filler = "x" * 900
    return orjson.dumps(
        {"event": "push", "repository": "acme/site", "ref": "refs/heads/main", "filler": filler}
    )


def start_server(kind: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(BENCH)}
    if kind == "baseline":
        argv = [sys.executable, str(BENCH / "baseline_server.py"), str(port)]
    else:
        data = tmp / f"data-{port}"
        config = tmp / f"hookgate-{port}.toml"
        config.write_text(HOOKGATE_CONFIG.format(port=port, data=data))
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"]
    process = subprocess.Popen(
        pin(0) + argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO
    )
    assert process.stdout is not None
    process.stdout.readline()  # "ready" / "hookgate serving on ..."
    return process, f"http://127.0.0.1:{port}"


def load(url: str, body_file: Path, connections: int, seconds: float, tmp: Path) -> dict[str, float]:
    if shutil.which("wrk"):
        script = tmp / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body_file.read_text())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        threads = 1
        out = subprocess.run(
            [
                *pin(1),
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return _parse_wrk(out)
    out = subprocess.run(
        [
            *pin(1),
            sys.executable,
            str(BENCH / "loadgen.py"),
            url,
            str(body_file),
            str(connections),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(orjson.loads(out))


def _parse_wrk(out: str) -> dict[str, float]:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": float(errors.group(1)) if errors else 0.0}


def measure(scenario: Scenario, duration: float, repeat: int, tmp: Path, body_file: Path) -> dict[str, float]:
    process, base = start_server(scenario.server, tmp)
    try:
        url = base + scenario.path
        load(url, body_file, scenario.connections, min(2.0, duration), tmp)  # warm-up
        runs = [load(url, body_file, scenario.connections, duration, tmp) for _ in range(repeat)]
    finally:
        process.terminate()
        process.wait(10)
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": max(r.get("errors", 0) for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per figure; the median is kept (default 3)"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        body_file = tmp / "body.json"
        body_file.write_bytes(body_1kb())
        for scenario in SCENARIOS:
            print(f"measuring {scenario.name} ...", file=sys.stderr, flush=True)
            results[scenario.name] = measure(scenario, args.duration, args.repeat, tmp, body_file)
    report = build_report(results, args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(report["markdown"] + "\n")
    print(report["markdown"])


def build_report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> dict[str, object]:
    baseline = results["baseline"]["rps"]
    rows = []
    for scenario in SCENARIOS:
        figure = results[scenario.name]
        ratio = figure["rps"] / baseline if scenario.connections > 1 else None
        verdict = (
            ""
            if scenario.target is None or ratio is None
            else ("meets" if ratio >= scenario.target else "MISSES")
        )
        target = f"≥ {scenario.target}x" if scenario.target else ""
        ratio_text = f"{ratio:.2f}x" if ratio is not None else ""
        rows.append(
            f"| {scenario.description} | {figure['rps']:.0f} | {ratio_text} | {target} {verdict} | "
            f"{figure['p50_ms']:.2f} / {figure['p99_ms']:.2f} |"
        )
    added = results["sync-1conn"]["p50_ms"] - results["baseline-1conn"]["p50_ms"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    generator = (
        "wrk"
        if shutil.which("wrk")
        else "bench/loadgen.py (aiohttp client; install wrk for a faster generator)"
    )
    markdown = "\n".join(
        [
            f"Machine: {machine}. Load: {generator}. Median of {args.repeat} x {args.duration:g}s.",
            "",
            "| scenario | req/s | ratio to baseline | target | p50 / p99 ms |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Latency a sync trigger adds at one connection (p50): {added:.2f} ms.",
        ]
    )
    return {
        "machine": machine,
        "generator": generator,
        "time": time.time(),
        "results": results,
        "markdown": markdown,
    }


if __name__ == "__main__":
    main()
