"""Dashboard sessions in the store, on both backends."""

from __future__ import annotations

from gateway.models import UiSession
from gateway.store import Store


async def test_sessions_are_kept_touched_ended_and_purged(store: Store) -> None:
    fresh = UiSession("h1", "admin", "admin", (), "c1", created_at=1.0, last_seen=1.0, token_hash="t" * 64)
    idle = UiSession("h2", "user:r", "user", ("jobs:read",), "c2", created_at=1.0, last_seen=1.0, jti="j")
    await store.create_ui_session(fresh)
    await store.create_ui_session(idle)
    assert await store.get_ui_session("h2") == idle
    await store.touch_ui_session("h1", now=50.0)
    assert await store.purge_ui_sessions(idle_before=10.0) == 1
    assert await store.get_ui_session("h2") is None
    kept = await store.get_ui_session("h1")
    assert kept is not None and kept.last_seen == 50.0 and kept.token_hash == "t" * 64
    await store.end_ui_session("h1")
    await store.end_ui_session("h1")  # idempotent
    assert await store.get_ui_session("h1") is None
