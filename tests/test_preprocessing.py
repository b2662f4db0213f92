"""The request as a preprocessor sees it, and how a redacting route seals it."""

from __future__ import annotations

import base64

import orjson

from gateway.config import CREDENTIAL_HEADERS
from gateway.triggers.payload import RequestData, ShapeOptions
from gateway.triggers.preprocessing import EVENT_KEY, request_event, wants_event
from gateway.triggers.sealing import REDACTED, split_redacted

OPTIONS = ShapeOptions(
    secret_headers=CREDENTIAL_HEADERS | {"x-hub-signature-256"}, secret_query=frozenset({"key"})
)


def event_of(body: bytes, content_type: str, **fields: object) -> dict:
    data = RequestData(method="POST", body=body, content_type=content_type, **fields)  # type: ignore[arg-type]
    return request_event(data, OPTIONS, kind="http", route="/hooks/{team}", path="/hooks/blue")


def test_the_event_holds_the_body_parsed_and_as_received() -> None:
    raw = b'{"b": 1,  "a": [2]}'
    event = event_of(raw, "application/json", path_params={"team": "blue"})
    assert event["body"] == {"b": 1, "a": [2]} and event["raw_string"] == raw.decode()
    assert (event["kind"], event["route"], event["path"], event["params"]) == (
        "http",
        "/hooks/{team}",
        "/hooks/blue",
        {"team": "blue"},
    )
    assert event_of(b"a=1&a=2&b=x", "application/x-www-form-urlencoded")["body"] == {
        "a": ["1", "2"],
        "b": "x",
    }
    assert event_of(b"hello", "text/plain")["body"] == "hello"
    binary = event_of(b"\xff\x00", "application/octet-stream")
    assert binary["body"] is None and binary["raw_string"] is None
    assert base64.b64decode(binary["raw_base64"]) == b"\xff\x00"


def test_credentials_and_controls_never_reach_the_event() -> None:
    headers = {
        "Authorization": "Bearer t",
        "Cookie": "s=1",
        "X-Hub-Signature-256": "sha256=…",
        "X-Trace": "a",
    }
    event = event_of(b"{}", "", headers=headers, query={"token": "t", "key": "k", "wait": "1", "page": "2"})
    assert event["headers"] == {"x-trace": "a"}
    assert event["query"] == {"page": "2"}


def test_a_redacting_route_seals_the_event_too() -> None:
    raw = b'{"password": "p", "card": {"number": "4242"}}'
    event = event_of(raw, "application/json", headers={"X-Api-Token": "secret-ish"})
    shown, real = split_redacted(
        {"password": "p", EVENT_KEY: event}, ("password", "x_api_token", "card.number")
    )
    assert real[EVENT_KEY] == event  # the script gets it whole
    sealed = shown[EVENT_KEY]
    assert sealed["raw_string"] == REDACTED
    assert sealed["body"]["password"] == REDACTED and sealed["body"]["card"]["number"] == REDACTED
    assert sealed["headers"]["x-api-token"] == REDACTED
    assert b"4242" not in orjson.dumps(shown) and b"secret-ish" not in orjson.dumps(shown)
    text = split_redacted({EVENT_KEY: event_of(b"the password is p", "text/plain")}, ("password",))[0]
    assert text[EVENT_KEY]["body"] == REDACTED  # a text body is the raw string again


class Knows:
    def defines_preprocessor(self, version: object) -> bool:
        return True


def test_the_route_setting_wins_over_what_the_engine_knows() -> None:
    version = object()
    assert wants_event(None, Knows(), version)  # type: ignore[arg-type]
    assert not wants_event(False, Knows(), version)  # type: ignore[arg-type]
    assert not wants_event(None, object(), version)  # type: ignore[arg-type]
    assert wants_event(True, object(), version)  # type: ignore[arg-type]
