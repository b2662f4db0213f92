"""Notifier formats against the platforms' documented minimal shapes and limits."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat
from hookgate_plugins.notifiers.cloudevents import CloudEventsNotifier
from hookgate_plugins.notifiers.cromwell import CromwellNotifier
from hookgate_plugins.notifiers.discord import DiscordNotifier
from hookgate_plugins.notifiers.json import JsonNotifier
from hookgate_plugins.notifiers.slack import SlackNotifier
from hookgate_plugins.notifiers.teams import TeamsNotifier
from slack_sdk.models.blocks import Block

from gateway.config import WebhookConfig
from gateway.outbound.events import Event, EventType
from gateway.outbound.notify import Notifier, load_notifiers

SUB = WebhookConfig(name="s", url="https://example.com/hook", path="webhooks[0]")
DONE = Event(
    type=EventType.WORKFLOW_COMPLETED,
    job_id="job-1",
    route="/hooks/deploy",
    script="u/deploy",
    message="u/deploy succeeded",
    details={"state": "succeeded", "result": {"url": "https://x"}},
)
FAILED = Event(
    type=EventType.WORKFLOW_FAILED,
    job_id="job-2",
    script="u/deploy",
    message="boom " + "x" * 5000,
    details={"state": "failed", "error": {"name": "E", "message": "boom"}, "exit_code": 3},
)

_interface_guards: list[Notifier] = [
    JsonNotifier(),
    SlackNotifier(),
    TeamsNotifier(),
    DiscordNotifier(),
    CromwellNotifier(),
    CloudEventsNotifier(),
]


def test_built_ins_are_registered_through_entry_points() -> None:
    assert set(load_notifiers()) >= {"json", "slack", "teams", "discord", "cromwell", "cloudevents"}


# oxo-flow's documented json body: these keys first, in this order.
OXO_FLOW_KEYS = ["event", "workflow", "timestamp", "rule", "message", "details"]


def test_json_is_oxo_flows_body_then_ours() -> None:
    rule = Event(
        type=EventType.RULE_FAILED,
        job_id="job-3",
        script="variant-calling",
        rule="align_reads",
        message="align_reads failed",
        details={"exit_code": 1},
        timestamp=1779105600.0,  # 2026-05-18T12:00:00Z
    )
    body = orjson.loads(JsonNotifier().render(rule, SUB).body)
    assert list(body)[:6] == OXO_FLOW_KEYS
    assert body["event"] == "RuleFailed" and body["workflow"] == "variant-calling"
    assert body["timestamp"] == "2026-05-18T12:00:00.000Z"
    assert datetime.fromisoformat(body["timestamp"]) == datetime(2026, 5, 18, 12, tzinfo=UTC)
    assert body["rule"] == "align_reads" and body["details"] == {"exit_code": 1}
    assert body["job_id"] == "job-3" and body["id"] and body["type"] == "RuleFailed"  # the old name stays
    done = orjson.loads(JsonNotifier().render(DONE, SUB).body)
    assert done["event"] == "WorkflowCompleted" and done["details"]["result"] == {"url": "https://x"}


def valid_block_kit(block: dict[str, object]) -> None:
    """slack_sdk's own models: a known type, valid by Slack's rules, and nothing lost or added."""
    parsed = Block.parse(block)
    assert parsed is not None, block
    parsed.validate_json()
    assert parsed.to_dict() == block


def test_slack_blocks_are_valid_block_kit_at_the_top_level() -> None:
    ok = orjson.loads(SlackNotifier().render(DONE, SUB).body)
    assert isinstance(ok["text"], str) and ok["text"].startswith("*")
    assert [b["type"] for b in ok["blocks"]] == ["header", "section", "section"]
    for block in ok["blocks"]:
        valid_block_kit(block)
    assert ok["attachments"][0]["color"] == "#2eb67d"
    bad = orjson.loads(SlackNotifier().render(FAILED, SUB).body)
    for block in bad["blocks"]:
        valid_block_kit(block)
    assert bad["attachments"][0]["color"] == "#e01e5a"
    assert len(bad["text"]) <= 3000 and len(bad["blocks"][1]["text"]["text"]) <= 3000
    assert len(bad["blocks"][0]["text"]["text"]) <= 150
    escaped = orjson.loads(
        SlackNotifier().render(Event(type=EventType.RULE_FAILED, message="<!channel> & co"), SUB).body
    )
    assert "<!channel>" not in escaped["text"] and "&lt;!channel&gt; &amp; co" in escaped["text"]


def test_teams_adaptive_card_envelope() -> None:
    message = orjson.loads(TeamsNotifier().render(FAILED, SUB).body)
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] and card["body"][0]["color"] == "attention"


def test_discord_content_embeds_and_limits() -> None:
    payload = orjson.loads(DiscordNotifier().render(FAILED, SUB).body)
    assert 0 < len(payload["content"]) <= 2000
    (embed,) = payload["embeds"]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert embed["color"] == 0xE01E5A and all(len(f["value"]) <= 1024 for f in embed["fields"])
    assert payload["allowed_mentions"] == {"parse": []}


# Cromwell's CallbackMessage(workflowId, state, outputs, failures: List[String]), nothing else.
CROMWELL_CALLBACK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["workflowId", "state", "outputs", "failures"],
    "properties": {
        "workflowId": {"type": "string"},
        "state": {"enum": ["Succeeded", "Failed", "Aborted"]},
        "outputs": {"type": "object"},
        "failures": {"type": "array", "items": {"type": "string"}},
    },
}


def test_cromwell_terminal_state_body() -> None:
    for event in (DONE, FAILED, Event(type=EventType.WORKFLOW_CANCELLED, job_id="j")):
        jsonschema.validate(orjson.loads(CromwellNotifier().render(event, SUB).body), CROMWELL_CALLBACK)
    succeeded = orjson.loads(CromwellNotifier().render(DONE, SUB).body)
    assert succeeded == {
        "workflowId": "job-1",
        "state": "Succeeded",
        "outputs": {"url": "https://x"},
        "failures": [],
    }
    failed = orjson.loads(CromwellNotifier().render(FAILED, SUB).body)
    assert failed["state"] == "Failed" and failed["outputs"] == {} and failed["failures"] == ["boom"]
    aborted = orjson.loads(
        CromwellNotifier().render(Event(type=EventType.WORKFLOW_CANCELLED, job_id="j"), SUB).body
    )
    assert aborted["state"] == "Aborted" and aborted["failures"] == [] and aborted["outputs"] == {}


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_cloudevents_parse_back_with_the_sdk(mode: str) -> None:
    subscription = WebhookConfig(
        name="ce", url="https://e", path="w", options={"mode": mode, "source": "/hookgate/test"}
    )
    request = CloudEventsNotifier().render(DONE, subscription)
    headers = {**request.headers, "content-type": request.content_type}
    message = HTTPMessage(headers=headers, body=request.body)
    event = from_binary(message, JSONFormat()) if mode == "binary" else from_structured(message, JSONFormat())
    assert event.get_type() == "dev.hookgate.WorkflowCompleted" and event.get_source() == "/hookgate/test"
    assert event.get_id() == DONE.id and event.get_data()["job_id"] == "job-1"  # type: ignore[index]
