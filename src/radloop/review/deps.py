"""What a route is handed: the app context, the signed-in user, role checks, the CSRF check.

Routers (:mod:`~radloop.review.pages`, :mod:`~radloop.review.api`,
:mod:`~radloop.review.dicomweb`) and extensions take these as FastAPI dependencies, written
as ``Annotated`` type aliases (``ctx: Ctx``, ``user: Radiologist``); none of them imports the
app that mounts it. Without a live session :func:`current_user` raises
:class:`NotAuthenticatedError` (pages redirect to the login page, the API answers 401);
state-changing calls carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from radloop.review import audit
from radloop.review.accounts import AuthenticatedUser, session_user
from radloop.review.askpool import AskPool
from radloop.review.queries import CountCache
from radloop.review.settings import Settings
from radloop.review.store import Store

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "Admin",
    "AppContext",
    "Auditor",
    "Ctx",
    "CurrentUser",
    "Extension",
    "Ingester",
    "NavLink",
    "NotAuthenticatedError",
    "PasswordChangeRequiredError",
    "Radiologist",
    "RefusedError",
    "SessionCache",
    "client_address",
    "context_of",
    "csrf_protect",
    "current_user",
    "require_role",
]

SESSION_COOKIE = "radloop_session"
LOGIN_CSRF_COOKIE = "radloop_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PASSWORD_PATHS = frozenset({"/account/password", "/logout"})


class NotAuthenticatedError(Exception):
    """No live session: pages redirect to the login page, the API answers 401."""


class PasswordChangeRequiredError(Exception):
    """A one-time password is still in use: pages go to the password form, the API 403s."""


class RefusedError(HTTPException):
    """An HTTP refusal that names its audit action (``refused_role``, ``refused_csrf`` ...).

    Answered like any :class:`HTTPException`; the workstation's handler writes it to the
    audit trail under ``action`` (other refusals get an action from their status code).
    """

    def __init__(self, status_code: int, detail: str, action: str) -> None:
        super().__init__(status_code, detail)
        self.action = action


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

    def drop_user(self, user_id: int, keep: str | None = None) -> None:
        """Forget every cached session of ``user_id`` but ``keep`` (a password change)."""
        with self._lock:
            for token in [t for t, (_, u) in self._entries.items() if u.id == user_id]:
                if token != keep:
                    del self._entries[token]


@dataclass
class AppContext:
    """What routes and extensions get: storage, templates, role checks and the navigation."""

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
    counts: CountCache = field(default_factory=CountCache)
    """Worklist counts, a few seconds old at most (:class:`~radloop.review.queries.CountCache`)."""
    _ask_pool: AskPool | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.audit_writer is None:
            self.audit_writer = audit.ChainWriter(self.store.engine, self.store.seal)

    @property
    def ask_pool(self) -> AskPool:
        """The ask box's bounded pool (:mod:`~radloop.review.askpool`), made on first use."""
        with self._lock:
            if self._ask_pool is None:
                self._ask_pool = AskPool(self.settings.ask_threads, self.settings.ask_per_user)
            return self._ask_pool

    def close_ask_pool(self) -> None:
        """Refuse new questions (at shutdown); hung model calls are not waited for."""
        with self._lock:
            if self._ask_pool is not None:
                self._ask_pool.close()

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
"""A workstation extension: called once with the app and its :class:`AppContext`."""


async def context_of(request: Request) -> AppContext:
    """The context of the app serving ``request``."""
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
            raise RefusedError(
                403,
                f"this needs the role {' or '.join(roles)}; you are signed in as {user.role}",
                "refused_role",
            )
        return user

    return dependency


async def csrf_protect(
    request: Request, user: Annotated[AuthenticatedUser, Depends(current_user)]
) -> None:
    """State-changing calls must carry the session's CSRF token (header or form field)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, user.csrf_token):
        raise RefusedError(
            403, "missing or wrong CSRF token; reload the page and try again", "refused_csrf"
        )


Ctx = Annotated[AppContext, Depends(context_of)]
CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
Radiologist = Annotated[AuthenticatedUser, Depends(require_role("radiologist"))]
Ingester = Annotated[AuthenticatedUser, Depends(require_role("radiologist", "admin"))]
Auditor = Annotated[AuthenticatedUser, Depends(require_role("auditor", "admin"))]
Admin = Annotated[AuthenticatedUser, Depends(require_role("admin"))]


def client_address(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    address in ``X-Forwarded-For`` that is not one of the trusted proxies.

    Read from the right: a client can write anything into the header, but each trusted
    proxy appends the address it saw, so the right-most untrusted entry is the real one.
    """
    import ipaddress

    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(n) for n in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not trusted(peer):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop[:64]
    return hops[0][:64] if hops else peer
