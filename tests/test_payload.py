from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError, InvalidJSON, InvalidPayload, PayloadTooLarge, UnsupportedMediaType
from gateway.payload import RequestData, check_size, decode_payload_query, shape


def post(body: bytes, content_type: str = "application/json", **kwargs: Any) -> RequestData:
    return RequestData(method="POST", body=body, content_type=content_type, **kwargs)


@pytest.mark.parametrize(
    ("body", "args"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", {"body": [1, 2]}),
        (b'"text"', {"body": "text"}),
        (b"3.5", {"body": 3.5}),
        (b"null", {"body": None}),
        (b"", {}),
        (b"  \n", {}),
    ],
)
def test_json_bodies(body: bytes, args: dict[str, Any]) -> None:
    assert shape(post(body)) == args


@pytest.mark.parametrize("content_type", ["", "application/json; charset=utf-8", "application/vnd.api+json"])
def test_json_content_types(content_type: str) -> None:
    assert shape(post(b'{"a": 1}', content_type)) == {"a": 1}


def test_malformed_json_says_where() -> None:
    with pytest.raises(InvalidJSON) as info:
        shape(post(b'{"a": 1,}'))
    assert info.value.status == 400
    assert info.value.details["line"] == 1 and "column" in info.value.message


def test_unsupported_type_is_415() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        shape(post(b"\x89PNG", "image/png"))
    assert info.value.status == 415 and "image/png" in info.value.message


def test_path_params_win_over_the_body() -> None:
    assert shape(post(b'{"repo": "body", "x": 1}', path_params={"repo": "path"})) == {"repo": "path", "x": 1}


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.b64encode(b).decode().rstrip("="),
    ],
)
def test_get_payload_in_either_alphabet_with_or_without_padding(encode: Any) -> None:
    raw = orjson.dumps({"q": "?>>~~", "n": [1]})
    assert shape(RequestData(method="GET", query={"payload": encode(raw)})) == {"q": "?>>~~", "n": [1]}


def test_get_payload_errors_name_the_broken_part() -> None:
    with pytest.raises(InvalidPayload) as info:
        decode_payload_query("@@@")
    assert info.value.details == {"part": "base64"}
    with pytest.raises(InvalidPayload) as info:
        decode_payload_query(base64.b64encode(b"{not json").decode())
    assert info.value.details == {"part": "json"}


def test_get_without_payload_has_no_arguments() -> None:
    assert shape(RequestData(method="GET")) == {}


def test_size_check() -> None:
    check_size(None, 10)
    check_size(10, 10)
    with pytest.raises(PayloadTooLarge) as info:
        check_size(11, 10)
    assert info.value.status == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_becomes_arguments(value: Any) -> None:
    args = shape(post(orjson.dumps(value)))
    assert args == (value if isinstance(value, dict) else {"body": value})


@given(st.binary(max_size=64), st.sampled_from(["", "application/json", "text/plain", "application/x-thing"]))
def test_any_bytes_either_shape_or_raise_a_gateway_error(body: bytes, content_type: str) -> None:
    with contextlib.suppress(GatewayError):
        assert isinstance(shape(post(body, content_type)), dict)
