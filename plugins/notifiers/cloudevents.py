"""CloudEvents 1.0, built with the ``cloudevents`` SDK, structured (default) or binary.

``mode = "binary"`` on the subscription sends the attributes as ``ce-`` headers and the event
as the body; ``source`` defaults to ``hookgate``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gateway.plugin import Event, OutboundRequest, WebhookConfig

__all__ = ["CloudEventsNotifier"]

_FORMAT = JSONFormat()


class CloudEventsNotifier:
    format = "cloudevents"

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
