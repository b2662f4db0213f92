"""Callback endpoints in the store and the callbacks module, against a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.callbacks import endpoints as callbacks
from gateway.callbacks.approval import approval_page, approval_unavailable
from gateway.errors import BadRequest, Gone, MethodNotAllowed, NotFound, UnprocessableEntity
from gateway.models import CallbackCall, CallbackEndpoint, Job, JobState
from gateway.store import CallRefused, SQLiteStore

NOW = 1000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "h.db")
    await s.open()
    await s.create_jobs(
        [Job(id="job", engine="e", script="s", state=JobState.RUNNING, created_at=1, run_after=1)]
    )
    yield s
    await s.close()


def a_call(body: object = None, method: str = "POST", at: float = NOW) -> CallbackCall:
    return CallbackCall(method=method, headers={}, query={}, body=body, received_at=at)


async def new_endpoint(store: SQLiteStore, **request: object) -> tuple[CallbackEndpoint, str]:
    job = await store.get_job("job")
    assert job is not None
    return await callbacks.create_endpoint(store, job, request, now=NOW, max_timeout=3600)


@pytest.mark.parametrize(
    "request_body",
    [
        {"method": "FETCH"},
        {"timeout": 0},
        {"timeout": 10_000},
        {"timeout": True},
        {"max_calls": 0},
        {"schema": {"type": "nonsense"}},
        {"approval": "yes"},
        {"approval": {"title": "t"}, "method": "GET"},
    ],
)
async def test_create_refuses_bad_requests(store: SQLiteStore, request_body: dict) -> None:
    with pytest.raises(BadRequest):
        await new_endpoint(store, **request_body)


async def test_one_shot_under_concurrent_calls(store: SQLiteStore) -> None:
    _, token = await new_endpoint(store)
    outcomes = await asyncio.gather(
        *(callbacks.receive_call(store, token, a_call({"n": n})) for n in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, Gone) for o in outcomes if isinstance(o, Exception))


async def test_refusals(store: SQLiteStore) -> None:
    _, token = await new_endpoint(store, method="PUT", timeout=10)
    with pytest.raises(NotFound):
        await callbacks.receive_call(store, "nope", a_call())
    with pytest.raises(MethodNotAllowed):
        await callbacks.receive_call(store, token, a_call(method="POST"))
    with pytest.raises(Gone, match="expired"):
        await callbacks.receive_call(store, token, a_call(method="PUT", at=NOW + 10))
    with pytest.raises(CallRefused) as info:
        await store.record_callback_call(
            callbacks.hash_callback_token(token), a_call(method="PUT", at=NOW + 11)
        )
    assert info.value.reason == "expired"


async def test_schema_failures_keep_the_endpoint_open(store: SQLiteStore) -> None:
    _, token = await new_endpoint(store, schema={"type": "object", "required": ["ok"]})
    with pytest.raises(UnprocessableEntity) as info:
        await callbacks.receive_call(store, token, a_call({"nope": 1}))
    assert info.value.details["problems"][0]["message"] == "'ok' is a required property"
    await callbacks.receive_call(store, token, a_call({"ok": True}))


async def test_calls_are_taken_in_order_once(store: SQLiteStore) -> None:
    endpoint, token = await new_endpoint(store, max_calls=2)
    await callbacks.receive_call(store, token, a_call("first"))
    await callbacks.receive_call(store, token, a_call("second"))
    first = await store.take_callback_call(endpoint.id, now=NOW)
    second = await store.take_callback_call(endpoint.id, now=NOW, erase=True)
    assert (first and first.body, second and second.body) == ("first", "second")
    assert await store.take_callback_call(endpoint.id, now=NOW) is None
    async with store._db().execute("SELECT body FROM callback_calls ORDER BY seq") as cur:
        stored = [row[0] for row in await cur.fetchall()]
    assert stored == ['"first"', None]  # taken with erase (delete_after_use): its content is gone


async def test_await_wakes_on_the_call(store: SQLiteStore) -> None:
    endpoint, token = await new_endpoint(store)
    waiter = asyncio.create_task(callbacks.await_call(store, endpoint, timeout=30, clock=lambda: NOW))
    await asyncio.sleep(0)
    assert not waiter.done()
    await callbacks.receive_call(store, token, a_call("hello"))
    call = await asyncio.wait_for(waiter, 5)
    assert call is not None and call.body == "hello"
    nothing = await callbacks.await_call(store, endpoint, timeout=0.05, clock=lambda: NOW)
    assert nothing is None


async def test_the_token_is_not_stored(store: SQLiteStore, tmp_path: Path) -> None:
    _, token = await new_endpoint(store)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("h.db*") if not p.name.endswith(".lock"))
    assert token.encode() not in stored
    assert callbacks.hash_callback_token(token).encode() in stored


def test_approval_page_escapes_what_the_job_wrote() -> None:
    page = approval_page(
        {"title": "<img src=x onerror=alert(1)>", "details": "</div><script>alert(2)</script>"}
    )
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert 'name="decision" value="approve"' in page and 'name="decision" value="reject"' in page
    assert "already used" in approval_unavailable("used") and "expired" in approval_unavailable("expired")


def test_suspensions_count_nested_awaits() -> None:
    suspensions = callbacks.Suspensions()
    assert suspensions.enter("j") is True
    assert suspensions.enter("j") is False
    assert suspensions.leave("j") is False
    assert suspensions.leave("j") is True and suspensions.count() == 0
