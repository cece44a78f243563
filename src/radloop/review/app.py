"""The workstation's FastAPI app: ``create_app(settings, extensions=[...])``.

Every route but the login page (and the static files it needs) requires a session; pages
redirect to the login page, the JSON API answers 401. Every state-changing call carries the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``). Extensions (the
monitoring dashboard, for one) are callables ``extension(app, ctx)`` given an
:class:`AppContext`: the store, the templates, ``require_role`` and a list of nav links.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radloop.errors import InputError
from radloop.review import audit
from radloop.review.accounts import AuthenticatedUser, ensure_first_admin, session_user
from radloop.review.settings import Settings
from radloop.review.store import Store, open_store

__all__ = [
    "SESSION_COOKIE",
    "AppContext",
    "Extension",
    "NavLink",
    "app_from_env",
    "create_app",
    "current_user",
    "require_role",
]

log = logging.getLogger("radloop.review")
HERE = Path(__file__).parent
SESSION_COOKIE = "radloop_session"
LOGIN_CSRF_COOKIE = "radloop_login_csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PASSWORD_PATHS = frozenset({"/account/password", "/logout"})
_STAGED = re.compile(r"\S*/(?:incoming|originals)/[0-9a-f]{16}/")


class NotAuthenticatedError(Exception):
    """No live session: pages redirect to the login page, the API answers 401."""


class PasswordChangeRequiredError(Exception):
    """A one-time password is still in use: pages go to the password form, the API 403s."""


@dataclass(frozen=True)
class NavLink:
    """A link in the top navigation, shown to the given roles (all when empty)."""

    label: str
    href: str
    roles: tuple[str, ...] = ()


class SessionCache:
    """Signed-in users by session token for a few seconds, to spare a query per request.

    Logging out drops the entry at once in this process; another server process may accept
    a logged-out or deactivated session for at most ``ttl_s`` more seconds.
    """

    def __init__(self, ttl_s: float = 3.0, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: dict[str, tuple[float, AuthenticatedUser]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> AuthenticatedUser | None:
        with self._lock:
            entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, user: AuthenticatedUser) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + self.ttl_s, user)

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._entries.pop(token or "", None)


@dataclass
class AppContext:
    """What an extension gets: storage, templates, role checks and the navigation."""

    settings: Settings
    store: Store
    templates: Jinja2Templates
    nav: list[NavLink] = field(default_factory=list)
    first_admin_password: str | None = None
    worker: Any = None
    audit_writer: audit.ChainWriter | None = None
    session_cache: SessionCache = field(default_factory=lambda: SessionCache())
    site_names_cache: tuple[float, list[str]] | None = None
    caches: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.audit_writer is None:
            self.audit_writer = audit.ChainWriter(self.store.engine)

    @property
    def sessions(self) -> Any:
        """The SQLAlchemy session factory."""
        return self.store.sessions

    def require_role(self, *roles: str) -> Callable[..., Awaitable[AuthenticatedUser]]:
        """A dependency: the signed-in user, or 403 unless they hold one of ``roles``."""
        return require_role(*roles)

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        """A page from ``template`` (extend ``base.html``) with the user and the nav links."""
        user = getattr(request.state, "user", None)
        links = [
            link
            for link in self.nav
            if not link.roles or (user is not None and user.role in link.roles)
        ]
        return self.templates.TemplateResponse(
            request, template, {"user": user, "nav": links, **values}, status_code=status
        )

    def audit(
        self, user: str, action: str, target: str = "", detail: dict[str, Any] | None = None
    ) -> None:
        """Append an event to the audit trail (user, action, target, detail; time is now)."""
        assert self.audit_writer is not None
        self.audit_writer.append(user, action, target, detail)


Extension = Callable[[FastAPI, AppContext], None]


async def context_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def current_user(request: Request) -> AuthenticatedUser:
    """The session's user; NotAuthenticatedError without a live session.

    Async, so that the common case (the token is in the session cache) costs no hop to the
    thread pool; a cache miss looks the session up in the database in the pool.
    """
    cached = getattr(request.state, "user", None)
    if isinstance(cached, AuthenticatedUser):
        return cached
    ctx: AppContext = request.app.state.ctx
    token = request.cookies.get(SESSION_COOKIE)
    user = ctx.session_cache.get(token) if token else None
    if user is None:
        user = await run_in_threadpool(_lookup_session, ctx, token)
        if user is None:
            raise NotAuthenticatedError()
        ctx.session_cache.put(str(token), user)
    if user.must_change_password and request.url.path not in _PASSWORD_PATHS:
        raise PasswordChangeRequiredError()
    request.state.user = user
    return user


def _lookup_session(ctx: AppContext, token: str | None) -> AuthenticatedUser | None:
    with ctx.store.sessions() as session:
        return session_user(session, token)


def require_role(*roles: str) -> Callable[..., Awaitable[AuthenticatedUser]]:
    """A dependency: the signed-in user, or 403 unless they hold one of ``roles``."""

    async def dependency(
        user: Annotated[AuthenticatedUser, Depends(current_user)],
    ) -> AuthenticatedUser:
        if roles and user.role not in roles:
            raise HTTPException(
                403, f"this needs the role {' or '.join(roles)}; you are signed in as {user.role}"
            )
        return user

    return dependency


async def csrf_protect(
    request: Request, user: Annotated[AuthenticatedUser, Depends(current_user)]
) -> None:
    """State-changing calls must carry the session's CSRF token (header or form field)."""
    if request.method in _SAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, user.csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
Ctx = Annotated[AppContext, Depends(context_of)]


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


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/dicomweb/")) and path != "/openapi.json"


def _install_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    @app.exception_handler(NotAuthenticatedError)
    async def _not_authenticated(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in _SAFE_METHODS:
            return RedirectResponse("/login", status_code=303)
        return JSONResponse(
            {"detail": "sign in first"}, status_code=401, headers={"WWW-Authenticate": "Cookie"}
        )

    @app.exception_handler(PasswordChangeRequiredError)
    async def _change_password(request: Request, _exc: Exception) -> Response:
        if _wants_html(request) and request.method in _SAFE_METHODS:
            return RedirectResponse("/account/password", status_code=303)
        return JSONResponse(
            {"detail": "replace your one-time password first (/account/password)"}, status_code=403
        )

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: Exception) -> Response:
        status = 409 if type(exc).__name__ == "NotSignableError" else 422
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
        return JSONResponse({"detail": message}, status_code=status)

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


class _Lifespan:
    """Sizes the request thread pool, starts the in-process drafting worker with the app
    and stops it at shutdown."""

    def __init__(self, ctx: AppContext, enabled: bool) -> None:
        self.ctx = ctx
        self.enabled = enabled

    @contextlib.asynccontextmanager
    async def __call__(self, _app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # Synchronous endpoints run in this pool. AnyIO's default of 40 threads lets 40
        # requests fight over one GIL at once: each is slowed by all the others and the
        # last ones wait longest (a long latency tail at the same throughput). A few
        # threads keep the processor busy while one waits on the database, and the rest
        # of the requests queue in arrival order.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = self.ctx.settings.request_threads
        if not self.enabled:
            yield
            return
        from radloop.review.worker import DraftingWorker

        stop = threading.Event()
        worker = DraftingWorker(self.ctx.store)
        self.ctx.worker = worker
        thread = threading.Thread(
            target=worker.serve, args=(stop,), daemon=True, name="radloop-drafting"
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            worker.wake.set()
            thread.join(timeout=10)


def _certainty(p: float | None) -> str:
    from radloop.safety import certainty_phrase

    return certainty_phrase(p).value if p is not None else "no probability"


def _finding_sentence(found: dict[str, Any]) -> str:
    """The writer's plain sentence for a stored finding (the draft states it with certainty)."""
    from radloop.report import Finding
    from radloop.report.writer import describe

    try:
        return describe(Finding.from_dict(found))
    except (InputError, ValueError, KeyError):
        return str(found.get("code", "?"))


_DICT_ATTRIBUTES = frozenset(dir(dict))


def _fast_dict_attributes(env: Any) -> None:
    """``{{ row.name }}`` on a plain dict without Jinja's failed-attribute detour.

    Jinja resolves ``row.name`` by trying ``getattr(row, "name")`` first and catching the
    AttributeError, then ``row["name"]``. The pages render read models (plain dicts) with
    hundreds of such lookups a worklist page, and the raised-and-caught exceptions were the
    largest single cost of rendering. A plain dict has no attributes but ``dict``'s own, so
    looking the key up first for any other name gives exactly Jinja's result, faster.
    """
    generic = env.getattr

    def getattr_(obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return generic(obj, attribute)

    env.getattr = getattr_


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
    from radloop.review import api, dicomweb, pages

    store = store or open_store(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.auto_reload = False  # templates ship with the package; no stat per render
    _fast_dict_attributes(templates.env)
    ctx = AppContext(settings=settings, store=store, templates=templates)
    with store.sessions() as session:
        ctx.first_admin_password = ensure_first_admin(session)
    templates.env.filters["certainty"] = _certainty
    templates.env.filters["finding_sentence"] = _finding_sentence
    run_worker = settings.in_process_worker if start_worker is None else start_worker
    app = FastAPI(
        lifespan=_Lifespan(ctx, run_worker),
        title="radloop review workstation",
        version=__version__,
        description="Draft, check, review and sign chest X-ray reports. Every draft is "
        "assistant output for review by a qualified reader, not a diagnosis.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    _install_handlers(app, templates)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router, prefix="/api", dependencies=[Depends(csrf_protect)])
    app.include_router(dicomweb.router, prefix="/dicomweb", dependencies=[Depends(csrf_protect)])

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    for extension in installed_extensions() if extensions is None else extensions:
        extension(app, ctx)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (several server processes): settings from RADLOOP_*."""
    from radloop.review.settings import settings_from_env

    return create_app(settings_from_env())
