"""Every shaping rule against the pure module, table-driven, plus properties over any input."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError, InvalidJSON, InvalidPayload, PayloadTooLarge, UnsupportedMediaType
from gateway.http.request import check_size
from gateway.triggers.payload import (
    MAX_DEPTH,
    RequestData,
    ShapeOptions,
    check_depth,
    check_json_depth,
    decode_payload_query,
    shape,
)


def post(body: bytes, content_type: str = "application/json", **kwargs: Any) -> RequestData:
    return RequestData(method="POST", body=body, content_type=content_type, **kwargs)


def args_of(request: RequestData, options: ShapeOptions | None = None) -> dict[str, Any]:
    shaped = shape(request, options)
    assert not shaped.batch and len(shaped.arguments) == 1
    return shaped.single


MULTIPART = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="title"\r\n\r\n'
    b"Quarterly \xc3\xa9t\xc3\xa9\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="tag"\r\n\r\n'
    b"a\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="tag"\r\n\r\n'
    b"b\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="report"; filename="r.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b"\x00\x01\xff\r\n"
    b"--XyZ--\r\n"
)


@pytest.mark.parametrize(
    ("request_data", "expected"),
    [
        (post(b'{"a": 1}'), {"a": 1}),
        (post(b"[1, 2]"), {"body": [1, 2]}),
        (post(b'"text"'), {"body": "text"}),
        (post(b"3.5"), {"body": 3.5}),
        (post(b"null"), {"body": None}),
        (post(b""), {}),
        (post(b"  \n"), {}),
        (post(b'{"a": 1}', ""), {"a": 1}),
        (post(b'{"a": 1}', "application/json; charset=utf-8"), {"a": 1}),
        (post(b'{"a": 1}', "application/vnd.github+json"), {"a": 1}),
        (
            post(b"a=1&b=two&a=3&empty=", "application/x-www-form-urlencoded"),
            {"a": ["1", "3"], "b": "two", "empty": ""},
        ),
        (post(b"q=caf%C3%A9+au+lait", "application/x-www-form-urlencoded"), {"q": "café au lait"}),
        (post(b"hello", "text/plain"), {"body": "hello", "raw_string": "hello"}),
        (post(b"<a/>", "application/xml"), {"body": "<a/>", "raw_string": "<a/>"}),
        (post(b"<a/>", "text/xml; charset=utf-8"), {"body": "<a/>", "raw_string": "<a/>"}),
        (post("é".encode("latin-1"), "text/plain; charset=latin-1"), {"body": "é", "raw_string": "é"}),
        (
            post(MULTIPART, "multipart/form-data; boundary=XyZ"),
            {
                "title": "Quarterly été",
                "tag": ["a", "b"],
                "report": {
                    "filename": "r.bin",
                    "content_type": "application/octet-stream",
                    "size": 3,
                    "content_base64": base64.b64encode(b"\x00\x01\xff").decode(),
                },
            },
        ),
    ],
    ids=lambda v: v.content_type if isinstance(v, RequestData) else None,
)
def test_content_types(request_data: RequestData, expected: dict[str, Any]) -> None:
    assert args_of(request_data) == expected


@pytest.mark.parametrize(
    ("request_data", "error", "fragment"),
    [
        (post(b'{"a": 1,}'), InvalidJSON, "line 1 column"),
        (post(b'{"a": "\xff"}'), InvalidJSON, "not valid JSON"),
        (post(b"\xff\xfe", "text/plain"), InvalidPayload, "not valid utf-8: byte 0"),
        (post(b"x", "text/plain; charset=klingon"), InvalidPayload, "unknown charset"),
        (post(b"a=%FF", "application/x-www-form-urlencoded"), InvalidPayload, "not valid utf-8"),
        (post(b"\x89PNG", "image/png"), UnsupportedMediaType, "image/png"),
        (post(b"--x--", "multipart/form-data"), InvalidPayload, "boundary"),
    ],
)
def test_bad_bodies(request_data: RequestData, error: type[GatewayError], fragment: str) -> None:
    with pytest.raises(error) as info:
        shape(request_data)
    assert fragment in info.value.message
    assert info.value.status in (400, 415)


def test_unsupported_type_names_what_is_supported() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        shape(post(b"x", "application/pdf"))
    assert "application/json" in info.value.details["supported"]
    assert "multipart/form-data" in info.value.details["supported"]


def test_raw_accepts_any_type_as_raw_string_or_raw_base64() -> None:
    raw = ShapeOptions(raw=True)
    assert args_of(post(b"%PDF-1.7", "application/pdf"), raw) == {"raw_string": "%PDF-1.7"}
    assert args_of(post(b"\x89PNG", "image/png"), raw) == {
        "raw_base64": base64.b64encode(b"\x89PNG").decode()
    }


def test_raw_adds_the_body_exactly_as_received() -> None:
    body = b'{"b": 1,  "a": [1,2]}'
    assert args_of(post(body), ShapeOptions(raw=True)) == {"b": 1, "a": [1, 2], "raw_string": body.decode()}


@pytest.mark.parametrize(
    ("request_data", "expected"),
    [
        (post(b'{"a": 1}'), {"body": {"a": 1}}),
        (post(b"[1]"), {"body": [1]}),
        (post(b"a=1", "application/x-www-form-urlencoded"), {"body": {"a": "1"}}),
    ],
)
def test_wrap_body_always_puts_the_body_under_body(
    request_data: RequestData, expected: dict[str, Any]
) -> None:
    assert args_of(request_data, ShapeOptions(wrap_body=True)) == expected


def test_include_header_and_query_and_precedence() -> None:
    request = post(
        b'{"x_sign": "body", "a": "body", "repo": "body", "keep": 1}',
        query={
            "include_header": "X-Sign,Absent-One",
            "include_query": "a,token,wrap_body",
            "a": "query",
            "token": "t",
        },
        headers={"X-Sign": "sha256=abc", "Repo": "header"},
        path_params={"repo": "path"},
    )
    options = ShapeOptions(include_headers=("Repo",)).for_request(
        request.query, instance_headers=("X-Request-Id",)
    )
    assert args_of(request, options) == {"x_sign": "sha256=abc", "a": "query", "repo": "path", "keep": 1}


def test_header_beats_query_and_path_beats_header() -> None:
    request = post(
        b"{}",
        query={"include_query": "x,y", "x": "query", "y": "query"},
        headers={"X": "header", "Y": "header"},
        path_params={"y": "path"},
    )
    options = ShapeOptions(include_headers=("X", "Y")).for_request(request.query)
    assert args_of(request, options) == {"x": "header", "y": "path"}


def test_query_controls_override_route_defaults() -> None:
    defaults = ShapeOptions(wrap_body=True, raw=True)
    assert defaults.for_request({"wrap_body": "false", "raw": "0"}) == ShapeOptions()
    assert ShapeOptions().for_request({"wrap_body": "", "raw": "yes"}) == ShapeOptions(
        wrap_body=True, raw=True
    )
    with pytest.raises(InvalidPayload, match="wrap_body must be true or false"):
        ShapeOptions().for_request({"wrap_body": "maybe"})


def test_control_parameters_never_become_arguments() -> None:
    query = {
        "token": "secret",
        "payload": base64.b64encode(b'{"a": 1}').decode(),
        "wrap_body": "false",
        "raw": "false",
        "include_query": "token,payload,include_query,raw,wrap_body,wait",
    }
    request = RequestData(method="GET", query=query)
    assert args_of(request, ShapeOptions().for_request(query)) == {"a": 1}


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
    assert args_of(RequestData(method="GET", query={"payload": encode(raw)})) == {"q": "?>>~~", "n": [1]}


def test_get_payload_errors_name_the_broken_part() -> None:
    with pytest.raises(InvalidPayload) as info:
        decode_payload_query("@@@")
    assert info.value.details == {"part": "base64"}
    with pytest.raises(InvalidPayload) as info:
        decode_payload_query(base64.b64encode(b"{not json").decode())
    assert info.value.details == {"part": "json"}


def test_get_without_payload_has_no_arguments() -> None:
    assert args_of(RequestData(method="GET")) == {}


def test_size_check() -> None:
    check_size(None, 10)
    check_size(10, 10)
    with pytest.raises(PayloadTooLarge) as info:
        check_size(11, 10)
    assert info.value.status == 413


# --- properties -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
option_sets = st.builds(
    ShapeOptions,
    wrap_body=st.booleans(),
    raw=st.booleans(),
    include_headers=st.lists(st.sampled_from(["X-One", "X-Two", "Absent"]), max_size=3).map(tuple),
    include_query=st.lists(st.sampled_from(["q", "token", "missing"]), max_size=3).map(tuple),
)
HEADERS = {"X-One": "1", "X-Two": "2"}
QUERY = {"q": "query-value", "token": "never"}


@given(json_values, option_sets)
def test_json_values_with_any_options(value: Any, options: ShapeOptions) -> None:
    body = orjson.dumps(value)
    args = args_of(post(body, headers=HEADERS, query=QUERY), options)
    injected = {
        "raw_string": body.decode() if options.raw else None,
        "q": "query-value" if "q" in options.include_query else None,
        "x_one": "1" if "X-One" in options.include_headers else None,
        "x_two": "2" if "X-Two" in options.include_headers else None,
    }
    injected = {k: v for k, v in injected.items() if v is not None}
    if options.wrap_body:
        assert args == {"body": value, **injected}  # exactly the body plus the injected keys
    elif isinstance(value, dict):
        assert args == {**value, **injected}
    else:
        assert args == {"body": value, **injected}
    assert "token" not in args or (isinstance(value, dict) and "token" in value and not options.wrap_body)


@given(
    st.binary(max_size=64),
    st.sampled_from(
        [
            "",
            "application/json",
            "text/plain",
            "application/xml",
            "image/png",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
        ]
    ),
    option_sets,
)
def test_any_bytes_shape_or_raise_only_gateway_errors(
    body: bytes, content_type: str, options: ShapeOptions
) -> None:
    with contextlib.suppress(GatewayError):
        shaped = shape(post(body, content_type), options)
        try:
            text: str | None = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        for args in shaped.arguments:
            if options.raw and text is not None:
                assert args["raw_string"] == text
            elif options.raw:
                assert base64.b64decode(args["raw_base64"]) == body


CHARSETS = st.one_of(
    st.sampled_from(
        ["utf-8", "latin-1", "utf-16", "base64", "zlib", "rot13", "hex", "bz2", "uu", "quopri", "idna", "x"]
    ),
    st.text(max_size=12),
)


@given(st.binary(max_size=48), CHARSETS, st.sampled_from(["text/plain", "application/x-www-form-urlencoded"]))
def test_any_declared_charset_is_decoded_or_refused_with_a_4xx(
    body: bytes, charset: str, media_type: str
) -> None:
    content_type = f"{media_type}; charset={charset}"
    with contextlib.suppress(GatewayError):
        orjson.dumps(shape(post(body, content_type)).single)
    part = (
        b'--b\r\nContent-Disposition: form-data; name="f"\r\nContent-Type: text/plain; charset='
        + charset.encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"")
        + b"\r\n\r\n"
        + body.replace(b"\r\n--b", b"")
        + b"\r\n--b--\r\n"
    )
    with contextlib.suppress(GatewayError):
        orjson.dumps(shape(post(part, "multipart/form-data; boundary=b")).single)


@st.composite
def nested(draw: st.DrawFn) -> tuple[Any, int]:
    depth = draw(st.integers(min_value=0, max_value=240))  # orjson itself writes at most 254
    value: Any = draw(st.sampled_from([1, "s]", "{x", None, [], {}]))
    for _ in range(depth):
        siblings = draw(st.lists(st.sampled_from([1, "a", [], {}]), max_size=2))
        if draw(st.booleans()):
            value = [*siblings, value]
        else:
            value = {"k": value, **{f"s{i}": sibling for i, sibling in enumerate(siblings)}}
    return value, _depth(value)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=60)
@given(nested())
def test_nesting_is_refused_past_the_limit_and_otherwise_serialises(case: tuple[Any, int]) -> None:
    value, depth = case
    body = orjson.dumps(value)
    try:
        args = shape(post(body)).single
    except InvalidPayload as exc:
        assert "deeper than" in exc.message and depth > MAX_DEPTH
        return
    assert depth <= MAX_DEPTH
    orjson.dumps({"job": {"args": args}})  # the deepest place arguments travel to, with room left


@settings(max_examples=60)
@given(nested())
def test_the_text_scan_and_the_walk_agree_on_depth(case: tuple[Any, int]) -> None:
    value, _ = case
    refusals = []
    for check, argument in ((check_depth, value), (check_json_depth, orjson.dumps(value))):
        try:
            check(argument)
            refusals.append(False)
        except InvalidPayload:
            refusals.append(True)
    assert refusals[0] == refusals[1]


def test_the_text_scan_ignores_brackets_and_escaped_quotes_inside_strings() -> None:
    """Past the bracket count's quick answer, strings (escapes included) still count for nothing."""
    inside = '\\"' + "[" * (MAX_DEPTH + 5) + "\\\\"
    check_json_depth(orjson.dumps({"s": inside, "t": ["]" * 70]}))  # only two levels of real nesting
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(InvalidPayload):
        check_json_depth(orjson.dumps({"s": inside}).replace(b'"}', b'", "d": ' + deep.encode() + b"}"))
