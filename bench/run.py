"""Measure hookgate against what its foundations can do, in one run on this machine, and print ratios.

Every figure is set against a baseline measured in the same run: a bare aiohttp handler reading the
same 1 KB JSON body, a bare aiohttp client loop sending the same signed bodies, a bare interpreter
running the same script. HTTP load comes from wrk (Debian's package; bench/loadgen.py, an aiohttp
client in its own process, when wrk is missing), pinned to another core than the server where there
are two. Each figure is the median of ``--repeat`` runs of ``--duration`` seconds after a warm-up.
Results go to bench/results/latest.json and latest.md; the README shows the latest table.
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
SCRIPTS = BENCH / "scripts"
CONNECTIONS = 64
OUTBOUND_DELIVERIES = 20_000
OUTBOUND_CONCURRENCY = 32

HOOKGATE_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
max_queued_jobs = 100000000
max_sync_waiting = 100000
retention = "1h"

[[auth.keys]]
kid = "bench"
algorithm = "HS256"
secret = "bench-secret-for-route-tokens-0123456789"

[[engines]]
name = "py"
type = "python"
concurrency = 1000
functions = {{ "bench/echo" = "bench_funcs:echo" }}

[[engines]]
name = "queue"          # async triggers: jobs wait in the queue, the trigger path is what is measured
type = "local"
scripts_dir = "{scripts}/queue"
concurrency = 1

[[engines]]
name = "spawn"
type = "local"
scripts_dir = "{scripts}/spawn"
concurrency = 4

[[engines]]
name = "fork"
type = "local"
scripts_dir = "{scripts}/fork"
concurrency = 4
prefork = true

[[routes]]
path = "/hooks/async"
script = "q/hello"

[[routes]]
path = "/hooks/sync"
script = "bench/echo"
mode = "sync"

[[routes]]
path = "/hooks/spawn"
script = "s/hello"
mode = "sync"

[[routes]]
path = "/hooks/fork"
script = "f/hello"
mode = "sync"
"""


@dataclass(frozen=True)
class Figure:
    rps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    errors: float


@dataclass(frozen=True)
class Row:
    scenario: str
    measured: str
    baseline: str
    ratio: str
    target: str
    meets: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(core: int) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def body_1kb() -> bytes:
    return orjson.dumps(
        {"event": "push", "repository": "acme/site", "ref": "refs/heads/main", "filler": "x" * 900}
    )


# --- servers ----------------------------------------------------------------------------------------


class Server:
    """A server process pinned to core 0, stopped on exit."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*pin(0), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(BENCH), **(env or {})},
            cwd=REPO,
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "ready" / "hookgate serving on ..."

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)


def baseline_server(port: int) -> Server:
    return Server([sys.executable, str(BENCH / "baseline_server.py"), str(port)])


def hookgate_server(tmp: Path, port: int) -> tuple[Server, Path]:
    data = tmp / f"data-{port}"
    config = tmp / f"hookgate-{port}.toml"
    config.write_text(HOOKGATE_CONFIG.format(port=port, data=data, scripts=SCRIPTS))
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"]
    return Server(argv), config


def route_token(config: Path, route: str) -> str:
    """A route token issued by the real CLI, as a user would."""
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "token", "--config", str(config), "issue", "--route", route],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    return out.strip().splitlines()[-1]


# --- load ---------------------------------------------------------------------------------------------


def load(url: str, connections: int, seconds: float, tmp: Path, headers: dict[str, str]) -> Figure:
    body = body_1kb()
    if shutil.which("wrk"):
        script = tmp / "post.lua"
        lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
        lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
        script.write_text("\n".join(lines) + '\nwrk.headers["Content-Type"] = "application/json"\n')
        wrk = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
        out = subprocess.run(
            [*pin(1), *wrk, "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return _parse_wrk(out)
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    argv = [sys.executable, str(BENCH / "loadgen.py"), url, str(body_file), str(connections), str(seconds)]
    out = subprocess.run(
        [*pin(1), *argv, json.dumps(headers)], capture_output=True, text=True, check=True
    ).stdout
    return Figure(**orjson.loads(out))


def _parse_wrk(out: str) -> Figure:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    def find(pattern: str) -> str:
        return re.search(pattern, out).group(1)  # type: ignore[union-attr]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Figure(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        mean_ms=ms(find(r"Latency\s+(\S+)")),
        p50_ms=ms(find(r"50%\s+(\S+)")),
        p99_ms=ms(find(r"99%\s+(\S+)")),
        errors=float(errors.group(1)) if errors else 0.0,
    )


def median_figure(run: Callable[[], Figure], repeat: int) -> Figure:
    runs = [run() for _ in range(repeat)]
    return Figure(
        rps=statistics.median(r.rps for r in runs),
        mean_ms=statistics.median(r.mean_ms for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        errors=max(r.errors for r in runs),
    )


def measure_http(
    url: str, connections: int, args: argparse.Namespace, tmp: Path, headers: dict[str, str] | None = None
) -> Figure:
    headers = headers or {}
    load(url, connections, min(2.0, args.duration), tmp, headers)  # warm-up
    figure = median_figure(lambda: load(url, connections, args.duration, tmp, headers), args.repeat)
    if figure.errors:
        raise SystemExit(f"{url}: {figure.errors:.0f} non-2xx answers; the figure would not be honest")
    return figure


def measure_hookgate(route: str, connections: int, args: argparse.Namespace, tmp: Path) -> Figure:
    port = free_port()
    server, config = hookgate_server(tmp, port)
    with server:
        headers = {"Authorization": f"Bearer {route_token(config, route)}"}
        return measure_http(f"http://127.0.0.1:{port}{route}", connections, args, tmp, headers)


def direct_spawn_ms(seconds: float) -> float:
    """Mean time to run the hello script in a fresh interpreter (the one the engine uses)."""
    code = (
        "import subprocess, sys, time\n"
        f"script = {str(SCRIPTS / 'spawn' / 's' / 'hello.py')!r}\n"
        "runs, started = 0, time.perf_counter()\n"
        f"while time.perf_counter() - started < {seconds}:\n"
        "    subprocess.run([sys.executable, script], check=True)\n"
        "    runs += 1\n"
        "print((time.perf_counter() - started) / runs * 1000)\n"
    )
    out = subprocess.run([*pin(0), sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def measure_outbound(args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    import outbound

    port = free_port()
    sink = subprocess.Popen(
        [*pin(1), sys.executable, str(BENCH / "outbound.py"), "sink", str(port)], stdout=subprocess.PIPE
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        count, concurrency = args.deliveries, OUTBOUND_CONCURRENCY
        outbound.measure_baseline(url, 2000, concurrency, pin(0))  # warm-up
        baseline = statistics.median(
            outbound.measure_baseline(url, count, concurrency, pin(0)) for _ in range(args.repeat)
        )
        hookgate = statistics.median(
            outbound.measure_hookgate(url, count, concurrency, pin(0), tmp, free_port())
            for _ in range(args.repeat)
        )
    finally:
        sink.terminate()
        sink.wait(10)
    return baseline, hookgate


def outbound_figures(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    baseline, hookgate = measure_outbound(args, tmp)
    return {"baseline": baseline, "hookgate": hookgate}


def measure_flows(runs: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(BENCH / "flows.py"), "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def measure_callbacks(count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(BENCH / "callbacks.py"), "--count", str(count)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


# --- the report ---------------------------------------------------------------------------------------


def rows(results: dict[str, Any]) -> list[Row]:
    base, base1 = results["baseline"], results["baseline_1conn"]
    asynchronous, synchronous, sync1 = results["async"], results["sync"], results["sync_1conn"]
    added_p50 = sync1["p50_ms"] - base1["p50_ms"]
    added_p99 = sync1["p99_ms"] - base1["p99_ms"]
    out_base, out_hg = results["outbound"]["baseline"], results["outbound"]["hookgate"]
    cb = results["callbacks"]
    spawn, direct = results["spawn_1conn"]["mean_ms"], results["direct_spawn_ms"]
    fork = results["fork_1conn"]["mean_ms"]
    flows = results["flows"]

    def ratio_row(name: str, measured: float, baseline: float, target: float, unit: str) -> Row:
        ratio = measured / baseline
        return Row(
            name,
            f"{measured:,.0f} {unit}",
            f"{baseline:,.0f} {unit}",
            f"{ratio:.2f}x",
            f">= {target}x",
            ratio >= target,
        )

    return [
        ratio_row(
            "async trigger: JWT route token, 1 KB JSON, shaped, committed, 202",
            asynchronous["rps"],
            base["rps"],
            0.5,
            "req/s",
        ),
        ratio_row(
            "sync trigger, python engine (echo): full job lifecycle recorded",
            synchronous["rps"],
            base["rps"],
            0.3,
            "req/s",
        ),
        Row(
            "latency a sync trigger adds at one connection (p50 / p99)",
            f"{sync1['p50_ms']:.2f} / {sync1['p99_ms']:.2f} ms",
            f"{base1['p50_ms']:.2f} / {base1['p99_ms']:.2f} ms",
            f"+{added_p50:.2f} / +{added_p99:.2f} ms",
            "<= +0.5 / +3 ms",
            added_p50 <= 0.5 and added_p99 <= 3.0,
        ),
        ratio_row(
            "outbound deliveries: HMAC-signed 1 KB, settled durably, to a local sink",
            out_hg,
            out_base,
            0.8,
            "/s",
        ),
        Row(
            f"callbacks: {cb['waiters']:,} awaits held at once (RSS per waiter; all woken after last call)",
            f"{cb['rss_per_waiter_kib']:.1f} KiB; {cb['all_woken_after_last_call_s']:.2f} s",
            "",
            "",
            "<= 12 KiB; <= 1 s",
            cb["rss_per_waiter_kib"] <= 12 and cb["all_woken_after_last_call_s"] <= 1.0,
        ),
        Row(
            "local engine, Python hello script, sync round trip",
            f"{spawn:.1f} ms",
            f"{direct:.1f} ms (python3 hello.py)",
            f"{spawn / direct:.2f}x",
            "<= 1.2x",
            spawn / direct <= 1.2,
        ),
        Row(
            f"flow of {flows['steps']:.0f} no-op steps (python engine), per step; against separate sync jobs",
            f"{flows['per_step_ms']:.2f} ms per step",
            f"{flows['per_job_ms']:.2f} ms per job",
            f"{flows['per_step_ms'] / flows['per_job_ms']:.2f}x",
            "<= 2 ms per step",
            flows["per_step_ms"] <= 2.0,
        ),
        Row(
            "local engine with prefork = true, same script, sync round trip",
            f"{fork:.1f} ms",
            "",
            "",
            "<= 5 ms",
            fork <= 5.0,
        ),
    ]


def markdown(table: list[Row], machine: str, generator: str, args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {machine}. Load: {generator}. Median of {args.repeat} x {args.duration:g} s per figure.",
        "",
        "| scenario | hookgate | baseline, same run | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        verdict = "meets" if row.meets else "**misses**"
        lines.append(
            f"| {row.scenario} | {row.measured} | {row.baseline} | {row.ratio} | {row.target} | {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, median kept (default 3)")
    parser.add_argument("--deliveries", type=int, default=OUTBOUND_DELIVERIES, help="per outbound run")
    parser.add_argument("--waiters", type=int, default=10_000, help="callback awaits held at once")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    results: dict[str, Any] = {}
    repeats = range(args.repeat)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def step(name: str, measure: Callable[[], Any]) -> None:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            value = measure()
            results[name] = asdict(value) if isinstance(value, Figure) else value

        def baseline(connections: int) -> Figure:
            port = free_port()
            with baseline_server(port):
                return measure_http(f"http://127.0.0.1:{port}/", connections, args, tmp)

        step("baseline", lambda: baseline(CONNECTIONS))
        step("async", lambda: measure_hookgate("/hooks/async", CONNECTIONS, args, tmp))
        step("sync", lambda: measure_hookgate("/hooks/sync", CONNECTIONS, args, tmp))
        step("baseline_1conn", lambda: baseline(1))
        step("sync_1conn", lambda: measure_hookgate("/hooks/sync", 1, args, tmp))
        step("spawn_1conn", lambda: measure_hookgate("/hooks/spawn", 1, args, tmp))
        step("direct_spawn_ms", lambda: statistics.median(direct_spawn_ms(args.duration) for _ in repeats))
        step("fork_1conn", lambda: measure_hookgate("/hooks/fork", 1, args, tmp))
        step("outbound", lambda: outbound_figures(args, tmp))
        step("callbacks", lambda: measure_callbacks(args.waiters))
        step("flows", lambda: measure_flows(max(5, round(args.duration * 2))))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {_cpu()}"
    generator = "wrk" if shutil.which("wrk") else "bench/loadgen.py (install wrk for a faster generator)"
    table = rows(results)
    report = {
        "machine": machine,
        "generator": generator,
        "time": time.time(),
        "duration": args.duration,
        "repeat": args.repeat,
        "results": results,
        "rows": [asdict(row) for row in table],
    }
    RESULTS.mkdir(exist_ok=True)
    text = markdown(table, machine, generator, args)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(text + "\n")
    print(text)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
