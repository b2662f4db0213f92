"""``nats://host:4222?subject=hookgate.events``: each delivery is one NATS message on the subject.

When a JetStream stream covers the subject, delivered means the stream's ack (the message is
stored; the attempt's response names the stream and sequence). Otherwise it is a core publish,
delivered once the server has it (a flush): NATS core itself is at most once, so a subscriber that
is not connected then misses it; put a stream on the subject for anything that must not be lost.
Which stream covers a subject is asked again every 5 s, and after any failure.
The signature and identity headers travel as NATS message headers, with ``Content-Type``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from gateway.plugin import Message, Sent

__all__ = ["NatsTransport"]

log = logging.getLogger("hookgate.transports.nats")
CONNECT_TIMEOUT = 3.0
STREAM_TTL = 5.0


async def _quiet(exc: Exception) -> None:
    """The client's own errors: the attempt records what failed, so they are not logged twice."""
    log.debug("nats: %s", exc)


class NatsTransport:
    def __init__(self) -> None:
        self._connections: dict[str, Any] = {}
        self._streams: dict[tuple[str, str], tuple[str | None, float]] = {}
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> Sent:
        from nats.errors import Error as NatsError
        from nats.js.errors import NotFoundError

        parts = urlsplit(message.url)
        subject = (parse_qs(parts.query).get("subject") or [""])[0]
        if not subject:
            return Sent(False, retryable=False, error="the nats:// URL names no subject (?subject=…)")
        base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        headers = {"Content-Type": message.content_type, **message.headers}
        try:
            connection = await self._connection(base)
            js = connection.jetstream()
            stream = await self._stream_of(base, subject, js, NotFoundError)
            if stream is None:
                await connection.publish(subject, message.body, headers=headers)
                await connection.flush(timeout=5)
                return Sent(True, detail="published (no JetStream stream covers the subject)")
            ack = await js.publish(subject, message.body, headers=headers, timeout=5)
        except (NatsError, OSError, TimeoutError) as exc:
            await self._forget(base)
            return Sent(False, error=f"NATS did not acknowledge: {type(exc).__name__}: {exc}")
        return Sent(True, detail=f"stream {ack.stream} sequence {ack.seq}")

    async def _stream_of(self, base: str, subject: str, js: Any, not_found: type[Exception]) -> str | None:
        """The JetStream stream covering ``subject``, asked again every ``STREAM_TTL`` seconds: asking
        for every message would double its round trips."""
        known = self._streams.get((base, subject))
        now = time.monotonic()
        if known is not None and now - known[1] < STREAM_TTL:
            return known[0]
        try:
            stream: str | None = await js.find_stream_name_by_subject(subject)
        except not_found:
            stream = None
        self._streams[(base, subject)] = (stream, now)
        return stream

    async def _connection(self, base: str) -> Any:
        import nats

        async with self._lock:
            connection = self._connections.get(base)
            if connection is None or connection.is_closed:
                # The client tries a refused server again and again: the attempt's time is bounded here.
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    connection = await nats.connect(
                        servers=[base],
                        connect_timeout=CONNECT_TIMEOUT,
                        allow_reconnect=False,
                        error_cb=_quiet,
                    )
                self._connections[base] = connection
            return connection

    async def _forget(self, base: str) -> None:
        """A failed connection is dropped: the next attempt connects again (the outbox paces it)."""
        async with self._lock:
            connection = self._connections.pop(base, None)
            self._streams = {k: v for k, v in self._streams.items() if k[0] != base}
        if connection is not None:
            with contextlib.suppress(Exception):  # it is already broken
                await connection.close()

    async def close(self) -> None:
        for base in list(self._connections):
            await self._forget(base)
