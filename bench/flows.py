"""The gateway's own cost per flow step: a run of 20 no-op steps against 20 separate jobs.

Starts a real gateway with a python engine whose (async) function returns its arguments at once, so
what is measured is hookgate: for the flow, each step's job created in the run's advance, claimed,
recorded with the run's next advance (progress, events, the next job) and the run's end; for the
baseline, 20 sync triggers of the same function over HTTP, one after the other. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

BENCH = Path(__file__).parent
REPO = BENCH.parent
TOKEN = "hg_bench-admin-token"
STEPS = 20
CONFIG = """
[auth]
admin_token_hashes = ["{hash}"]
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data}"
[flows]
dir = "{flows}"
[[engines]]
name = "py"
type = "python"
concurrency = 100
functions = {{ "bench/noop" = "bench_funcs:noop" }}
"""


def flow_file() -> str:
    steps = "".join(
        f'[[steps]]\nid = "s{n}"\nscript = "bench/noop"\ninput = {{ n = {n} }}\n' for n in range(STEPS)
    )
    return f'result = "${{results.s{STEPS - 1}.n}}"\n' + steps


async def measure(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from run import free_port  # type: ignore[import-not-found]

        port = free_port()
        flows = tmp / "flows" / "f"
        flows.mkdir(parents=True)
        (flows / "noop.flow.toml").write_text(flow_file())
        config = tmp / "g.toml"
        token_hash = hashlib.sha256(TOKEN.encode()).hexdigest()
        config.write_text(CONFIG.format(hash=token_hash, port=port, data=tmp / "d", flows=tmp / "flows"))
        env = {**os.environ, "PYTHONPATH": str(BENCH)}
        gateway = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert gateway.stdout is not None
        gateway.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:

                async def one_run() -> float:
                    started = time.perf_counter()
                    async with s.post(f"{url}/api/run_wait_result/f/noop", json={}) as r:
                        assert r.status == 200 and await r.json() == STEPS - 1, await r.text()
                    return time.perf_counter() - started

                async def twenty_jobs() -> float:
                    started = time.perf_counter()
                    for n in range(STEPS):
                        async with s.post(f"{url}/api/run_wait_result/bench/noop", json={"n": n}) as r:
                            assert r.status == 200, await r.text()
                    return time.perf_counter() - started

                for _ in range(3):  # warm-up: imports, the first connections, SQLite's cache
                    await one_run()
                    await twenty_jobs()
                flow_times = [await one_run() for _ in range(runs)]
                job_times = [await twenty_jobs() for _ in range(runs)]
        finally:
            gateway.terminate()
            gateway.wait(10)
    per_step = statistics.median(flow_times) / STEPS * 1000
    per_job = statistics.median(job_times) / STEPS * 1000
    return {"steps": STEPS, "per_step_ms": per_step, "per_job_ms": per_job}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs measured (median kept)")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    print(json.dumps(asyncio.run(measure(args.runs))))


if __name__ == "__main__":
    main()
