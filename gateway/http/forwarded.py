"""Who the client is and which URL it used, believing X-Forwarded-* only from trusted proxies.

A proxy listed in ``[server] trusted_proxies`` (addresses or networks) sets ``X-Forwarded-For``,
``-Proto`` and ``-Host``; from anyone else those headers are ignored, since any client can send them.

The host of the URLs hookgate hands out (status URLs, callback and approval URLs) is never taken
from a request alone: a caller who sends ``Host: attacker`` would otherwise receive, and make jobs
send their tokens to, a URL of its choosing. It is ``public_url`` when set; otherwise the forwarded
or ``Host`` host of a request that came through a trusted proxy *and* names a host listed in
``allowed_hosts``; otherwise the address the gateway listens on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

__all__ = ["Networks", "client_ip", "host_allowed", "listening_url", "public_origin"]

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


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


def listening_url(host: str, port: int) -> str:
    """``http://host:port`` of the listening socket; a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _hostname(host: str) -> str:
    """``Example.com:8443`` → ``example.com``; ``[::1]:80`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Django's rule: an exact name (port ignored), ``.example.com`` or ``*.example.com`` for
    subdomains, and ``*`` for any host."""
    name = _hostname(host)
    if not name or any(c in name for c in "/\\@ \t\r\n"):
        return False
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == "*" or pattern == name:
            return True
        suffix = pattern[1:] if pattern.startswith("*.") else pattern if pattern.startswith(".") else None
        if suffix and (name.endswith(suffix) or name == suffix[1:]):
            return True
    return False


def public_origin(
    request: web.BaseRequest, *, trusted: Networks, allowed_hosts: Sequence[str], fallback: str
) -> str:
    """``scheme://host`` for URLs handed to the outside when ``public_url`` is not set."""
    if not _trusted(request.remote, trusted):
        return fallback
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() or request.scheme
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip() or request.host
    if proto in ("http", "https") and host and host_allowed(host, allowed_hosts):
        return f"{proto}://{host}"
    return fallback
