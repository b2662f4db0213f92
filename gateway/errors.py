"""The errors hookgate answers with, each carrying its HTTP status and a stable code.

One middleware (``gateway.middlewares.gateway_middleware``) turns any of these into
``{"error": {"code", "message", ...}}``; handlers and the pure modules only raise.

    GatewayError (500 internal)
    ├── BadRequest (400 bad_request)
    │   ├── InvalidPayload (400 invalid_payload)
    │   └── InvalidJSON (400 invalid_json)
    ├── Unauthorized (401 unauthorized, with WWW-Authenticate: Bearer)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    │   ├── RouteNotFound (404 route_not_found)
    │   ├── ScriptNotFound (404 script_not_found)
    │   └── JobNotFound (404 job_not_found)
    ├── MethodNotAllowed (405 method_not_allowed)
    ├── RequestTimeout (408 body_timeout: the body did not arrive in time)
    ├── Conflict (409 conflict)
    ├── Gone (410 gone)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnprocessableEntity (422 unprocessable)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── TooManyRequests (429 rate_limited, with Retry-After and RateLimit headers)
    ├── Overloaded (503 overloaded, with Retry-After)
    └── SyncTimeout (504 timeout)

``ConfigError`` is not a ``GatewayError``: a bad configuration stops the process at start-up and is
never an answer to a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "Gone",
    "InvalidJSON",
    "InvalidPayload",
    "JobNotFound",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RequestTimeout",
    "RouteNotFound",
    "ScriptNotFound",
    "SyncTimeout",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
]


class GatewayError(Exception):
    """Base of every error that becomes an HTTP answer."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs (``Retry-After``, ``Allow`` ...)."""
        return {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"


class InvalidPayload(BadRequest):
    code = "invalid_payload"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class Unauthorized(GatewayError):
    """No credential, or one that does not hold; ``code`` says which (never why a signature failed)."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, code: str = "unauthorized", bearer_error: str | None = None) -> None:
        super().__init__(message)
        self.reason_code = code
        self.bearer_error = bearer_error

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.reason_code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        if self.bearer_error:
            return {"WWW-Authenticate": f'Bearer realm="hookgate", error="{self.bearer_error}"'}
        return {"WWW-Authenticate": 'Bearer realm="hookgate"'}


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class RouteNotFound(NotFound):
    code = "route_not_found"


class ScriptNotFound(NotFound):
    code = "script_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: set[str] | frozenset[str]) -> None:
        super().__init__(message, details={"allowed": sorted(allowed)})
        self.allowed = frozenset(allowed)

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(sorted(self.allowed))}


class RequestTimeout(GatewayError):
    status = 408
    code = "body_timeout"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class Gone(GatewayError):
    status = 410
    code = "gone"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class UnprocessableEntity(GatewayError):
    status = 422
    code = "unprocessable"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(GatewayError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, headers: dict[str, str]) -> None:
        super().__init__(message)
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class Overloaded(GatewayError):
    """Too much is already waiting; the caller should come back later rather than pile up."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class SyncTimeout(GatewayError):
    """A sync call waited its full timeout; the job keeps running and stays pollable."""

    status = 504
    code = "timeout"

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message, details={"job_id": job_id})


class ConfigError(Exception):
    """A configuration problem, reported with the dotted path of the offending value."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
