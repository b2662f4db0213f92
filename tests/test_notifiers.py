"""Notifier formats against the platforms' documented minimal shapes and limits."""

from __future__ import annotations

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.formats.json import JSONFormat

from gateway.config import WebhookConfig
from gateway.events import Event, EventType
from gateway.notify import Notifier, load_notifiers
from plugins.notifiers.cloudevents import CloudEventsNotifier
from plugins.notifiers.cromwell import CromwellNotifier
from plugins.notifiers.discord import DiscordNotifier
from plugins.notifiers.json import JsonNotifier
from plugins.notifiers.slack import SlackNotifier
from plugins.notifiers.teams import TeamsNotifier

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


def test_json_is_the_event() -> None:
    body = orjson.loads(JsonNotifier().render(DONE, SUB).body)
    assert (
        body["type"] == "WorkflowCompleted"
        and body["job_id"] == "job-1"
        and body["details"]["result"] == {"url": "https://x"}
    )


def test_slack_text_blocks_colours_and_limits() -> None:
    ok = orjson.loads(SlackNotifier().render(DONE, SUB).body)
    assert isinstance(ok["text"], str) and ok["text"].startswith("*")
    attachment = ok["attachments"][0]
    assert attachment["color"] == "#2eb67d"
    assert [b["type"] for b in attachment["blocks"]] == ["header", "section", "section"]
    bad = orjson.loads(SlackNotifier().render(FAILED, SUB).body)
    assert bad["attachments"][0]["color"] == "#e01e5a"
    assert len(bad["text"]) <= 3000 and len(bad["attachments"][0]["blocks"][1]["text"]["text"]) <= 3000
    assert len(bad["attachments"][0]["blocks"][0]["text"]["text"]) <= 150
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


def test_cromwell_terminal_state_body() -> None:
    succeeded = orjson.loads(CromwellNotifier().render(DONE, SUB).body)
    assert succeeded == {
        "workflowId": "job-1",
        "state": "Succeeded",
        "outputs": {"url": "https://x"},
        "failures": [],
    }
    failed = orjson.loads(CromwellNotifier().render(FAILED, SUB).body)
    assert (
        failed["state"] == "Failed" and failed["outputs"] == {} and failed["failures"][0]["message"] == "boom"
    )
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
