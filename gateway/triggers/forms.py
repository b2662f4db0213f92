"""Form and multipart bodies, and text in a declared charset: split linearly, bounded in parts.

Part of payload shaping (payload.py): pure bytes in, fields out, or a ``4xx`` saying what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import quopri
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import parse_qsl

from gateway.errors import InvalidPayload, PayloadTooLarge

__all__ = ["decode_text", "form_fields", "multipart_fields", "parse_media_type", "text_charset"]


def text_charset(charset: str, *, where: str) -> str:
    """``charset`` when it names a text encoding; ``base64``, ``zlib`` or ``rot13`` are codecs too,
    but not from bytes to text."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        raise InvalidPayload(f"{where} declares an unknown charset {charset!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise InvalidPayload(f"{where} declares {charset!r}, which is not a text encoding")
    return info.name


def decode_text(data: bytes, charset: str, *, where: str) -> str:
    charset = text_charset(charset, where=where)
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"{where} is not valid {charset}: byte {exc.start} cannot be decoded",
            details={"position": exc.start},
        ) from None


def _too_many_parts(kind: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the {kind} has more than {limit} parts (server.max_form_parts)", details={"max_parts": limit}
    )


def form_fields(body: bytes, charset: str, max_parts: int = 100) -> dict[str, Any]:
    charset = text_charset(charset, where="the form body")
    text = decode_text(body, "ascii", where="the form body")
    if text.count("&") + text.count(";") >= max_parts:
        raise _too_many_parts("form body", max_parts)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload(f"the form body is not valid {charset} once percent-decoded: {exc}") from None
    return _collect(pairs)


def multipart_fields(body: bytes, content_type: str, max_parts: int = 100) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = []
    for index, (head, content) in enumerate(_multipart_parts(body, content_type, max_parts)):
        part = _HEADERS.parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise InvalidPayload(f"part {index} of the multipart body has no name", details={"part": index})
        content = _transfer_decoded(content, str(part.get("Content-Transfer-Encoding", "")), index)
        filename = part.get_filename()
        if filename is not None:
            pairs.append(
                (
                    name,
                    {
                        "filename": filename,
                        "content_type": part.get_content_type(),
                        "size": len(content),
                        "content_base64": base64.b64encode(content).decode(),
                    },
                )
            )
        else:
            pairs.append(
                (name, decode_text(content, part.get_content_charset() or "utf-8", where=f"field {name!r}"))
            )
    return _collect(pairs)


_HEADERS = BytesHeaderParser(policy=email.policy.compat32)  # the fast one: only parameters are read


def _multipart_parts(body: bytes, content_type: str, max_parts: int) -> list[tuple[bytes, bytes]]:
    """Split a multipart body into (header block, content) pairs with ``bytes.find`` alone: linear in
    the body whatever its shape, and never more than ``max_parts`` parts (RFC 7578 / RFC 2046)."""
    boundary = parse_media_type(content_type)[1].get("boundary", "")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise InvalidPayload("the multipart body has no boundary or no parts")
    delimiter = b"--" + boundary.encode("latin-1", errors="replace")
    position = body.find(delimiter)
    if position != 0 and (position < 0 or body[position - 2 : position] != b"\r\n"):
        raise InvalidPayload("the multipart body has no boundary or no parts")
    parts: list[tuple[bytes, bytes]] = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise InvalidPayload("the multipart body is malformed after a boundary")
        start = line_end + 2
        following = body.find(b"\r\n" + delimiter, start)
        if following < 0:
            raise InvalidPayload("the multipart body ends before its closing boundary")
        if len(parts) >= max_parts:
            raise _too_many_parts("multipart body", max_parts)
        part = body[start:following]
        if part.startswith(b"\r\n"):
            parts.append((b"", part[2:]))
        else:
            head_end = part.find(b"\r\n\r\n")
            if head_end < 0:
                raise InvalidPayload(
                    f"part {len(parts)} of the multipart body has no blank line after its headers"
                )
            parts.append((part[:head_end], part[head_end + 4 :]))
        position = following + 2


def _transfer_decoded(content: bytes, encoding: str, index: int) -> bytes:
    """RFC 7578 deprecates Content-Transfer-Encoding, but old clients still send base64 parts."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode(content)
        if encoding == "quoted-printable":
            return quopri.decodestring(content)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"part {index} of the multipart body is not valid {encoding}") from None
    return content


def _collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            existing = fields[name]
            fields[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[name] = value
    return fields


def parse_media_type(content_type: str) -> tuple[str, dict[str, str]]:
    media_type, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), params
