"""Shared wording for the chat formats (Slack, Teams, Discord): one line a person reads at a glance."""

from __future__ import annotations

from gateway.plugin import Event, EventType

GREEN, RED, GREY, BLUE = "#2eb67d", "#e01e5a", "#8d8d8d", "#1d9bd1"
COLOURS = {
    EventType.WORKFLOW_COMPLETED: GREEN,
    EventType.RULE_COMPLETED: GREEN,
    EventType.WORKFLOW_FAILED: RED,
    EventType.RULE_FAILED: RED,
    EventType.WORKFLOW_CANCELLED: GREY,
    EventType.RULE_SKIPPED: GREY,
}
ICONS = {GREEN: "✅", RED: "❌", GREY: "⏹️", BLUE: "▶️"}


def colour(event: Event) -> str:
    return COLOURS.get(event.type, BLUE)


def headline(event: Event) -> str:
    subject = event.script or "hookgate"
    if event.rule:
        subject = f"{subject} / {event.rule}"
    return f"{ICONS[colour(event)]} {event.type.value}: {subject}"


def cut(text: str, limit: int) -> str:
    """Cut to a platform's limit, saying so rather than failing the delivery."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fields(event: Event) -> list[tuple[str, str]]:
    found = [("Job", event.job_id or "-"), ("Route", event.route or "-")]
    if "exit_code" in event.details:
        found.append(("Exit code", str(event.details["exit_code"])))
    return found
