"""Celery tasks the celery-engine tests run on a real worker (started by the test fixture).

``acks_late`` with a prefetch of 1 and a short visibility timeout: a worker killed mid-task leaves
its message unacknowledged, and a restarted worker gets it again within seconds.
"""

from __future__ import annotations

import os
import pathlib
import time

from celery import Celery

from gateway.client import celery_job_info

BROKER = os.environ.get("HOOKGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("hookgate_test", broker=BROKER, backend=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="hg.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="hg.fail")
def fail(message: str = "celery says no") -> None:
    raise ValueError(message)


@app.task(name="hg.sleep")
def sleep(seconds: float = 1.0, marker: str = "") -> str:
    if marker:
        path = pathlib.Path(marker)
        runs = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(runs))
    time.sleep(seconds)
    return "slept"


@app.task(bind=True, name="hg.whoami")
def whoami(self) -> dict[str, object]:  # type: ignore[no-untyped-def]
    info = celery_job_info(self)
    return {"job_id": info.job_id if info else None, "has_token": bool(info and info.job_token)}
