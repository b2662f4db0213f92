# hookgate_pagerduty/__init__.py
import orjson

from gateway.config import WebhookConfig
from gateway.events import Event
from gateway.notify import OutboundRequest


class PagerDutyNotifier:
    format = "pagerduty"

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        body = {
            "routing_key": subscription.options.get("routing_key"),
            "event_action": "trigger",
            "dedup_key": event.job_id,
            "payload": {
                "summary": event.message or event.type.value,
                "source": "hookgate",
                "severity": "error" if event.type.value.endswith("Failed") else "info",
            },
        }
        return OutboundRequest(body=orjson.dumps(body))
