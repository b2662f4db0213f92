"""Who is calling, and what they may do.

A token arrives as ``Authorization: Bearer <token>`` or ``?token=<token>`` (when allowed). Two
kinds exist:

- opaque tokens (admin and user tokens): only their SHA-256 is configured or stored, and the hash
  of the presented token is compared in constant time against every known hash;
- JWTs (route tokens and job tokens, see ``gateway.tokens``): verified with the key their ``kid``
  names, then checked against the revoked set, which is refreshed from the store at least once a
  second (a revocation made through the API applies at once).

Scopes follow Windmill's shape: ``jobs:run:scripts:{path}``, ``jobs:run:flows:{path}``,
``jobs:run:routes:{route}``,
``jobs:read``, ``jobs:read:own``, ``jobs:cancel``, ``jobs:cancel:own``, ``callbacks:create``,
``admin``. A scope ending in ``*`` grants every scope it prefixes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.auth.tokens import KEY_FILE, KeyRing, TokenError
from gateway.config import AuthConfig
from gateway.durations import Rate, parse_rate
from gateway.errors import Forbidden, Unauthorized
from gateway.models import Job
from gateway.store import Store

__all__ = [
    "ADMIN_TOKEN_FILE",
    "JOB_SCOPES",
    "Authenticator",
    "Principal",
    "hash_token",
    "new_opaque_token",
]

log = logging.getLogger("hookgate.auth")

ADMIN_TOKEN_SETTING = "admin_token_hash"
ADMIN_TOKEN_FILE = "admin.token"
JOB_SCOPES = ("callbacks:create", "jobs:read:own", "steps:report")
# What an admin's job may do with its own token: run, read and cancel jobs, never manage tokens.
ADMIN_JOB_CEILING = ("jobs:run:scripts:*", "jobs:run:flows:*", "jobs:read", "jobs:cancel")
REVOCATION_REFRESH = 0.5  # "within a second", with room to spare
TOUCH_INTERVAL = 60.0
PRINCIPAL_CACHE = 10_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return "hg_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    id: str
    kind: str  # "admin", "user", "route", "job"
    scopes: frozenset[str] = field(default_factory=frozenset)
    jti: str | None = None
    job_id: str | None = None
    rate_limit: Rate | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin" or "admin" in self.scopes

    def allows(self, scope: str) -> bool:
        if self.is_admin or scope in self.scopes:
            return True
        return any(s.endswith("*") and scope.startswith(s[:-1]) for s in self.scopes)

    def owns(self, job: Job) -> bool:
        return job.principal == self.id or self.job_id == job.id

    def can_read(self, job: Job) -> bool:
        return self.allows("jobs:read") or (self.allows("jobs:read:own") and self.owns(job))

    def can_cancel(self, job: Job) -> bool:
        return self.allows("jobs:cancel") or (self.allows("jobs:cancel:own") and self.owns(job))

    def delegable_scopes(self) -> tuple[str, ...]:
        """The most a job this principal starts may do with its own token (its scopes, never more)."""
        if self.is_admin:
            return ADMIN_JOB_CEILING
        return tuple(sorted(self.scopes))


def _principal_of(jti: str, claims: dict[str, Any]) -> Principal:
    subject = str(claims["sub"])
    scopes = frozenset(str(s) for s in claims["scope"])
    if subject.startswith("job:"):
        return Principal(id=subject, kind="job", scopes=scopes, jti=jti, job_id=subject.removeprefix("job:"))
    rate = claims.get("rate_limit")
    return Principal(
        id=f"token:{jti}",
        kind="route",
        scopes=scopes,
        jti=jti,
        rate_limit=parse_rate(rate) if isinstance(rate, str) else None,
    )


class Authenticator:
    def __init__(
        self,
        config: AuthConfig,
        *,
        store: Store,
        keys: KeyRing | None = None,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._keys = keys
        self._key_file_version: tuple[int, int] | None = None
        self.store = store
        self.data_dir = data_dir
        self.clock = clock
        self._admin_hashes: tuple[str, ...] = config.admin_token_hashes
        self._users = {u.token_hash: u for u in config.users}
        self._revoked: set[str] = set()
        self._touched: dict[str, float] = {}
        self._principals: dict[str, Principal] = {}  # by jti, built once from its verified claims

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def keys(self) -> KeyRing:
        if self._keys is None:
            raise RuntimeError("the JWT keys are not loaded yet")
        return self._keys

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Load the keys (generating them once when none are configured), then serve."""
        if self._keys is None:
            self._keys = KeyRing.load(self.config, self.data_dir)
        self._key_file_version = self._key_file_stamp()
        await self._bootstrap_admin()
        self._revoked = await self.store.revoked_tokens()
        task = asyncio.create_task(self._refresh_revocations())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _bootstrap_admin(self) -> None:
        """With no admin token configured, make one at the first start; keep only its hash."""
        if self._admin_hashes:
            return
        stored = await self.store.get_setting(ADMIN_TOKEN_SETTING)
        if stored is None:
            token = new_opaque_token()
            stored = await self.store.set_setting_if_absent(ADMIN_TOKEN_SETTING, hash_token(token))
            if stored == hash_token(token):
                self._hand_over_admin_token(token)
        self._admin_hashes = (stored,)

    def _hand_over_admin_token(self, token: str) -> None:
        if sys.stdout.isatty():
            print(f"\nhookgate admin token (shown once; only its hash is kept):\n\n    {token}\n", flush=True)
            return
        path = self.data_dir / ADMIN_TOKEN_FILE
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        log.warning("generated an admin token; it is in %s (mode 0600): read it, then delete the file", path)

    async def _refresh_revocations(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_REFRESH)  # a period: revocations by other processes
            try:
                self._revoked = await self.store.revoked_tokens()
            except Exception:
                log.exception("refreshing the revoked tokens failed")
            self._reload_rotated_keys()

    def _key_file_stamp(self) -> tuple[int, int] | None:
        """The generated key file's identity, when the keys come from it (not from the configuration)."""
        if self.config.keys:
            return None
        try:
            stat = (self.data_dir / KEY_FILE).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def _reload_rotated_keys(self) -> None:
        """``hookgate token rotate-key`` rewrites the key file (atomically): take its keys at once, so a
        token signed with the new key is accepted within a refresh period, without a restart."""
        stamp = self._key_file_stamp()
        if stamp is None or stamp == self._key_file_version:
            return
        try:
            self._keys = KeyRing.load(self.config, self.data_dir)
        except (OSError, ValueError, KeyError):
            log.exception("reading the rotated JWT keys failed; the previous keys stay in use")
            return
        self._key_file_version = stamp
        log.info("JWT keys reloaded after a rotation (%d keys)", len(self._keys.keys))

    def take_tokens(self, config: AuthConfig) -> None:
        """A reload: the configured admin and user tokens from now on. A token taken out of the file
        stops working at once, and so do the dashboard sessions it opened. With no admin token
        left in the file, the current ones stay (the generated one comes back only at a start)."""
        if config.admin_token_hashes:
            self._admin_hashes = config.admin_token_hashes
        self._users = {u.token_hash: u for u in config.users}
        self.config = replace(self.config, admin_token_hashes=config.admin_token_hashes, users=config.users)

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def knows_opaque(self, token_hash: str) -> bool:
        """The opaque token with this hash is still an admin's or a user's (a reload may drop it)."""
        return any(hmac.compare_digest(token_hash, known) for known in (*self._admin_hashes, *self._users))

    def revoked_here(self, jti: str) -> None:
        """A revocation made through this process's API applies at once."""
        self._revoked.add(jti)

    # --- authentication ---------------------------------------------------------------------------

    def presented_token(self, request: web.Request, *, allow_query: bool | None = None) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        query_allowed = self.config.allow_query_token if allow_query is None else allow_query
        token = request.query.get("token")
        if token and not query_allowed:
            raise Unauthorized(
                "tokens in the query string are not allowed here; send Authorization: Bearer",
                code="query_token_not_allowed",
                bearer_error="invalid_request",
            )
        return token or None

    async def require(
        self, request: web.Request, *, scopes: tuple[str, ...] = (), allow_query: bool | None = None
    ) -> Principal:
        """The caller, holding at least one of ``scopes`` (any principal when none are given)."""
        token = self.presented_token(request, allow_query=allow_query)
        if token is None:
            raise Unauthorized("a token is required: Authorization: Bearer <token>", code="token_required")
        principal = await self.authenticate(token)
        if scopes and not any(principal.allows(scope) for scope in scopes):
            raise Forbidden(f"this token does not allow {scopes[0]}", details={"required": list(scopes)})
        return principal

    async def authenticate(self, token: str) -> Principal:
        if token.count(".") == 2:
            return await self._from_jwt(token)
        return self._from_opaque(token)

    def _from_opaque(self, token: str) -> Principal:
        digest = hash_token(token)
        is_admin = False
        for known in self._admin_hashes:
            is_admin |= hmac.compare_digest(digest, known)
        if is_admin:
            return Principal(id="admin", kind="admin")
        user = None
        for known, candidate in self._users.items():
            if hmac.compare_digest(digest, known):
                user = candidate
        if user is None:
            raise Unauthorized("the token is not valid", code="invalid_token", bearer_error="invalid_token")
        return Principal(
            id=f"user:{user.label}",
            kind="user",
            scopes=frozenset(user.scopes),
            rate_limit=parse_rate(user.rate_limit) if user.rate_limit else None,
        )

    async def _from_jwt(self, token: str) -> Principal:
        try:
            claims = self.keys.decode(token)
        except TokenError as exc:
            raise Unauthorized(exc.message, code=exc.code, bearer_error="invalid_token") from None
        jti = str(claims["jti"])
        if jti in self._revoked:
            raise Unauthorized(
                "the token has been revoked", code="token_revoked", bearer_error="invalid_token"
            )
        principal = self._principals.get(jti)
        if principal is None:
            principal = _principal_of(jti, claims)
            if len(self._principals) >= PRINCIPAL_CACHE:
                self._principals.clear()
            self._principals[jti] = principal  # claims never change for a jti; only revocation does
        if principal.kind == "route":
            await self._touch(jti)
        return principal

    async def _touch(self, jti: str) -> None:
        """Record 'last used' at most once a minute per token: not a write on every request."""
        now = self.clock()
        if now - self._touched.get(jti, 0.0) < TOUCH_INTERVAL:
            return
        self._touched[jti] = now
        try:
            await self.store.touch_token(jti, now=now)
        except Exception:
            log.exception("recording the use of token %s failed", jti)

    # --- job tokens -------------------------------------------------------------------------------

    def mint_job_token(self, job: Job, *, default_timeout: float) -> str:
        """The job's own token: its own scopes, plus at most those of the principal that started it."""
        lifetime = (job.options.timeout or default_timeout) + self.config.job_token_grace
        scopes = sorted({*JOB_SCOPES, *(job.principal_scopes or ())})  # never more than who started it
        token, _ = self.keys.issue(subject=f"job:{job.id}", scopes=scopes, ttl=lifetime, now=self.clock())
        return token
