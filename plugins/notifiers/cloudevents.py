"""CloudEvents 1.0, built with the ``cloudevents`` SDK, structured (default) or binary.

``mode = "binary"`` on the subscription sends the attributes as ``ce-`` headers and the event
as the body; ``source`` defaults to ``hookgate``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import Field

from gateway.plugin import Event, OutboundRequest, PluginOptions, WebhookConfig

__all__ = ["CloudEventsNotifier"]

_FORMAT = JSONFormat()


class CloudEventsOptions(PluginOptions):
    source: str = Field("hookgate", description="the events' source attribute")
    mode: Literal["structured", "binary"] = Field("structured", description="CloudEvents HTTP content mode")


class CloudEventsNotifier:
    format = "cloudevents"
    options_model = CloudEventsOptions

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        attributes = {
            "id": event.id,
            "source": str(subscription.options.get("source", "hookgate")),
            "type": f"dev.hookgate.{event.type.value}",
            "time": datetime.fromtimestamp(event.timestamp, UTC),
            "datacontenttype": "application/json",
        }
        if event.job_id:
            attributes["subject"] = event.job_id
        cloud_event = CloudEvent(attributes=attributes, data=event.to_json())
        if subscription.options.get("mode") == "binary":
            message = to_binary(cloud_event, _FORMAT)
            headers = {k: v for k, v in message.headers.items() if k.lower() != "content-type"}
            return OutboundRequest(body=message.body, content_type="application/json", headers=headers)
        message = to_structured(cloud_event, _FORMAT)
        return OutboundRequest(body=message.body, content_type="application/cloudevents+json")
