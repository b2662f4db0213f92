"""Keep secrets out of every log line, whichever logger wrote it.

Our own code logs route templates, never raw paths; but aiohttp logs a request line it could not
parse (a padded ``?token=`` URL) with its bytes, asyncio logs exceptions whose messages carry URLs,
and a third-party library may print anything. So the filter sits on the *handlers*, where every
logger's records end, and rewrites the finished text: known secrets from the configuration, and
anything shaped like a credential (bearer values, ``token=`` parameters, callback paths, hookgate
and JSON Web Tokens, Standard Webhooks secrets).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "SecretFilter", "config_secrets", "install", "scrub"]

REDACTED = "REDACTED"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Credential headers as a log prints them (``Authorization: Bearer …``, ``'Cookie': '…'``).
    (
        re.compile(
            r"(?i)((?:proxy-)?authorization|cookie|x-api-key|x-hookgate-job-token)(['\"]?\s*[:=]\s*['\"]?)"
            r"[^\r\n'\",}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), rf"\1\2{REDACTED}"),
    (
        re.compile(r"(?i)([?&;](?:token|access_token|api_key|apikey|secret|signature|sig|code)=)[^&\s#'\"]*"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(/callbacks/)[^/?#\s'\"]+"), rf"\1{REDACTED}"),
    (re.compile(r"\bhg_[A-Za-z0-9_-]+"), f"hg_{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), f"whsec_{REDACTED}"),
)
_SECRET_NAMES = re.compile(r"(?i)secret|token|password|passwd|private|bearer|authorization|api_?key|dsn")
_MIN_SECRET = 6  # shorter values would redact ordinary words


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-shaped string replaced."""
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretFilter(logging.Filter):
    """Renders each record once, scrubbed; the formatter then prints it as it is."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known: tuple[str, ...] = ()
        self.update(known)

    def update(self, known: Iterable[str]) -> None:
        """Longest first, so that a secret containing another is replaced whole."""
        self.known = tuple(sorted({k for k in known if len(k) >= _MIN_SECRET}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = scrub(message, self.known), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.known)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.known)
        return True


def install(known: Iterable[str] = (), *, logger: logging.Logger | None = None) -> SecretFilter:
    """Put one filter on every handler of the root logger (where aiohttp's and asyncio's records end)."""
    secret_filter = SecretFilter(known)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(secret_filter)
    return secret_filter


def config_secrets(config: Any) -> set[str]:
    """Every string the configuration holds under a secret-sounding name, header values, and the
    URLs of outbound subscriptions (a Slack or Teams webhook URL is itself the credential)."""
    found: set[str] = set()
    _walk(config, "", found)
    for webhook in (*config.webhooks, *(w for r in config.routes for w in r.webhooks)):
        found.add(webhook.url)
    if config.workflow_state_callback is not None:
        found.add(config.workflow_state_callback.url)
    return found


def _walk(value: Any, name: str, found: set[str]) -> None:
    if isinstance(value, str):
        if _SECRET_NAMES.search(name):
            found.add(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _walk(getattr(value, field.name), field.name, found)
    elif isinstance(value, Mapping):
        headers = name.lower().endswith("headers")  # every header value configured may be a credential
        for key, item in value.items():
            _walk(item, "authorization" if headers else str(key), found)
    elif isinstance(value, list | tuple | frozenset):
        for item in value:
            _walk(item, name, found)
