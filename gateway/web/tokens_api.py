"""Tokens over HTTP (admin only): list the issued ones, issue a route token, revoke one.

A token is shown once, in the answer that issued it, with a curl example that uses it; the store
keeps its record (label, scopes, expiry, last use), never the token.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.auth.issuing import issue_target_token, target_scopes
from gateway.durations import parse_duration
from gateway.errors import BadRequest
from gateway.http.answers import iso_time, json_response
from gateway.http.live import config_of
from gateway.http.request import origin_of, read_json_object
from gateway.models import TokenRecord
from gateway.state import AUTH, STORE

__all__ = ["curl_example", "issue_token", "list_tokens", "revoke_token", "start_issue", "token_view"]


def token_view(record: TokenRecord) -> dict[str, Any]:
    return {
        "jti": record.jti,
        "label": record.label,
        "subject": record.subject,
        "scopes": list(record.scopes),
        "expires_at": iso_time(record.expires_at),
        "created_at": iso_time(record.created_at),
        "last_used_at": iso_time(record.last_used_at),
        "revoked_at": iso_time(record.revoked_at),
    }


def curl_example(url: str, token: str | None = "$TOKEN", *, method: str = "POST") -> str:
    """What a receiver of the token runs; ``$TOKEN`` stands for it where it is not shown (None: a
    public route, no token)."""
    body = " -H 'Content-Type: application/json' -d '{}'" if method != "GET" else ""
    auth = f' -H "Authorization: Bearer {token}"' if token else ""
    return f"curl -X {method} '{url}'{auth}{body}"


async def list_tokens(request: web.Request) -> web.StreamResponse:
    await request.app[AUTH].require(request, scopes=("admin",))
    records = await request.app[STORE].list_tokens()
    return json_response({"tokens": [token_view(r) for r in records if r.subject is not None]})


async def issue_token(request: web.Request) -> web.StreamResponse:
    """``{"route": "/hooks/x", "label": …, "ttl": "30d", "rate_limit": "100/m"}`` → the token, once."""
    await request.app[AUTH].require(request, scopes=("admin",))
    token, record, url = await start_issue(request, await read_json_object(request))
    return json_response({**token_view(record), "token": token, "curl": curl_example(url, token)}, status=201)


async def start_issue(request: web.Request, wanted: dict[str, Any]) -> tuple[str, TokenRecord, str]:
    """Check what is asked, issue and record the token; also where to call it."""
    route = wanted.get("route")
    routes = {r.path: r for r in config_of(request).routes if r.enabled}
    if not isinstance(route, str) or route not in routes:
        known = ", ".join(sorted(routes)) or "none"
        raise BadRequest(f"route must be one of the configured routes ({known}), got {route!r}")
    label = wanted.get("label") or None
    if label is not None and (not isinstance(label, str) or len(label) > 100):
        raise BadRequest("label must be a string of at most 100 characters")
    try:
        ttl = parse_duration(wanted["ttl"]) if wanted.get("ttl") else None
    except ValueError as exc:
        raise BadRequest(f"ttl: {exc}") from None
    rate = wanted.get("rate_limit") or None
    subject, scopes = target_scopes(route=route, read=wanted.get("read", True) is not False)
    token, record = issue_target_token(
        request.app[AUTH].keys, subject=subject, scopes=scopes, ttl=ttl, label=label, rate_limit=rate
    )
    await request.app[STORE].record_token(record)
    return token, record, origin_of(request) + route  # {name} segments left for the caller to fill


async def revoke_token(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH]
    await auth.require(request, scopes=("admin",))
    jti = request.match_info["jti"]
    await request.app[STORE].revoke_token(jti, now=time.time())
    auth.revoked_here(jti)
    return json_response({"jti": jti, "revoked": True})
