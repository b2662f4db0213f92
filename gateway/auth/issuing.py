"""Issuing a token for one target: what ``hookgate token issue`` and ``POST /api/tokens`` share.

A route token may trigger one route (or a script or flow by path) and read the jobs it started,
nothing else: safe to hand to a third party. The store records it (label, scopes, expiry) so that
it can be listed and revoked; the token itself is shown once and kept nowhere.
"""

from __future__ import annotations

import time

from gateway.auth.tokens import KeyRing
from gateway.models import TokenRecord

__all__ = ["issue_target_token", "target_scopes"]


def target_scopes(
    *, route: str | None = None, flow: str | None = None, script: str | None = None, read: bool = True
) -> tuple[str, list[str]]:
    """The subject and scopes of a token for exactly one of ``route``, ``flow`` or ``script``."""
    if route is not None:
        subject, scopes = f"route:{route}", [f"jobs:run:routes:{route}"]
    elif flow is not None:
        path = flow.strip("/")
        subject, scopes = f"flow:{path}", [f"jobs:run:flows:{path}"]
    elif script is not None:
        path = script.strip("/")
        subject, scopes = f"script:{path}", [f"jobs:run:scripts:{path}"]
    else:
        raise ValueError("a token is for a route, a flow or a script")
    if read:
        scopes.append("jobs:read:own")
    return subject, scopes


def issue_target_token(
    keys: KeyRing,
    *,
    subject: str,
    scopes: list[str],
    ttl: float | None = None,
    label: str | None = None,
    rate_limit: str | None = None,
) -> tuple[str, TokenRecord]:
    """The token (shown once) and the record the store keeps of it."""
    token, claims = keys.issue(
        subject=subject, scopes=scopes, ttl=ttl, label=label, rate_limit=rate_limit, now=time.time()
    )
    record = TokenRecord(
        jti=claims["jti"],
        label=label,
        subject=subject,
        scopes=tuple(scopes),
        expires_at=claims.get("exp"),
        created_at=claims["iat"],
    )
    return token, record
