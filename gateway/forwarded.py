"""Who the client is and which URL it used, believing X-Forwarded-* only from trusted proxies.

A proxy listed in ``[server] trusted_proxies`` (addresses or networks) sets ``X-Forwarded-For``,
``-Proto`` and ``-Host``; from anyone else those headers are ignored, since any client can send them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

__all__ = ["Networks", "client_ip", "origin", "parse_networks"]

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` → networks; raises ``ValueError`` naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"expected an address or network such as 10.0.0.0/8, got {value!r}") from None
    return tuple(networks)


def _trusted(address: str | None, trusted: Networks) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(request: web.BaseRequest, trusted: Networks) -> str | None:
    """The nearest address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.remote
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def origin(request: web.BaseRequest, trusted: Networks) -> str:
    """``scheme://host`` as the client saw it."""
    if _trusted(request.remote, trusted):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https") and host:
            return f"{proto}://{host}"
    return f"{request.scheme}://{request.host}"
