"""Dashboard sessions: a token, pasted once, opens a session kept in the store.

The cookie names the session (256 random bits; the store keeps only their SHA-256), so every
replica on one PostgreSQL accepts it. A session holds the principal and scopes of the token it was
opened with, never the token. It ends on sign-out, when it has been idle for ``[ui] idle_timeout``,
when its JWT is revoked, and when its opaque token is no longer an admin's or user's. Every action
is a POST carrying the session's CSRF token, from the dashboard's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from gateway.auth.principals import Principal, hash_token
from gateway.errors import Forbidden, Unauthorized
from gateway.http.live import config_of
from gateway.http.request import origin_of
from gateway.models import UiSession
from gateway.state import AUTH, STORE

__all__ = ["COOKIE", "Signed", "check_action", "end", "open_session", "require_admin", "signed_in"]

COOKIE = "hookgate_session"
TOUCH_EVERY = 60.0
"""A session's last use is written at most this often (not on every page)."""


@dataclass(frozen=True)
class Signed:
    session: UiSession
    principal: Principal


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def open_session(request: web.Request, token: str) -> tuple[Signed, str]:
    """Check the token as the API would; a route or job token opens no dashboard session."""
    principal = await request.app[AUTH].authenticate(token.strip())
    if principal.kind == "job" or not (principal.allows("jobs:read") or principal.allows("jobs:read:own")):
        raise Forbidden("this token cannot read jobs: the dashboard needs an admin, user or route token")
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    session = UiSession(
        id_hash=_digest(session_id),
        principal=principal.id,
        kind=principal.kind,
        scopes=tuple(sorted(principal.scopes)),
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        last_seen=now,
        jti=principal.jti,
        token_hash=None if principal.jti else hash_token(token.strip()),
    )
    await request.app[STORE].create_ui_session(session)
    return Signed(session, principal), session_id


async def signed_in(request: web.Request) -> Signed | None:
    """The request's live session, or None (no cookie, unknown, idle, or its token withdrawn)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    store, auth = request.app[STORE], request.app[AUTH]
    session = await store.get_ui_session(_digest(session_id))
    if session is None:
        return None
    now = time.time()
    withdrawn = (session.jti is not None and auth.is_revoked(session.jti)) or (
        session.token_hash is not None and not auth.knows_opaque(session.token_hash)
    )
    if withdrawn or now - session.last_seen > config_of(request).ui.idle_timeout:
        await store.end_ui_session(session.id_hash)
        return None
    if now - session.last_seen > TOUCH_EVERY:
        await store.touch_ui_session(session.id_hash, now=now)
    principal = Principal(
        id=session.principal, kind=session.kind, scopes=frozenset(session.scopes), jti=session.jti
    )
    return Signed(session, principal)


async def end(request: web.Request, signed: Signed) -> None:
    await request.app[STORE].end_ui_session(signed.session.id_hash)


async def check_action(request: web.Request, signed: Signed) -> dict[str, str]:
    """A dashboard action: a POST from the dashboard's own origin with the session's CSRF token.
    Returns the form."""
    _same_origin(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    if not hmac.compare_digest(form.get("csrf", ""), signed.session.csrf):
        raise Forbidden("this action lacks the dashboard's CSRF token: reload the page and try again")
    return form


def _same_origin(request: web.Request) -> None:
    sent = request.headers.get("Origin")
    if sent is None:
        site = request.headers.get("Sec-Fetch-Site")
        if site not in (None, "same-origin", "none"):
            raise Forbidden("a dashboard action must come from the dashboard itself")
        return
    if sent.rstrip("/") not in (origin_of(request), f"{request.scheme}://{request.host}"):
        raise Forbidden(
            "a dashboard action must come from the dashboard itself", details={"origin": "foreign"}
        )


def require_admin(signed: Signed, what: str) -> None:
    """Pages over everybody's records (deliveries, routes, tokens) are the operator's."""
    if not signed.principal.is_admin:
        raise Forbidden(f"{what} are the operator's: an admin token's session sees them")


def require(signed: Signed | None) -> Signed:
    if signed is None:
        raise Unauthorized("sign in first", code="session_required")
    return signed
