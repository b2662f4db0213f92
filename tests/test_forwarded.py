from __future__ import annotations

from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.config import parse_networks
from gateway.http.forwarded import client_ip, host_allowed, listening_url, public_origin

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7, 10.0.0.5",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "hooks.example.com",
}
LISTENING = "http://127.0.0.1:8080"


def request_from(peer: str, headers: dict[str, str], host: str = "10.0.0.9:8080"):  # type: ignore[no-untyped-def]
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 4321)
    return make_mocked_request("POST", "/x", headers={"Host": host, **headers}, transport=transport)


def origin(request, allowed=("hooks.example.com",)):  # type: ignore[no-untyped-def]
    return public_origin(request, trusted=TRUSTED, allowed_hosts=allowed, fallback=LISTENING)


def test_a_trusted_proxy_naming_an_allowed_host_is_believed() -> None:
    request = request_from("10.0.0.5", FORWARDED)
    assert client_ip(request, TRUSTED) == "203.0.113.7"  # the nearest hop that is not a proxy
    assert origin(request) == "https://hooks.example.com"


def test_a_trusted_proxy_naming_another_host_is_not() -> None:
    request = request_from("10.0.0.5", {**FORWARDED, "X-Forwarded-Host": "attacker.example:9"})
    assert origin(request) == LISTENING
    assert origin(request_from("10.0.0.5", FORWARDED), allowed=()) == LISTENING  # nothing allowed by default


def test_the_host_header_of_anyone_else_is_never_used() -> None:
    request = request_from("198.51.100.2", FORWARDED, host="hooks.example.com")
    assert client_ip(request, TRUSTED) == "198.51.100.2"
    assert origin(request) == LISTENING
    assert client_ip(request_from("10.0.0.5", FORWARDED), ()) == "10.0.0.5"  # nothing trusted by default


def test_a_proxy_without_forwarded_host_is_judged_by_its_host_header() -> None:
    request = request_from("127.0.0.1", {}, host="hooks.example.com:8443")
    assert origin(request) == "http://hooks.example.com:8443"
    assert origin(request_from("127.0.0.1", {}, host="evil.example")) == LISTENING


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("hooks.example.com", ["hooks.example.com"], True),
        ("HOOKS.example.com:443", ["hooks.example.com"], True),
        ("a.example.com", [".example.com"], True),
        ("example.com", ["*.example.com"], True),
        ("evilexample.com", [".example.com"], False),
        ("example.com.evil", ["example.com"], False),
        ("[::1]:8080", ["::1"], True),
        ("a@evil", ["*"], False),
        ("anything.test", ["*"], True),
    ],
)
def test_host_allowed(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


def test_listening_url() -> None:
    assert listening_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert listening_url("::1", 81) == "http://[::1]:81"


def test_bad_networks_are_refused() -> None:
    with pytest.raises(ValueError, match="not-an-address"):
        parse_networks(["not-an-address"])
