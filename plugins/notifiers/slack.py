"""Slack incoming webhooks, as oxo-flow sends them: ``text`` for notifications and Block Kit
``blocks`` at the top level of the message, with the state's colour as an attachment beside them
(green success, red failure) — Slack colours only attachments."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.plugin import Event, NoOptions, OutboundRequest, WebhookConfig

from ._text import colour, cut, fields, headline

__all__ = ["SlackNotifier"]

TEXT_LIMIT = 3000  # a section block's text
HEADER_LIMIT = 150  # a header block's plain text


class SlackNotifier:
    format = "slack"
    options_model = NoOptions  # nothing beyond hookgate\'s own keys

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
        text = cut(f"*{_escape(title)}*: {_escape(message)}", TEXT_LIMIT)
        payload = {
            "text": text,
            "blocks": blocks,
            "attachments": [
                {"color": colour(event), "fallback": text, "text": cut(_escape(title), TEXT_LIMIT)}
            ],
        }
        return OutboundRequest(body=orjson.dumps(payload))


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
