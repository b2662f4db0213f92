"""Cromwell's terminal-state workflow callback body."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.plugin import Event, EventType, NoOptions, OutboundRequest, WebhookConfig

__all__ = ["CromwellNotifier"]

STATES = {
    EventType.WORKFLOW_COMPLETED: "Succeeded",
    EventType.WORKFLOW_FAILED: "Failed",
    EventType.WORKFLOW_CANCELLED: "Aborted",
}


class CromwellNotifier:
    format = "cromwell"
    options_model = NoOptions  # nothing beyond hookgate\'s own keys

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        state = STATES.get(event.type, "Running")
        outputs: Any = {}
        failures: list[str] = []  # Cromwell's CallbackMessage: failures is a List[String]
        if state == "Succeeded":
            result = event.details.get("result")
            outputs = result if isinstance(result, dict) else ({} if result is None else {"result": result})
        elif state == "Failed":
            error = event.details.get("error") or {}
            failures = [str(error.get("message") or event.message or "failed")]
        body = {"workflowId": event.job_id, "state": state, "outputs": outputs, "failures": failures}
        return OutboundRequest(body=orjson.dumps(body))
