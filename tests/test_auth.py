from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.auth.principals import ADMIN_TOKEN_FILE, Authenticator, Principal, hash_token
from gateway.config import AuthConfig, KeyConfig, UserConfig
from gateway.errors import Forbidden, Unauthorized
from gateway.models import Job, JobOptions
from gateway.store import SQLiteStore

KEYS = (KeyConfig(kid="k1", algorithm="HS256", secret="a-test-secret-that-is-at-least-32-bytes-long"),)
ADMIN = "hg_admin-token"
USER = "hg_user-token"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "h.db")
    await s.open()
    yield s
    await s.close()


def config(**kwargs: object) -> AuthConfig:
    users = (
        UserConfig(
            label="ci", token_hash=hash_token(USER), scopes=("jobs:run:scripts:u/ci/*", "jobs:read:own")
        ),
    )
    return AuthConfig(**{"keys": KEYS, "admin_token_hashes": (hash_token(ADMIN),), "users": users, **kwargs})  # type: ignore[arg-type]


@pytest.fixture
async def auth(store: SQLiteStore, tmp_path: Path) -> AsyncIterator[Authenticator]:
    authenticator = Authenticator(config(), store=store, data_dir=tmp_path)
    async with authenticator.running():
        yield authenticator


def test_scopes_and_wildcards() -> None:
    p = Principal(id="user:x", kind="user", scopes=frozenset({"jobs:run:scripts:u/ci/*", "jobs:read:own"}))
    assert p.allows("jobs:run:scripts:u/ci/deploy")
    assert not p.allows("jobs:run:scripts:u/other")
    assert not p.allows("jobs:read")
    mine = Job(id="j", engine="e", script="s", principal="user:x")
    theirs = Job(id="k", engine="e", script="s", principal="user:y")
    assert p.can_read(mine) and not p.can_read(theirs) and not p.can_cancel(mine)
    assert Principal(id="admin", kind="admin").allows("anything")


async def test_opaque_tokens(auth: Authenticator) -> None:
    assert (await auth.authenticate(ADMIN)).is_admin
    user = await auth.authenticate(USER)
    assert user.id == "user:ci" and user.allows("jobs:run:scripts:u/ci/x")
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate("hg_nope")
    assert info.value.reason_code == "invalid_token"
    assert 'error="invalid_token"' in info.value.headers()["WWW-Authenticate"]


async def test_route_tokens_and_revocation(auth: Authenticator) -> None:
    token, claims = auth.keys.issue(subject="route:/d", scopes=["jobs:run:routes:/d"])
    principal = await auth.authenticate(token)
    assert principal.id == f"token:{claims['jti']}" and principal.kind == "route"
    auth.revoked_here(claims["jti"])
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(token)
    assert info.value.reason_code == "token_revoked"


async def test_job_tokens_are_for_their_own_job(auth: Authenticator) -> None:
    job = Job(id="job-1", engine="e", script="s", options=JobOptions(timeout=10))
    principal = await auth.authenticate(auth.mint_job_token(job, default_timeout=60))
    assert principal.kind == "job" and principal.job_id == "job-1"
    assert principal.can_read(job)
    assert not principal.can_read(Job(id="job-2", engine="e", script="s"))
    assert principal.allows("callbacks:create") and not principal.allows("jobs:read")


async def test_tokens_in_header_or_query(auth: Authenticator) -> None:
    header = make_mocked_request("GET", "/api/jobs", headers={"Authorization": f"Bearer {ADMIN}"})
    assert (await auth.require(header)).is_admin
    query = make_mocked_request("GET", f"/api/jobs?token={ADMIN}")
    assert (await auth.require(query)).is_admin
    with pytest.raises(Unauthorized) as info:
        await auth.require(query, allow_query=False)
    assert info.value.reason_code == "query_token_not_allowed"
    with pytest.raises(Unauthorized) as info:
        await auth.require(make_mocked_request("GET", "/api/jobs"))
    assert info.value.reason_code == "token_required" and info.value.headers()["WWW-Authenticate"].startswith(
        "Bearer"
    )
    user = make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {USER}"})
    with pytest.raises(Forbidden):
        await auth.require(user, scopes=("jobs:read",))


async def test_without_configured_admin_a_token_is_generated_once(store: SQLiteStore, tmp_path: Path) -> None:
    first = Authenticator(config(admin_token_hashes=()), store=store, data_dir=tmp_path)
    async with first.running():
        token_file = tmp_path / ADMIN_TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert (await first.authenticate(token)).is_admin
    assert await store.get_setting("admin_token_hash") == hash_token(token)  # only the hash is stored
    token_file.unlink()
    second = Authenticator(config(admin_token_hashes=()), store=store, data_dir=tmp_path)
    async with second.running():
        assert not token_file.exists()  # not regenerated
        assert (await second.authenticate(token)).is_admin
