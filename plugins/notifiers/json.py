"""The default format: oxo-flow's JSON body, then our own keys.

oxo-flow documents ``{"event", "workflow", "timestamp", "rule", "message", "details"}`` (timestamp
in RFC 3339, UTC); a consumer written to it reads ours unchanged. ``id``, ``job_id``, ``route`` and
``script`` follow, and ``type`` repeats ``event`` for the consumers of earlier releases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.plugin import Event, NoOptions, OutboundRequest, WebhookConfig

__all__ = ["JsonNotifier", "oxo_flow_body", "rfc3339"]


class JsonNotifier:
    format = "json"
    options_model = NoOptions  # nothing beyond hookgate\'s own keys

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        return OutboundRequest(body=orjson.dumps(oxo_flow_body(event)))


def oxo_flow_body(event: Event) -> dict[str, Any]:
    return {
        "event": event.type.value,
        "workflow": event.script or event.route or "hookgate",
        "timestamp": rfc3339(event.timestamp),
        "rule": event.rule,
        "message": event.message,
        "details": event.details,
        "id": event.id,
        "job_id": event.job_id,
        "route": event.route,
        "script": event.script,
        "type": event.type.value,  # deprecated: the name of "event" before this release
    }


def rfc3339(timestamp: float) -> str:
    """``2026-05-18T12:00:00.000Z``: RFC 3339 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
