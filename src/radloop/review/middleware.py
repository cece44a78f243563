"""ASGI middleware of the workstation: the upload size limit."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes: by Content-Length up front, else as they
    stream (chunked uploads), before the app writes anything."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

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
                await JSONResponse(_too_large(self.limit), status_code=413)(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


def _too_large(limit: int) -> dict[str, str]:
    return {
        "detail": f"expected an upload of at most {limit} bytes, got more; nothing was "
        "stored. Split it into smaller uploads."
    }
