"""How the workstation answers errors: a page for a browser, JSON for the API.

No session: pages redirect to the login page, the API answers 401. A one-time password still
in use: pages go to the password form, the API answers 403. Bad input
(:class:`radloop.errors.InputError`) is 422 (409 for a study that cannot be signed or a
worksheet changed since the reader saw it, with what changed and by whom; 413 for a file too
large) and names the uploaded file, never where the server staged it.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from radloop.errors import InputError
from radloop.review.deps import SAFE_METHODS, NotAuthenticatedError, PasswordChangeRequiredError

__all__ = ["install_handlers"]

_STAGED = re.compile(r"\S*/(?:incoming|originals)/[0-9a-f]{16}/")


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/dicomweb/")) and path != "/openapi.json"


def install_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Register the workstation's exception handlers on ``app``."""

    @app.exception_handler(NotAuthenticatedError)
    async def _not_authenticated(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in SAFE_METHODS:
            return RedirectResponse("/login", status_code=303)
        return JSONResponse(
            {"detail": "sign in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"}
        )

    @app.exception_handler(PasswordChangeRequiredError)
    async def _change_password(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in SAFE_METHODS:
            return RedirectResponse("/account/password", status_code=303)
        return JSONResponse(
            {"detail": "replace your one-time password first (/account/password)"}, status_code=403
        )

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: Exception) -> Response:
        names = {kind.__name__ for kind in type(exc).__mro__}
        status = 409 if "NotSignableError" in names else 422
        if type(exc).__name__ == "FileTooLargeError":
            status = 413
        # Name the uploaded file, not where the server staged it.
        message = _STAGED.sub("", str(exc))
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
    async def _missing(_request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": f"no such study: {exc}"}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)
