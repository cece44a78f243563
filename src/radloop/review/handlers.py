"""How the workstation answers errors: a page for a browser, JSON for the API.

No session: pages redirect to the login page, the API answers 401. A one-time password still
in use: pages go to the password form, the API answers 403. Bad input
(:class:`radloop.errors.InputError`) is 422 (409 for a study that cannot be signed or a
worksheet changed since the reader saw it, with what changed and by whom; 413 for a file too
large) and names the uploaded file, never where the server staged it.

Every refusal is written to the audit trail, target the request's path, detail the status,
method, reason and client address: 401 (user ``-``), 403 (role, CSRF token, one-time
password), 409, 413, 422 (bad input, refused uploads), 429, 503 and 504. A refusal that names
its action (:class:`~radloop.review.deps.RefusedError`) is audited under it; others under
their status's action (:data:`REFUSAL_ACTIONS`). Redirects of pages to the login page and
404s are not refusals and are not audited. A browser asking for a page (it accepts
``text/html``) gets 403, 404 and 405 as a page of the app in plain words, never raw JSON.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from radloop.errors import InputError
from radloop.review.deps import (
    SAFE_METHODS,
    SESSION_COOKIE,
    NotAuthenticatedError,
    PasswordChangeRequiredError,
    client_address,
)

__all__ = ["REFUSAL_ACTIONS", "audit_refusal", "install_handlers"]

log = logging.getLogger("radloop.review.handlers")

REFUSAL_ACTIONS = {
    401: "refused_unauthenticated",
    403: "refused_forbidden",
    409: "refused_conflict",
    413: "refused_too_large",
    422: "refused_input",
    429: "refused_too_many",
    503: "refused_unavailable",
    504: "refused_timeout",
}
"""The audit action of a refusal by status, unless the refusal names its own."""


async def audit_refusal(request: Request, status: int, action: str, reason: str) -> None:
    """Write a refusal to the audit trail: the user (``-`` when not signed in), the action,
    the path, and the status, method, reason and client address.

    The append waits for its commit, so it runs in the thread pool, not on the event loop.
    A refusal is answered even when its audit entry cannot be written (that is logged).
    """
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return
    user = getattr(request.state, "user", None)
    if user is None:  # refused before the session was looked up (a body too large)
        token = request.cookies.get(SESSION_COOKIE)
        user = ctx.session_cache.get(token) if token else None
    username = getattr(user, "username", None) or "-"
    detail = {
        "status": status,
        "method": request.method,
        "reason": reason[:300],
        "client": client_address(request, ctx.settings.trusted_proxies),
    }
    try:
        await run_in_threadpool(ctx.audit, username, action, request.url.path, detail)
    except Exception:
        log.warning("could not audit a refusal (%s %s)", action, request.url.path, exc_info=True)


_STAGED = re.compile(r"\S*/(?:incoming|originals)/[0-9a-f]{16}/")


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/dicomweb/")) and path != "/openapi.json"


def _browser(request: Request) -> bool:
    """A page request from a browser (it accepts HTML): errors come as pages of the app."""
    return _wants_html(request) and "text/html" in request.headers.get("accept", "")


_PLAIN = {
    401: "Sign in to see this page.",
    403: "You are signed in, but your role cannot open this page.",
    404: "There is no page at this address.",
    405: "This address cannot be opened this way.",
}


def _error_page(
    request: Request, templates: Jinja2Templates, status: int, message: str
) -> Response:
    """The error in the app's frame (top bar, nav, sign-out), in plain words."""
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        values = {"code": status, "message": message, "user": None, "nav": []}
        return templates.TemplateResponse(request, "error.html", values, status_code=status)
    if getattr(request.state, "user", None) is None:
        token = request.cookies.get(SESSION_COOKIE)
        request.state.user = ctx.session_cache.get(token) if token else None
    response: Response = ctx.render(request, "error.html", status, code=status, message=message)
    return response


def install_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Register the workstation's exception handlers on ``app``."""

    @app.exception_handler(NotAuthenticatedError)
    async def _not_authenticated(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in SAFE_METHODS:
            return RedirectResponse("/login", status_code=303)
        await audit_refusal(request, 401, REFUSAL_ACTIONS[401], "sign in first")
        return JSONResponse(
            {"detail": "sign in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"}
        )

    @app.exception_handler(PasswordChangeRequiredError)
    async def _change_password(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in SAFE_METHODS:
            return RedirectResponse("/account/password", status_code=303)
        message = "replace your one-time password first (/account/password)"
        await audit_refusal(request, 403, "refused_password_change", message)
        return JSONResponse({"detail": message}, status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        action = getattr(exc, "action", None) or REFUSAL_ACTIONS.get(exc.status_code)
        if action is not None:
            await audit_refusal(request, exc.status_code, action, str(exc.detail))
        if _browser(request) and exc.status_code in _PLAIN:
            detail = str(exc.detail) if exc.status_code == 403 else ""
            message = _PLAIN[exc.status_code] + (f" ({detail})" if detail else "")
            return _error_page(request, templates, exc.status_code, message)
        return await http_exception_handler(request, exc)

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: Exception) -> Response:
        names = {kind.__name__ for kind in type(exc).__mro__}
        status = 409 if "NotSignableError" in names else 422
        if type(exc).__name__ == "FileTooLargeError":
            status = 413
        # Name the uploaded file, not where the server staged it.
        message = _STAGED.sub("", str(exc))
        await audit_refusal(request, status, REFUSAL_ACTIONS[status], message)
        if _wants_html(request):
            return templates.TemplateResponse(
                request,
                "error.html",
                {"code": status, "message": message, "user": None, "nav": []},
                status_code=status,
            )
        details = getattr(exc, "details", None)
        extra = details() if callable(details) else {}
        return JSONResponse({"detail": message, **extra}, status_code=status)

    @app.exception_handler(KeyError)
    async def _missing(request: Request, exc: Exception) -> Response:
        if _browser(request):
            return _error_page(request, templates, 404, f"There is no study {exc}.")
        return JSONResponse({"detail": f"no such study: {exc}"}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        await audit_refusal(request, 422, "refused_invalid", reason)
        return JSONResponse({"detail": errors}, status_code=422)
