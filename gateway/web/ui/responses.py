"""What every dashboard page answers with: its security headers, HTML, redirects, and the check
that a person is signed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.web.ui import sessions as ui
from gateway.web.ui.sessions import Signed

__all__ = ["CSP", "Handler", "html", "page", "redirect", "security_headers"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def html(text: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    security_headers(response)
    return response


def redirect(location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    security_headers(response)
    return response


def page(handler: Callable[[web.Request, Signed], Awaitable[web.StreamResponse]]) -> Handler:
    """A page for a signed-in person; anybody else is sent to the sign-in form."""

    async def signed_page(request: web.Request) -> web.StreamResponse:
        signed = await ui.signed_in(request)
        if signed is None:
            if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
                return redirect("/ui/login")
            ui.require(None)
        assert signed is not None
        return await handler(request, signed)

    return signed_page
