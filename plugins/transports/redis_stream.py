"""``redis://host:6379/0?stream=events&maxlen=10000``: each delivery is one entry of a Redis stream.

The URL's path keeps its meaning (the database number); the stream is in the query, with an
optional approximate ``maxlen``. An entry holds the body under ``body``, its ``content-type``, and
each signing and identity header as a field of its own, lower-cased (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``, ``x-hookgate-event``, ``x-hookgate-delivery``,
``x-hub-signature-256``). Delivered means ``XADD`` answered with the entry's id; a consumer
deduplicates by ``webhook-id`` (a retry after a lost answer adds the entry again).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit, urlunsplit

from gateway.plugin import Message, Sent

__all__ = ["RedisStreamTransport"]


class RedisStreamTransport:
    def __init__(self) -> None:
        self._clients: dict[str, object] = {}
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> Sent:
        import redis.asyncio as redis
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeout

        parts = urlsplit(message.url)
        query = parse_qs(parts.query)
        stream = (query.get("stream") or [""])[0]
        if not stream:
            return Sent(False, retryable=False, error="the redis:// URL names no stream (?stream=…)")
        maxlen = int(query["maxlen"][0]) if query.get("maxlen") else None
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        client = await self._client(base, redis)
        fields: dict[str, bytes | str] = {"body": message.body, "content-type": message.content_type}
        fields.update({name.lower(): value for name, value in message.headers.items()})
        try:
            entry = await client.xadd(stream, fields, maxlen=maxlen, approximate=True)  # type: ignore[attr-defined]
        except (RedisConnectionError, RedisTimeout, OSError) as exc:
            return Sent(False, error=f"Redis unreachable: {exc}")
        except ResponseError as exc:  # the key is not a stream, or the server refuses: not retried
            return Sent(False, retryable=False, error=f"Redis refused the entry: {exc}")
        return Sent(
            True, detail=f"stream {stream} entry {entry.decode() if isinstance(entry, bytes) else entry}"
        )

    async def _client(self, base: str, redis: object) -> object:
        async with self._lock:
            client = self._clients.get(base)
            if client is None:
                client = redis.from_url(base, socket_connect_timeout=5, retry_on_timeout=False)  # type: ignore[attr-defined]
                self._clients[base] = client
            return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()  # type: ignore[attr-defined]
        self._clients.clear()
