"""CloudEvents in every mode, built by the SDK's own serializers, never by hand-written strings."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gateway.errors import InvalidPayload
from gateway.triggers.cloudevents import METADATA_KEY
from gateway.triggers.payload import RequestData, ShapeOptions, shape

FORMAT = JSONFormat()
# What Azure Event Grid sends for a blob created in its CloudEvents schema.
EVENT_GRID = {
    "type": "Microsoft.Storage.BlobCreated",
    "source": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "subject": "/blobServices/default/containers/c/blobs/report.csv",
    "time": "2026-11-24T01:02:03Z",
    "specversion": "1.0",
    "datacontenttype": "application/json",
}


def event(data: Any = None, **attributes: Any) -> CloudEvent:
    merged = {**EVENT_GRID, **attributes}
    merged["time"] = datetime.fromisoformat(merged["time"].replace("Z", "+00:00"))
    return CloudEvent(attributes=merged, data=data)


def request_of(message: Any) -> RequestData:
    headers = {k.title() if k == "content-type" else k: v for k, v in message.headers.items()}
    return RequestData(
        method="POST", body=message.body, content_type=headers.get("Content-Type", ""), headers=headers
    )


def test_structured_event_spreads_object_data_and_keeps_metadata() -> None:
    args = shape(request_of(to_structured(event({"url": "https://x/report.csv", "size": 10}), FORMAT))).single
    metadata = args.pop(METADATA_KEY)
    assert args == {"url": "https://x/report.csv", "size": 10}
    assert metadata == EVENT_GRID


def test_binary_event_from_knative_with_extensions() -> None:
    knative = event(
        {"msg": "hi"},
        type="dev.knative.sample",
        source="/apiserver",
        knativearrivaltime="2026-11-24T00:00:00Z",
    )
    message = to_binary(knative, FORMAT)
    assert "ce-specversion" in message.headers
    args = shape(request_of(message)).single
    metadata = args.pop(METADATA_KEY)
    assert args == {"msg": "hi"}
    assert metadata["knativearrivaltime"] == "2026-11-24T00:00:00Z"
    assert metadata["type"] == "dev.knative.sample" and metadata["datacontenttype"] == "application/json"


def test_non_object_and_binary_data() -> None:
    text = shape(request_of(to_structured(event("plain words", datacontenttype="text/plain"), FORMAT))).single
    assert text["body"] == "plain words"
    listed = shape(request_of(to_binary(event([1, 2]), FORMAT))).single
    assert listed["body"] == [1, 2]
    blob = shape(
        request_of(to_structured(event(b"\x00\xff", datacontenttype="application/octet-stream"), FORMAT))
    ).single
    assert base64.b64decode(blob["raw_base64"]) == b"\x00\xff"


def test_wrap_body_applies_to_event_data() -> None:
    args = shape(request_of(to_structured(event({"a": 1}), FORMAT)), ShapeOptions(wrap_body=True)).single
    assert args["body"] == {"a": 1}


def test_missing_time_is_not_invented() -> None:
    without_time = {k: v for k, v in EVENT_GRID.items() if k != "time"}
    body = orjson.dumps({**without_time, "data": {"a": 1}})
    args = shape(RequestData(method="POST", body=body, content_type="application/cloudevents+json")).single
    assert "time" not in args[METADATA_KEY]


@pytest.mark.parametrize("attribute", ["id", "source", "type", "specversion"])
def test_required_attributes_must_be_in_the_request(attribute: str) -> None:
    document = {k: v for k, v in EVENT_GRID.items() if k != attribute}
    with pytest.raises(InvalidPayload) as info:
        shape(
            RequestData(
                method="POST", body=orjson.dumps(document), content_type="application/cloudevents+json"
            )
        )
    assert info.value.status == 400 and info.value.details["attribute"] == attribute
    headers = {f"ce-{k}": str(v) for k, v in document.items() if k != "datacontenttype"}
    binary = RequestData(method="POST", body=b"{}", content_type="application/json", headers=headers)
    if attribute == "specversion":  # without ce-specversion it is a plain webhook, not a binary event
        assert shape(binary).single == {}
        return
    with pytest.raises(InvalidPayload) as info:
        shape(binary)
    assert info.value.details["attribute"] == attribute


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b"not json", "not valid JSON"),
        (orjson.dumps({**EVENT_GRID, "specversion": "9.9"}), "not a valid CloudEvent"),
        (orjson.dumps({**EVENT_GRID, "time": "yesterday"}), "not a valid CloudEvent"),
        (orjson.dumps({**EVENT_GRID, "id": 5}), "not a valid CloudEvent"),
    ],
)
def test_malformed_envelopes_are_400_never_500(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        shape(RequestData(method="POST", body=body, content_type="application/cloudevents+json"))
    assert fragment in info.value.message


def test_binary_event_with_broken_json_data_is_400() -> None:
    headers = {f"ce-{k}": v for k, v in EVENT_GRID.items() if k not in ("datacontenttype", "time")}
    with pytest.raises(InvalidPayload, match="data is not valid JSON"):
        shape(
            RequestData(
                method="POST",
                body=b"{broken",
                content_type="application/json",
                headers={**headers, "Content-Type": "application/json"},
            )
        )


def batch(*events: CloudEvent) -> RequestData:
    body = b"[" + b",".join(FORMAT.write(e) for e in events) + b"]"
    return RequestData(method="POST", body=body, content_type="application/cloudevents-batch+json")


def test_batch_gives_one_argument_set_per_event_in_order() -> None:
    shaped = shape(
        batch(
            event({"n": 1}, id="a"), event({"n": 2}, id="b"), event("x", id="c", datacontenttype="text/plain")
        )
    )
    assert shaped.batch
    assert [a[METADATA_KEY]["id"] for a in shaped.arguments] == ["a", "b", "c"]
    assert [a.get("n", a.get("body")) for a in shaped.arguments] == [1, 2, "x"]


def test_batch_with_one_bad_event_is_rejected_whole_naming_it() -> None:
    good = orjson.loads(FORMAT.write(event({"n": 1})))
    bad = {k: v for k, v in good.items() if k != "source"}
    body = orjson.dumps([good, good, bad])
    with pytest.raises(InvalidPayload) as info:
        shape(RequestData(method="POST", body=body, content_type="application/cloudevents-batch+json"))
    assert info.value.details["index"] == 2 and info.value.details["attribute"] == "source"


@pytest.mark.parametrize(("body", "fragment"), [(b"[]", "empty"), (b"{}", "JSON array")])
def test_empty_or_non_array_batch_is_400(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidPayload, match=fragment):
        shape(RequestData(method="POST", body=body, content_type="application/cloudevents-batch+json"))
