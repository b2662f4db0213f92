"""Slack incoming webhooks: ``text`` for notifications, Block Kit for the message, a coloured bar."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config import WebhookConfig
from gateway.events import Event
from gateway.notify import OutboundRequest

from ._text import colour, cut, fields, headline

__all__ = ["SlackNotifier"]

TEXT_LIMIT = 3000  # a section block's text
HEADER_LIMIT = 150  # a header block's plain text


class SlackNotifier:
    format = "slack"

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        title = headline(event)
        message = event.message or title
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": cut(title, HEADER_LIMIT), "emoji": True},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(_escape(message), TEXT_LIMIT)}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": cut(f"*{k}*\n{_escape(v)}", 2000)} for k, v in fields(event)
                ],
            },
        ]
        payload = {
            "text": cut(f"*{_escape(title)}*: {_escape(message)}", TEXT_LIMIT),
            "attachments": [{"color": colour(event), "blocks": blocks}],
        }
        return OutboundRequest(body=orjson.dumps(payload))


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
