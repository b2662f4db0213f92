"""Microsoft Teams (Workflows / Power Automate): a message carrying one Adaptive Card."""

from __future__ import annotations

import orjson

from gateway.plugin import Event, NoOptions, OutboundRequest, WebhookConfig

from ._text import RED, colour, cut, fields, headline

__all__ = ["TeamsNotifier"]


class TeamsNotifier:
    format = "teams"
    options_model = NoOptions  # nothing beyond hookgate\'s own keys

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        style = "attention" if colour(event) == RED else "good" if colour(event) == "#2eb67d" else "default"
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": cut(headline(event), 200),
                    "weight": "Bolder",
                    "size": "Medium",
                    "color": style,
                    "wrap": True,
                },
                {"type": "TextBlock", "text": cut(event.message or "", 2000), "wrap": True},
                {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in fields(event)]},
            ],
        }
        message = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }
        return OutboundRequest(body=orjson.dumps(message))
