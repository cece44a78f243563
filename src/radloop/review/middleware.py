"""ASGI middleware of the workstation: the upload size limit and the security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "BodyLimit", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Scripts only from the app's own files (no inline script, no eval). Inline styles stay
allowed: the monitoring page embeds its stylesheet, and a style cannot run code."""

_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes: by Content-Length up front, else as they
    stream (chunked uploads), before the app writes anything. Each refusal is handed to
    ``on_refused`` (the request and the reason: the workstation audits it)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        on_refused: Callable[[Request, str], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused

    async def _refused(self, scope: Scope) -> None:
        if self.on_refused is not None:
            await self.on_refused(Request(scope), _too_large(self.limit)["detail"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if (
            scope.get("http_version") in ("1.0", "1.1")
            and b"content-length" not in headers
            and b"transfer-encoding" not in headers
        ):
            await self.app(scope, receive, send)  # HTTP/1 without either: no body to count
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(_too_large(self.limit), status_code=413)
            await self._refused(scope)
            await response(scope, receive, send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            # Over the limit: answer 413 now, tell the app the client left, drop its reply.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                refused = True
                await self._refused(scope)
                await JSONResponse(_too_large(self.limit), status_code=413)(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


class SecurityHeaders:
    """Add the security headers to every response, whatever route or error produced it.

    Strict-Transport-Security only when the request came over TLS (scheme ``https``, as
    uvicorn reports it, behind a proxy with ``--proxy-headers``): on plain HTTP it would be
    ignored, and a browser must not pin HTTPS for a host that does not serve it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_SECURITY_HEADERS)
        if scope.get("scheme") == "https":
            extra.append(_HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def _too_large(limit: int) -> dict[str, str]:
    return {
        "detail": f"expected an upload of at most {limit} bytes, got more; nothing was "
        "stored. Split it into smaller uploads."
    }
