"""Discord webhooks: ``content`` and one embed with a colour, within Discord's limits."""

from __future__ import annotations

import orjson

from gateway.plugin import Event, NoOptions, OutboundRequest, WebhookConfig

from ._text import colour, cut, fields, headline

__all__ = ["DiscordNotifier"]

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024


class DiscordNotifier:
    format = "discord"
    options_model = NoOptions  # nothing beyond hookgate\'s own keys

    def render(self, event: Event, subscription: WebhookConfig) -> OutboundRequest:
        embed = {
            "title": cut(headline(event), TITLE_LIMIT),
            "description": cut(event.message or "", DESCRIPTION_LIMIT),
            "color": int(colour(event).lstrip("#"), 16),
            "fields": [
                {"name": k, "value": cut(v, FIELD_VALUE_LIMIT), "inline": True} for k, v in fields(event)
            ],
        }
        payload = {
            "content": cut(headline(event), CONTENT_LIMIT),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},
        }
        return OutboundRequest(body=orjson.dumps(payload))
