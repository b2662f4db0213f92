"""Cost that must not grow with history: the sync trigger at one connection on an empty store, and on
a store that already holds ``--jobs`` finished jobs of the same route.

The jobs are written to the SQLite file before the gateway starts, as the triggers would have left
them (same engine, script, route, a 1 KB body, a result), created within the retention window so
that no sweep runs during the measurement. Prints JSON: both figures, with ``make bench``'s load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import orjson

BENCH = Path(__file__).parent
REPO = BENCH.parent


async def seed(database: Path, count: int) -> None:
    """``count`` finished sync jobs of /hooks/sync, in batches as a group commit would write them."""
    sys.path.insert(0, str(REPO))
    from gateway.jobs.lifecycle import new_job_id
    from gateway.models import Job, JobState
    from gateway.store.sqlite import SQLiteStore

    store = SQLiteStore(database)
    await store.open()
    try:
        now = time.time()
        body = orjson.loads(_body())
        for start in range(0, count, 5000):
            batch = []
            for n in range(start, min(count, start + 5000)):
                created = now - 1800 + n * 1700 / count
                batch.append(
                    Job(
                        id=new_job_id(),
                        engine="py",
                        script="bench/echo",
                        route="/hooks/sync",
                        created_at=created,
                        run_after=created,
                        state=JobState.SUCCEEDED,
                        started_at=created + 0.001,
                        finished_at=created + 0.002,
                        args=body,
                        result=body,
                    )
                )
            await store.create_jobs(batch)
    finally:
        await store.close()


def _body() -> bytes:
    import run

    return run.body_1kb()


def measure(jobs: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """The sync route at one connection with ``jobs`` finished jobs already stored."""
    import run

    port = run.free_port()
    (tmp / f"data-{port}").mkdir()
    asyncio.run(seed(tmp / f"data-{port}" / "hookgate.db", jobs))
    server, config = run.hookgate_server(tmp, port)
    with server:
        route = "/hooks/sync"
        headers = {"Authorization": f"Bearer {run.route_token(config, route)}"}
        return asdict(run.measure_http(f"http://127.0.0.1:{port}{route}", 1, args, tmp, headers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        empty = measure(0, args, tmp)
        full = measure(args.jobs, args, tmp)
    print(json.dumps({"jobs": args.jobs, "empty": empty, "full": full}))


if __name__ == "__main__":
    main()
