from __future__ import annotations

from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.forwarded import client_ip, origin, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7, 10.0.0.5",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "hooks.example.com",
}


def request_from(peer: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 4321)
    return make_mocked_request(
        "POST", "/x", headers={"Host": "10.0.0.9:8080", **headers}, transport=transport
    )


def test_a_trusted_proxy_is_believed() -> None:
    request = request_from("10.0.0.5", FORWARDED)
    assert client_ip(request, TRUSTED) == "203.0.113.7"  # the nearest hop that is not a proxy
    assert origin(request, TRUSTED) == "https://hooks.example.com"


def test_anyone_else_is_not() -> None:
    request = request_from("198.51.100.2", FORWARDED)
    assert client_ip(request, TRUSTED) == "198.51.100.2"
    assert origin(request, TRUSTED) == "http://10.0.0.9:8080"
    assert client_ip(request_from("10.0.0.5", FORWARDED), ()) == "10.0.0.5"  # nothing trusted by default


def test_bad_networks_are_refused() -> None:
    with pytest.raises(ValueError, match="not-an-address"):
        parse_networks(["not-an-address"])
