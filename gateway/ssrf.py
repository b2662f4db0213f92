"""Refuse outbound connections to addresses inside the network the gateway runs in.

Loopback, private, link-local (cloud metadata at 169.254.169.254 included), CGNAT, multicast and
reserved ranges are refused unless ``[outbound] allow_private_targets = true``. The check runs on the
addresses a name resolves to, at connection time (an aiohttp resolver), so a DNS answer that changes
between a check and the connection (rebinding) cannot slip past; IP literals, which aiohttp does not
resolve, are checked before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

__all__ = ["BlockedAddress", "GuardedResolver", "check_literal_host", "is_public"]


class BlockedAddress(OSError):
    """The target resolves to an address outbound deliveries may not reach."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


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
