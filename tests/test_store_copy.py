"""Moving a SQLite installation to PostgreSQL: everything arrives, once, however often it runs."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from pg import DSN, fresh_schema

from gateway.cli.main import main
from gateway.models import (
    Attempt,
    CallbackCall,
    CallbackEndpoint,
    Delivery,
    FlowAdvance,
    Job,
    JobQuery,
    JobState,
    Operation,
    RouteMinute,
    ScriptVersion,
    TokenRecord,
)
from gateway.store import Idempotency, SQLiteStore
from gateway.store.postgres import PostgresStore

PROGRESS = {"steps": {"a": {"state": "running", "job": "job-2.a"}}}


async def seed(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    jobs = [
        Job(
            id=f"job-{n}",
            engine="local",
            script="u/s",
            created_at=float(n),
            run_after=float(n),
            args={"n": n},
        )
        for n in range(3)
    ]
    await store.create_jobs(jobs[:1], idempotency=Idempotency(key="/r|d-1", expires_at=1e12, now=1.0))
    await store.create_jobs(jobs[1:])
    await store.transition(
        "job-0", from_states=[JobState.QUEUED], to=JobState.SUCCEEDED, changes={"result": {"ok": 1}}
    )
    await store.save_script_version(
        ScriptVersion(
            hash="ab" * 32, engine="local", path="u/s", filename="s.py", content=b"def main(): pass"
        )
    )
    await store.record_token(
        TokenRecord(jti="t1", label="ci", subject="route:/r", scopes=("jobs:read",), created_at=1.0)
    )
    await store.revoke_token("t2", now=2.0)
    await store.set_setting_if_absent("admin_token_hash", "f" * 64)
    endpoint = CallbackEndpoint(
        id="cb-1", job_id="job-1", token_hash="h" * 64, method="POST", expires_at=1e12, created_at=1.0
    )
    await store.create_callback(endpoint)
    await store.record_callback_call(
        "h" * 64, CallbackCall(method="POST", headers={}, query={}, body={"x": 1}, received_at=5.0)
    )
    delivery = Delivery(
        id="msg_1",
        subscription="ops",
        event_id="e",
        event_type="WorkflowCompleted",
        url="https://x",
        body=b"{}",
        content_type="application/json",
        created_at=1.0,
        next_attempt_at=1.0,
        job_id="job-0",
    )
    await store.enqueue_deliveries([delivery])
    step = Job(id="job-2.a", engine="local", script="u/s", parent_job="job-2", flow_step="a")
    assert await store.advance_flow(
        FlowAdvance(
            run_id="job-2", version=0, state=PROGRESS, flow="f/x", flow_hash="cd" * 32, creates=(step,)
        )
    )
    await store.settle_delivery(
        Attempt("msg_1", 1, 2.0, 3.0, status=503), state="pending", next_attempt_at=9.0
    )
    await store.transition("job-1", from_states=[JobState.QUEUED], to=JobState.RUNNING)
    await store.append_job_logs("job-1", "one\n", limit=1024)
    await store.append_job_logs("job-1", "two\n", limit=1024)
    await store.create_operation(
        Operation(
            id="op-1", kind="retry_deliveries", params={"subscription": "ops"}, matched=1, created_at=4.0
        )
    )
    await store.add_route_minutes(
        [RouteMinute("/r", 7, requests=3, errors=1, last_error="x", last_error_at=420.0)]
    )
    await store.close()


async def test_copy_is_complete_and_idempotent(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "hookgate.db"
    await seed(source)
    async with fresh_schema() as schema:
        args = ["store", "copy", "--from", f"sqlite:///{source}", "--to", DSN, "--schema", schema]
        assert await _run(args) == 0
        first = capsys.readouterr().out
        assert "jobs" in first and "inserted        4" in first
        assert await _run(args) == 0  # again: nothing is copied twice
        assert "inserted        4" not in capsys.readouterr().out
        target = PostgresStore(DSN, schema=schema)
        await target.open()
        try:
            page = await target.list_jobs(JobQuery(limit=10))
            assert [j.id for j in page.items] == ["job-2.a", "job-2", "job-1", "job-0"]  # order kept
            run = await target.get_flow_run("job-2")
            assert run is not None and run.state == PROGRESS and run.version == 1
            assert [(j.id, j.flow_step) for j in await target.child_jobs("job-2")] == [("job-2.a", "a")]
            done = await target.get_job("job-0")
            assert done is not None and done.result == {"ok": 1} and done.state is JobState.SUCCEEDED
            assert (await target.get_script_version("ab" * 32)) is not None
            assert await target.revoked_tokens() == {"t2"}
            assert [t.jti for t in await target.list_tokens() if t.label == "ci"] == ["t1"]
            assert await target.get_setting("admin_token_hash") == "f" * 64
            call = await target.take_callback_call("cb-1", now=10.0)
            assert call is not None and call.body == {"x": 1}
            assert [a.status for a in await target.list_attempts(["msg_1"])] == [503]
            assert (await target.get_delivery("msg_1")).next_attempt_at == 9.0  # type: ignore[union-attr]
            operation = await target.get_operation("op-1")
            assert operation is not None and operation.params == {"subscription": "ops"}
            (activity,) = await target.route_activity(since_minute=0)
            assert (activity.route, activity.requests, activity.last_error) == ("/r", 3, "x")
            copied = await target.job_log_chunks("job-1")
            assert [c.text for c in copied] == ["one\n", "two\n"]
            await target.append_job_logs("job-1", "three\n", limit=1024)  # numbered after the copied
            assert [c.seq for c in await target.job_log_chunks("job-1", after=copied[-1].seq)] != []
        finally:
            await target.close()
        conn = await asyncpg.connect(DSN, server_settings={"search_path": schema})
        try:
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 1
        finally:
            await conn.close()


async def _run(args: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, args)
