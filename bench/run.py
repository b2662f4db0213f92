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
path = "/hooks/async-ruled"   # the same route with a filter that passes and CORS: what they cost
script = "q/hello"
filter = "${{has(body.event) && body.event == 'push' && body.ref.startsWith('refs/heads/')}}"
cors = {{ origins = ["https://app.example.com"] }}

[[routes]]
path = "/hooks/sync"
script = "bench/echo"
mode = "sync"

[[routes]]
path = "/hooks/github"        # a GitHub-signed trigger, against adnanh/webhook's payload-hmac-sha256
script = "q/hello"
verify = {{ scheme = "github", secret = "bench-github-secret" }}

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
    reference: str = ""
    """The bare aiohttp handler's figure where the baseline is another one: kept for comparison."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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

    def __init__(
        self, argv: list[str], *, env: dict[str, str] | None = None, ready_line: bool = True
    ) -> None:
        """``ready_line``: the server prints one line once it listens (a peer may not: wait_listening)."""
        self.process = subprocess.Popen(
            [*pin(0), *argv],
            stdout=subprocess.PIPE if ready_line else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(BENCH), **(env or {})},
            cwd=REPO,
        )
        if ready_line:
            assert self.process.stdout is not None
            self.process.stdout.readline()  # "ready" / "hookgate serving on ..."

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)


def baseline_server(port: int) -> Server:
    return Server([sys.executable, str(BENCH / "baseline_server.py"), str(port)])


def durable_floor_server(tmp: Path, port: int) -> Server:
    return Server([sys.executable, str(BENCH / "durable_floor.py"), str(port), str(tmp / f"floor-{port}.db")])


def hookgate_server(tmp: Path, port: int, store: str = "") -> tuple[Server, Path]:
    """``store``: a ``[store]`` table to use instead of the SQLite file in the data folder."""
    data = tmp / f"data-{port}"
    config = tmp / f"hookgate-{port}.toml"
    config.write_text(HOOKGATE_CONFIG.format(port=port, data=data, scripts=SCRIPTS) + store)
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
        # Anchored at a line's start: "+/- Stdev 88.99%" must not pass for the 99th percentile.
        return re.search(pattern, out, re.MULTILINE).group(1)  # type: ignore[union-attr]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Figure(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        mean_ms=ms(find(r"Latency\s+(\S+)")),
        p50_ms=ms(find(r"^\s*50%\s+(\S+)")),
        p99_ms=ms(find(r"^\s*99%\s+(\S+)")),
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


def measure_hookgate(
    route: str,
    connections: int,
    args: argparse.Namespace,
    tmp: Path,
    extra: dict[str, str] | None = None,
    store: str = "",
) -> Figure:
    port = free_port()
    server, config = hookgate_server(tmp, port, store)
    with server:
        headers = {"Authorization": f"Bearer {route_token(config, route)}", **(extra or {})}
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


def _json_from(script: str, *args: str) -> dict[str, Any]:
    """A benchmark of its own (bench/flows.py, …), run to its end: the JSON it prints."""
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def measure_flows(runs: int) -> dict[str, Any]:
    return _json_from("flows.py", "--runs", str(runs))


def measure_dashboard(jobs: int) -> dict[str, Any]:
    """bench/dashboard.py: needs PostgreSQL (make bench prepares it) for its second half."""
    return _json_from("dashboard.py", "--jobs", str(jobs))


def streams_row(streams: dict[str, Any]) -> Row:
    kib, floor = streams["rss_per_stream_kib"], streams["baseline_rss_per_stream_kib"]
    return Row(
        f"streamed answers: {streams['streams']:,.0f} open at once (RSS per stream)",
        f"{kib:.1f} KiB",
        f"{floor:.1f} KiB (bare aiohttp stream)",
        f"{kib / floor:.2f}x",
        "<= 12 KiB",
        kib <= 12,
    )


def measure_streams(count: int) -> dict[str, Any]:
    return _json_from("streams.py", "--count", str(count))


PG_DSN = os.environ.get("HOOKGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def measure_async_postgres(args: argparse.Namespace, tmp: Path) -> Figure | dict[str, str]:
    """The async trigger on the PostgreSQL store (a schema of its own, dropped after)."""
    schema = f"hookgate_bench_{os.getpid()}"
    store = f'\n[store]\nurl = "{PG_DSN}"\nschema = "{schema}"\n'
    try:
        return measure_hookgate("/hooks/async", CONNECTIONS, args, tmp, store=store)
    except Exception as exc:  # no PostgreSQL here: the row says so
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        subprocess.run(
            ["psql", PG_DSN, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True
        )


def measure_history(args: argparse.Namespace) -> dict[str, Any]:
    """bench/history.py: the sync trigger at one connection, empty store against 100,000 jobs."""
    return _json_from(
        "history.py", "--jobs", "100000", "--duration", str(args.duration), "--repeat", str(args.repeat)
    )


def measure_peers(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import peers

    return peers.measure(args, tmp, on_demand=peers.on_demand(args.peers))


def peer_rows(results: dict[str, Any]) -> list[Row]:
    """The real peers: adnanh/webhook, then Node-RED, then n8n (on demand)."""
    found = results.get("peers") or {}
    return webhook_rows(results, found) + node_red_rows(found.get("node_red") or {}) + n8n_rows(found)


def n8n_rows(found: dict[str, Any]) -> list[Row]:
    """hookgate's sync route against n8n's Webhook -> Code workflow; both record every run."""
    n8n = found.get("n8n")
    if n8n is None:
        return [
            Row("n8n: not measured (on demand: make bench PEERS=n8n, a 3 GB install)", "", "", "", "", False)
        ]
    if "error" in n8n:
        return [Row(f"n8n: not measured ({n8n['error']})", "", "", "", "", False)]
    return _sync_against(
        n8n, "n8n", "n8n's Webhook -> Code workflow (every execution recorded)", minimum=30, digits=1
    )


def node_red_rows(found: dict[str, Any]) -> list[Row]:
    """hookgate's sync route (python engine: a token checked, the job recorded) against Node-RED's
    ``http in → function → http response``, which does neither: a ratio below one is the target."""
    if "error" in found or not found:
        return [Row(f"Node-RED: not measured ({found.get('error', 'no figures')})", "", "", "", "", False)]
    return _sync_against(
        found, "node_red", "Node-RED's http in -> function -> http response", minimum=0.3, digits=2
    )


def _sync_against(found: dict[str, Any], peer: str, what: str, *, minimum: float, digits: int) -> list[Row]:
    """hookgate's sync route against a peer at 1 and 16 connections, measured in the same minutes."""
    rows = []
    for connections in (1, 16):
        ours, theirs = found[f"hookgate_sync_{connections}"]["rps"], found[f"{peer}_{connections}"]["rps"]
        rows.append(
            Row(
                f"sync trigger, python engine, {connections} connection(s); against {what}",
                f"{ours:,.0f} req/s",
                f"{theirs:,.0f} req/s",
                f"{ours / theirs:.{digits}f}x",
                f">= {minimum}x",
                ours / theirs >= minimum,
            )
        )
    return rows


def webhook_rows(results: dict[str, Any], found: dict[str, Any]) -> list[Row]:
    """adnanh/webhook against the local engine (spawned, prefork) and the GitHub-signed trigger."""
    if "error" in found or "webhook_hello_1" not in found:
        return [
            Row(f"adnanh/webhook: not measured ({found.get('error', 'no figures')})", "", "", "", "", False)
        ]
    spawn = {1: results["spawn_1conn"]["rps"], 4: found["hookgate_spawn_4"]["rps"]}
    rows = [
        Row(
            f"local engine, spawned Python hello, {c} connection(s); against adnanh/webhook",
            f"{spawn[c]:,.0f} req/s",
            f"{found[f'webhook_hello_{c}']['rps']:,.0f} req/s",
            f"{spawn[c] / found[f'webhook_hello_{c}']['rps']:.2f}x",
            ">= 1.0x",
            spawn[c] / found[f"webhook_hello_{c}"]["rps"] >= 1.0,
        )
        for c in (1, 4)
    ]
    fork, peer1 = results["fork_1conn"]["rps"], found["webhook_hello_1"]["rps"]
    rows.append(
        Row(
            "local engine with prefork = true, 1 connection; against adnanh/webhook spawning",
            f"{fork:,.0f} req/s",
            f"{peer1:,.0f} req/s",
            f"{fork / peer1:.2f}x",
            ">= 5x",
            fork / peer1 >= 5.0,
        )
    )
    ours, theirs = found["hookgate_github"]["rps"], found["webhook_github"]["rps"]
    rows.append(
        Row(
            "GitHub-signed trigger, job committed; against adnanh/webhook's payload-hmac-sha256",
            f"{ours:,.0f} req/s",
            f"{theirs:,.0f} req/s",
            f"{ours / theirs:.2f}x",
            ">= 2x",
            ours / theirs >= 2.0,
        )
    )
    return rows


def measure_brokers() -> dict[str, Any]:
    """bench/brokers.py: the brokers make bench started (scripts/test-services.sh)."""
    return _json_from("brokers.py")


def broker_rows(brokers: dict[str, Any]) -> list[Row]:
    """Each broker: hookgate's outbox against the broker's own client publishing and confirming."""
    found = []
    for kind in ("redis", "nats", "amqp", "mqtt"):
        figures = brokers.get(kind) or {}
        if "error" in figures or not figures:
            reason = figures.get("error", "not measured")
            found.append(Row(f"outbound to {kind}: not measured ({reason})", "", "", "", ">= 0.5x", False))
            continue
        rate, baseline = figures["hookgate"], figures["baseline"]
        found.append(
            Row(
                f"outbound to {figures['name']}: signed 1 KB, settled durably; against its client's loop",
                f"{rate:,.0f} /s",
                f"{baseline:,.0f} /s",
                f"{rate / baseline:.2f}x",
                ">= 0.5x",
                rate / baseline >= 0.5,
            )
        )
    return found


def measure_callbacks(count: int) -> dict[str, Any]:
    return _json_from("callbacks.py", "--count", str(count))


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

    floor = results.get("durable_floor", base)
    return [
        Row(
            "async trigger: JWT route token, 1 KB JSON, shaped, committed, 202; against the durable floor",
            f"{asynchronous['rps']:,.0f} req/s",
            f"{floor['rps']:,.0f} req/s",
            f"{asynchronous['rps'] / floor['rps']:.2f}x",
            ">= 0.75x",
            asynchronous["rps"] / floor["rps"] >= 0.75,
            f"{base['rps']:,.0f} req/s",
        ),
        Row(
            "sync trigger, python engine (echo), full lifecycle recorded; against hookgate's async trigger",
            f"{synchronous['rps']:,.0f} req/s",
            f"{asynchronous['rps']:,.0f} req/s",
            f"{synchronous['rps'] / asynchronous['rps']:.2f}x",
            ">= 0.5x",
            synchronous["rps"] / asynchronous["rps"] >= 0.5,
            f"{base['rps']:,.0f} req/s",
        ),
        *postgres_rows(results),
        Row(
            "latency a sync trigger adds at one connection (p50 / p99)",
            f"{sync1['p50_ms']:.2f} / {sync1['p99_ms']:.2f} ms",
            f"{base1['p50_ms']:.2f} / {base1['p99_ms']:.2f} ms",
            f"+{added_p50:.2f} / +{added_p99:.2f} ms",
            "<= +0.5 / +2 ms",
            added_p50 <= 0.5 and added_p99 <= 2.0,
        ),
        ratio_row(
            "outbound deliveries: HMAC-signed 1 KB, settled durably, to a local sink",
            out_hg,
            out_base,
            0.7,
            "/s",
        ),
        *broker_rows(results.get("brokers", {})),
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
            "<= 1.5x",
            spawn / direct <= 1.5,
        ),
        Row(
            f"flow of {flows['steps']:.0f} no-op steps (python engine), per step; against separate sync jobs",
            f"{flows['per_step_ms']:.2f} ms per step",
            f"{flows['per_job_ms']:.2f} ms per job",
            f"{flows['per_step_ms'] / flows['per_job_ms']:.2f}x",
            "<= 2 ms per step",
            flows["per_step_ms"] <= 2.0,
        ),
        ruled_row(results),
        streams_row(results["streams"]),
        *dashboard_rows(results["dashboard"]),
        *history_rows(results.get("history")),
        *peer_rows(results),
        Row(
            "local engine with prefork = true, same script, sync round trip",
            f"{fork:.1f} ms",
            "",
            "",
            "<= 5 ms",
            fork <= 5.0,
        ),
    ]


def postgres_rows(results: dict[str, Any]) -> list[Row]:
    """The async trigger on PostgreSQL against the same on SQLite, in the same run."""
    pg = results.get("async_postgres")
    if not pg:
        return []
    name = "async trigger on the PostgreSQL store; against the same on SQLite"
    if "error" in pg:
        return [Row(f"{name}: not measured ({pg['error']})", "", "", "", ">= 0.5x", False)]
    sqlite = results["async"]["rps"]
    return [
        Row(
            name,
            f"{pg['rps']:,.0f} req/s",
            f"{sqlite:,.0f} req/s",
            f"{pg['rps'] / sqlite:.2f}x",
            ">= 0.5x",
            pg["rps"] / sqlite >= 0.5,
        )
    ]


def history_rows(history: dict[str, Any] | None) -> list[Row]:
    """The sync trigger at one connection with 100,000 finished jobs stored, against an empty store."""
    if not history:
        return []
    full, empty = history["full"]["rps"], history["empty"]["rps"]
    return [
        Row(
            f"sync trigger, one connection, {history['jobs']:,} finished jobs stored; against an empty store",
            f"{full:,.0f} req/s",
            f"{empty:,.0f} req/s",
            f"{full / empty:.2f}x",
            ">= 0.9x",
            full / empty >= 0.9,
        )
    ]


def ruled_row(results: dict[str, Any]) -> Row:
    """The route with a filter and CORS against the same route without, in the same run."""
    plain, ruled = results["async"]["rps"], results["async_ruled"]["rps"]
    return Row(
        "async trigger with a filter and CORS; against the same route without",
        f"{ruled:,.0f} req/s",
        f"{plain:,.0f} req/s",
        f"{ruled / plain:.2f}x",
        ">= 0.9x",
        ruled / plain >= 0.9,
    )


def dashboard_rows(dashboard: dict[str, Any]) -> list[Row]:
    """The runs page and its JSON with ``jobs`` jobs in the store, p95, on each store."""
    found = []
    for store in ("sqlite", "postgres"):
        figures = dashboard.get(store)
        if not figures:
            continue
        base = figures["healthz (baseline)"]
        for page in ("runs page", "jobs JSON"):
            p95 = figures[page]
            found.append(
                Row(
                    f"{page} with {dashboard['jobs']:,} jobs in {store}, p95; against /healthz",
                    f"{p95:.1f} ms",
                    f"{base:.1f} ms",
                    f"{p95 / base:.1f}x",
                    "<= 300 ms",
                    p95 <= 300.0,
                )
            )
    return found


def measure_stages() -> dict[str, Any]:
    """bench/stages.py: the async trigger's stages, each timed alone in process."""
    return _json_from("stages.py")


def stage_table(results: dict[str, Any]) -> list[str]:
    """µs per request by stage, beside what wrk measured: where an async trigger's time goes."""
    stages = results.get("stages") or {}
    if not stages:
        return []
    bare = 1e6 / results["baseline"]["rps"]
    measured = 1e6 / results["async"]["rps"]
    whole = stages["the whole handler (64 in flight, per request)"]
    lines = [
        "",
        "Where an async trigger's time goes (bench/stages.py: each stage alone, in process, µs per request):",
        "",
        "| stage | µs |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value:,.1f} |" for name, value in stages.items()]
    lines += [
        f"| aiohttp's HTTP server: the bare handler's 1e6 / req/s | {bare:,.1f} |",
        f"| the server and the whole handler together | {bare + whole:,.1f} |",
        f"| measured: 1e6 / the async trigger's req/s | {measured:,.1f} |",
    ]
    return lines


def markdown(
    table: list[Row], machine: str, generator: str, args: argparse.Namespace, results: dict[str, Any]
) -> str:
    lines = [
        f"Machine: {machine}. Load: {generator}. Median of {args.repeat} x {args.duration:g} s per figure.",
        "",
        "| scenario | hookgate | baseline, same run | ratio | target | | bare handler |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table:
        verdict = "meets" if row.meets else "**misses**"
        lines.append(
            f"| {row.scenario} | {row.measured} | {row.baseline} | {row.ratio} | {row.target} | {verdict} "
            f"| {row.reference} |"
        )
    return "\n".join(lines + stage_table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, median kept (default 3)")
    parser.add_argument("--deliveries", type=int, default=OUTBOUND_DELIVERIES, help="per outbound run")
    parser.add_argument("--waiters", type=int, default=10_000, help="callback awaits held at once")
    parser.add_argument(
        "--peers", default="", help="peers measured only on demand, comma-separated: n8n (a 3 GB install)"
    )
    parser.add_argument("--render", type=Path, help="render a kept run's figures again, measuring nothing")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    if args.render is not None:
        report(json.loads(args.render.read_text()), args)
        return
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

        def floor() -> Figure:
            port = free_port()
            with durable_floor_server(tmp, port):
                return measure_http(f"http://127.0.0.1:{port}/hooks/async", CONNECTIONS, args, tmp)

        step("durable_floor", floor)
        step("async", lambda: measure_hookgate("/hooks/async", CONNECTIONS, args, tmp))
        step("stages", measure_stages)
        step(
            "async_ruled",
            lambda: measure_hookgate(
                "/hooks/async-ruled", CONNECTIONS, args, tmp, {"Origin": "https://app.example.com"}
            ),
        )
        step("sync", lambda: measure_hookgate("/hooks/sync", CONNECTIONS, args, tmp))
        step("async_postgres", lambda: measure_async_postgres(args, tmp))
        step("baseline_1conn", lambda: baseline(1))
        step("sync_1conn", lambda: measure_hookgate("/hooks/sync", 1, args, tmp))
        step("spawn_1conn", lambda: measure_hookgate("/hooks/spawn", 1, args, tmp))
        step("direct_spawn_ms", lambda: statistics.median(direct_spawn_ms(args.duration) for _ in repeats))
        step("fork_1conn", lambda: measure_hookgate("/hooks/fork", 1, args, tmp))
        step("outbound", lambda: outbound_figures(args, tmp))
        step("brokers", measure_brokers)
        step("callbacks", lambda: measure_callbacks(args.waiters))
        step("flows", lambda: measure_flows(max(5, round(args.duration * 2))))
        step("dashboard", lambda: measure_dashboard(100_000))
        step("streams", lambda: measure_streams(5_000))
        step("history", lambda: measure_history(args))
        step("peers", lambda: measure_peers(args, tmp))
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"run-{time.strftime('%Y%m%dT%H%M%S')}.json"  # kept (ignored by git) before any rendering
    raw.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures kept in {raw}; bench/run.py --render {raw} renders them again", file=sys.stderr)
    report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """The rows and the stage table from one run's figures: latest.json, latest.md, and stdout."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {_cpu()}"
    generator = "wrk" if shutil.which("wrk") else "bench/loadgen.py (install wrk for a faster generator)"
    table = rows(results)
    summary = {
        "machine": machine,
        "generator": generator,
        "time": time.time(),
        "duration": args.duration,
        "repeat": args.repeat,
        "results": results,
        "rows": [asdict(row) for row in table],
    }
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(table, machine, generator, args, results)
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
