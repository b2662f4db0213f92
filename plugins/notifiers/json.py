"""The default format: the event itself as JSON."""

from __future__ import annotations

import orjson

from gateway.config import WebhookConfig
from gateway.events import Event
from gateway.notify import OutboundRequest

__all__ = ["JsonNotifier"]


class JsonNotifier:
    format = "json"

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        return OutboundRequest(body=orjson.dumps(event.to_json()))
