"""Refuse outbound connections to addresses inside the network the gateway runs in.

Loopback, private, link-local (cloud metadata at 169.254.169.254 included), CGNAT, multicast and
reserved ranges are refused unless ``[outbound] allow_private_targets = true``. The check runs on the
addresses a name resolves to, at connection time (an aiohttp resolver), so a DNS answer that changes
between a check and the connection (rebinding) cannot slip past; IP literals, which aiohttp does not
resolve, are checked before the request.

An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, IPv4-translated ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``,
Teredo) is judged by the IPv4 address inside it too, since a gateway on a network that translates
them reaches that address; the local-use NAT64 prefix ``64:ff9b:1::/48`` is never public.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

__all__ = [
    "BlockedAddress",
    "GuardedResolver",
    "allowed_target",
    "check_literal_host",
    "embedded_ipv4",
    "is_public",
    "same_origin",
]


class BlockedAddress(OSError):
    """The target resolves to an address outbound deliveries may not reach."""


_EMBEDDING_LOW_32 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96")
)
_NEVER_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"),)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for, by any of the standard embeddings."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in network for network in _EMBEDDING_LOW_32) and int(ip) & 0xFFFFFFFF > 1:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NEVER_PUBLIC):
            return False
        embedded = embedded_ipv4(ip)
        if embedded:
            return all(_public(v4) for v4 in embedded)
    return _public(ip)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def same_origin(first: str, second: str) -> bool:
    """Same scheme, host and port: what browsers and ``requests`` send credentials to on a redirect."""
    return _origin(first) == _origin(second)


def allowed_target(url: str, patterns: tuple[str, ...]) -> bool:
    """``url`` is allowed by one of ``patterns``: a host (``cromwell.example.com``, any scheme and
    port), a wildcard (``*.example.com``), or a URL prefix that pins scheme, port and path
    (``https://cromwell.example.com:8443/api/``)."""
    scheme, host, port = _origin(url)
    if scheme not in ("http", "https") or not host:
        return False
    path = urlsplit(url).path or "/"
    for pattern in patterns:
        if "://" in pattern:
            p_scheme, p_host, p_port = _origin(pattern)
            p_path = urlsplit(pattern).path or "/"
            if (scheme, host, port) == (p_scheme, p_host, p_port) and (
                path == p_path or path.startswith(p_path.rstrip("/") + "/")
            ):
                return True
            continue
        pattern = pattern.lower()
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def check_literal_host(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not is_public(host):
        raise BlockedAddress(f"{host} is not a public address (set allow_private_targets to allow it)")


class GuardedResolver(AbstractResolver):
    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        infos = await self._resolver.resolve(host, port, family)
        for info in infos:
            if not is_public(info["host"]):
                raise BlockedAddress(f"{host} resolves to {info['host']}, which is not a public address")
        return list(infos)

    async def close(self) -> None:
        await self._resolver.close()
