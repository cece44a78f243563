"""The workstation's FastAPI app: ``create_app(settings, extensions=[...])``.

The factory assembles the parts: the context and dependencies routes are handed
(:mod:`~radloop.review.deps`), the templates (:mod:`~radloop.review.templating`), the error
handlers (:mod:`~radloop.review.handlers`), the upload limit
(:mod:`~radloop.review.middleware`), the drafting worker's lifespan
(:mod:`~radloop.review.lifespan`), the routers (pages, ``/api``, ``/dicomweb``) and the
installed extensions. Every route but the login page (and the static files it needs) requires
a session; every state-changing call carries the session's CSRF token. Extensions (the
monitoring dashboard, for one) are callables ``extension(app, ctx)`` given an
:class:`AppContext`: the store, the templates, ``require_role`` and a list of nav links.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from radloop.review.accounts import ensure_first_admin
from radloop.review.deps import (
    SESSION_COOKIE,
    AppContext,
    CurrentUser,
    Extension,
    NavLink,
    csrf_protect,
    current_user,
    require_role,
)
from radloop.review.handlers import audit_refusal, install_handlers
from radloop.review.lifespan import Lifespan
from radloop.review.middleware import BodyLimit, SecurityHeaders
from radloop.review.settings import Settings
from radloop.review.store import Store, open_store
from radloop.review.templating import workstation_templates

__all__ = [
    "EXTENSION_GROUP",
    "SESSION_COOKIE",
    "AppContext",
    "Extension",
    "NavLink",
    "app_from_env",
    "create_app",
    "current_user",
    "installed_extensions",
    "require_role",
]

STATIC = Path(__file__).parent / "static"

EXTENSION_GROUP = "radloop.review.extensions"
"""Entry-point group of workstation extensions (``radloop.monitor`` registers its dashboard)."""


def installed_extensions() -> list[Extension]:
    """The extensions installed packages register under :data:`EXTENSION_GROUP`.

    Loaded by name at start-up, so higher layers (monitoring) plug into the app without the
    app importing them.
    """
    from importlib.metadata import entry_points

    return [entry.load() for entry in entry_points(group=EXTENSION_GROUP)]


def create_app(
    settings: Settings,
    *,
    extensions: Sequence[Extension] | None = None,
    store: Store | None = None,
    start_worker: bool | None = None,
) -> FastAPI:
    """The workstation app for ``settings``; ``extensions`` are called with (app, ctx).

    ``extensions=None`` (the default) installs every :func:`installed_extensions`; pass a
    sequence (``()`` for none) to choose.

    The store is opened (and migrated) here unless given. On the first start, with no users,
    an ``admin`` account is created and its one-time password kept in
    ``ctx.first_admin_password`` for the caller to print once.
    """
    from radloop import __version__
    from radloop.review import api, dicomweb, pages, requeue

    store = store or open_store(settings)
    templates = workstation_templates()
    ctx = AppContext(settings=settings, store=store, templates=templates)
    with store.sessions() as session:
        ctx.first_admin_password = ensure_first_admin(session)
    run_worker = settings.in_process_worker if start_worker is None else start_worker
    app = FastAPI(
        lifespan=_closing_ask_pool(ctx, Lifespan(ctx, run_worker)),
        title="radloop review workstation",
        version=__version__,
        description="Draft, check, review and sign chest X-ray reports. Every draft is "
        "assistant output for review by a qualified reader, not a diagnosis.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    install_handlers(app, templates)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(requeue.router)
    app.include_router(api.router, prefix="/api", dependencies=[Depends(csrf_protect)])
    app.include_router(dicomweb.router, prefix="/dicomweb", dependencies=[Depends(csrf_protect)])

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    for extension in installed_extensions() if extensions is None else extensions:
        extension(app, ctx)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, on_refused=_audit_too_large)
    app.add_middleware(SecurityHeaders)  # outermost: the 413 of BodyLimit carries them too
    return app


async def _audit_too_large(request: Request, reason: str) -> None:
    await audit_refusal(request, 413, "refused_too_large", reason)


def _closing_ask_pool(ctx: AppContext, inner: Lifespan) -> Callable[[FastAPI], Any]:
    """``inner`` (the worker's lifespan), then at shutdown the ask pool refuses new questions
    without waiting for hung model calls (their daemon threads do not hold the process)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            try:
                yield
            finally:
                ctx.close_ask_pool()

    return lifespan


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (``radloop serve``, one or several server
    processes): settings from RADLOOP_*, the garbage collector tuned for serving."""
    from radloop.review.settings import settings_from_env

    app = create_app(settings_from_env())
    app.state.tune_gc = True  # done by the lifespan, once the app's long-lived objects exist
    return app
