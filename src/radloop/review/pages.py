"""Server-rendered pages: login, worklist, review, audit trail, users.

The login form is protected against login CSRF by a double-submit cookie (the form's token
must match a cookie set with the form); every other form carries the session's CSRF token.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import Row

from radloop.review.accounts import (
    LoginThrottledError,
    authenticate,
    change_password,
    create_session,
    create_user,
    end_session,
)
from radloop.review.communicate import router as communicate_router
from radloop.review.communication import METHODS, communications, report_line
from radloop.review.compose import reporting_tools
from radloop.review.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Admin,
    AppContext,
    Auditor,
    Ctx,
    CurrentUser,
    RefusedError,
    client_address,
    csrf_protect,
)
from radloop.review.queries import (
    STATUS_FILTERS,
    WorklistFilter,
    next_unsigned,
    row_summary,
    sites,
    study_detail,
    worklist_rows,
)
from radloop.review.readiness import sign_blockers
from radloop.review.settings import ROLES
from radloop.review.spacing import image_spacings
from radloop.review.worksheet import ReviewItem

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.routes.extend(communicate_router.routes)  # its form and API routes, served here
PAGE = 50


def _render(
    ctx: AppContext, request: Request, name: str, status: int = 200, **values: Any
) -> HTMLResponse:
    response = ctx.render(request, name, status, **values)
    assert isinstance(response, HTMLResponse)
    return response


def _client(request: Request, ctx: AppContext) -> str:
    return client_address(request, ctx.settings.trusted_proxies)


@router.get("/login")
def login_page(request: Request, ctx: Ctx, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(ctx, request, "login.html", 200, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)],
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise RefusedError(
            403, "the login form expired; reload the page and try again", "refused_login_csrf"
        )
    with ctx.store.sessions() as session:
        try:
            user = authenticate(session, ctx.settings, username, password, _client(request, ctx))
        except LoginThrottledError as throttled:
            ctx.audit(username[:64] or "-", "login_throttled", _client(request, ctx))
            return _render(
                ctx,
                request,
                "login.html",
                429,
                login_csrf=expected,
                error=f"Too many failed attempts. Try again in {_wait(throttled.retry_after_s)}.",
            )
        if user is None:
            ctx.audit(username[:64] or "-", "login_failed", _client(request, ctx))
            return _render(
                ctx,
                request,
                "login.html",
                401,
                login_csrf=expected,
                error="Wrong user name or password.",
            )
        token = create_session(session, ctx.settings, user)
    ctx.audit(user.username, "login", _client(request, ctx))
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure,
        max_age=int(ctx.settings.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


def _wait(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 120 else f"{(seconds + 59) // 60} minutes"


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, ctx: Ctx, user: CurrentUser) -> Response:
    with ctx.store.sessions() as session:
        end_session(session, request.cookies.get(SESSION_COOKIE))
    ctx.session_cache.drop(request.cookies.get(SESSION_COOKIE))
    ctx.audit(user.username, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


SITES_TTL_S = 5.0


def _site_names(ctx: AppContext, session: Any) -> list[str]:
    """The sites of the worklist's filter menu, read at most every few seconds.

    Listing them is a scan of the studies' site index on every worklist view, for a menu
    that changes only when a study from a new site arrives; a new site shows in the menu
    within ``SITES_TTL_S`` seconds (filtering by it works at once).
    """
    now = time.monotonic()
    cached = ctx.site_names_cache
    if cached is not None and cached[0] > now:
        return cached[1]
    names = sites(session)
    ctx.site_names_cache = (now + SITES_TTL_S, names)
    return names


def _row_renderer(ctx: AppContext) -> Callable[[Row[Any]], Markup]:
    """Worklist rows as HTML, memoised by the row's content.

    The row is the key (every column the row shows), so a study that changed renders anew;
    an unchanged one, seen again on the next refresh of the worklist, costs a lookup instead
    of fifty-odd escaped template expressions.
    """
    cached: Callable[[Row[Any]], Markup] | None = ctx.caches.get("worklist_row")
    if cached is not None:
        return cached
    template = ctx.templates.get_template("worklist_row.html")

    @functools.lru_cache(maxsize=4096)
    def render(row: Row[Any]) -> Markup:
        return Markup(template.render(s=dict(row_summary(row))))

    ctx.caches["worklist_row"] = render
    return render


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.get("/")
def worklist_page(
    request: Request,
    ctx: Ctx,
    user: CurrentUser,
    status: Annotated[str, Query(max_length=20)] = "to_review",
    urgent: Annotated[str | None, Query(max_length=3)] = None,
    flagged: Annotated[str | None, Query(max_length=3)] = None,
    out_of_scope: Annotated[str | None, Query(max_length=3)] = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    if status not in STATUS_FILTERS:
        status = "to_review"
    filters = WorklistFilter(
        status,
        _flag(urgent),
        _flag(flagged),
        _flag(out_of_scope),
        site or None,
        PAGE,
        (page - 1) * PAGE,
    )
    with ctx.store.reading() as connection:
        total, exact, rows = worklist_rows(connection, filters, ctx.counts)
        site_names = _site_names(ctx, connection)
    render_row = _row_renderer(ctx)
    ctx.audit(user.username, "view_worklist", "", {"status": status, "page": page})
    args = {
        "status": status,
        "urgent": urgent or "",
        "flagged": flagged or "",
        "out_of_scope": out_of_scope or "",
        "site": site or "",
    }
    return _render(
        ctx,
        request,
        "worklist.html",
        rows=[render_row(row) for row in rows],
        total=total,
        total_exact=exact,
        page=page,
        pages=max(1, -(-total // PAGE)),
        filters=args,
        sites=site_names,
        statuses=list(STATUS_FILTERS),
    )


@router.get("/studies/{study_id}")
def study_page(
    study_id: str,
    request: Request,
    ctx: Ctx,
    user: CurrentUser,
    communication_error: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    if len(study_id) > 32:
        raise HTTPException(404, "no such study")
    with ctx.store.reading() as connection:
        try:
            detail = study_detail(connection, study_id)
        except KeyError:
            return _render(
                ctx, request, "error.html", 404, code=404, message=f"No study {study_id!r}."
            )
        prior = study_detail(connection, detail["prior_id"]) if detail["prior_id"] else None
        for shown in (detail, prior) if prior else (detail,):
            spacings = image_spacings(ctx.store, connection, shown["id"])
            for image in shown["images"]:
                image.update(spacings.get(image["position"], {}))
        records = communications(connection, study_id) if detail["urgent"] else []
    blockers = sign_blockers(
        [ReviewItem(**item) for item in detail["items"]],
        urgent=detail["urgent"],
        triage_reasons=detail["triage_reasons"],
        records=records,
    )
    ctx.audit(user.username, "view", study_id)
    return _render(
        ctx,
        request,
        "study.html",
        study=detail,
        prior=prior,
        can_sign=user.role == "radiologist",
        communications=records,
        communication_line=report_line(records),
        communication_error=communication_error,
        methods=METHODS,
        blockers=[asdict(b) for b in blockers],
        **reporting_tools(detail),
    )


@router.get("/worklist/next")
def next_study(
    ctx: Ctx, user: CurrentUser, after: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    """The next unsigned study after ``after`` in worklist order (urgent first, then by
    arrival; from the top again past the end), or the worklist when none is left: the
    "Sign and next" button lands here once the signature is stored."""
    with ctx.store.reading() as connection:
        upcoming = next_unsigned(connection, after)
    return RedirectResponse(f"/studies/{upcoming}" if upcoming else "/", status_code=303)


@router.get("/account/password")
def password_page(
    request: Request, ctx: Ctx, user: CurrentUser, error: str | None = None
) -> HTMLResponse:
    return _render(ctx, request, "password.html", error=error, forced=user.must_change_password)


@router.post("/account/password", dependencies=[Depends(csrf_protect)])
def password_change(
    request: Request,
    ctx: Ctx,
    user: CurrentUser,
    current: Annotated[str, Form(max_length=200)],
    new: Annotated[str, Form(max_length=200)],
    repeat: Annotated[str, Form(max_length=200)],
) -> Response:
    from radloop.errors import InputError

    try:
        if new != repeat:
            raise InputError("the new password twice", "two different ones", source="repeat")
        with ctx.store.sessions() as session:
            change_password(
                session, user.id, current, new, keep_token=request.cookies.get(SESSION_COOKIE)
            )
    except InputError as error:
        return _render(
            ctx, request, "password.html", 422, error=str(error), forced=user.must_change_password
        )
    ctx.session_cache.drop(request.cookies.get(SESSION_COOKIE))
    ctx.session_cache.drop_user(user.id)  # the other sessions ended with the change
    ctx.audit(user.username, "change_password")
    return RedirectResponse("/", status_code=303)


AUDIT_PAGE = 200


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Ctx,
    user: Auditor,
    who: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    study: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """The trail, newest first, filtered by user, action, target (a study) and UTC dates."""
    import datetime

    from sqlalchemy import select

    from radloop.review.audit import verify_chain
    from radloop.review.db import AuditEntry

    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(AUDIT_PAGE)
    if who:
        query = query.where(AuditEntry.username == who)
    if action:
        query = query.where(AuditEntry.action == action)
    if study:
        query = query.where(AuditEntry.target == study)
    problems_in_filter = []
    for name, value, shift in (("since", since, 0), ("until", until, 1)):
        if not value:
            continue
        try:
            day = datetime.date.fromisoformat(value) + datetime.timedelta(days=shift)
        except ValueError:
            problems_in_filter.append(f"{name}: expected a date such as 2026-12-07, got {value!r}")
            continue
        # Times are stored as ISO 8601 UTC text, which sorts as the times do.
        bound = day.isoformat()
        query = query.where(AuditEntry.at >= bound if shift == 0 else AuditEntry.at < bound)
    with ctx.store.sessions() as session:
        checked, problems = verify_chain(session, ctx.store.seal)
        entries = list(session.execute(query).scalars())
        actions = sorted(session.execute(select(AuditEntry.action).distinct()).scalars())
    filters = {"who": who, "action": action, "study": study, "since": since, "until": until}
    ctx.audit(user.username, "view_audit", "", {k: v for k, v in filters.items() if v})
    return _render(
        ctx,
        request,
        "audit.html",
        entries=entries,
        checked=checked,
        problems=problems,
        filters=filters,
        actions=actions,
        filter_errors=problems_in_filter,
        limit=AUDIT_PAGE,
    )


@router.get("/audit/{seq}")
def audit_entry_page(seq: int, request: Request, ctx: Ctx, user: Auditor) -> HTMLResponse:
    """One entry: every field, its detail laid out, and its place in the hash chain."""
    import json

    from radloop.review.db import AuditEntry

    with ctx.store.sessions() as session:
        entry = session.get(AuditEntry, seq)
        if entry is None:
            raise HTTPException(404, f"no audit entry {seq}")
        try:
            detail = json.loads(entry.detail or "{}")
        except ValueError:
            detail = entry.detail
    ctx.audit(user.username, "view_audit_entry", str(seq))
    return _render(ctx, request, "audit_entry.html", entry=entry, detail=detail)


@router.get("/admin/users")
def users_page(
    request: Request,
    ctx: Ctx,
    user: Admin,
    message: str | None = None,
) -> HTMLResponse:
    from sqlalchemy import select

    from radloop.review.db import User

    with ctx.store.sessions() as session:
        users = list(session.execute(select(User).order_by(User.username)).scalars())
    ctx.audit(user.username, "view_users")
    return _render(ctx, request, "users.html", users=users, roles=ROLES, message=message)


@router.post("/admin/users", dependencies=[Depends(csrf_protect)])
def users_add(
    request: Request,
    ctx: Ctx,
    user: Admin,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=20)],
    full_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    with ctx.store.sessions() as session:
        create_user(session, username, password, role, full_name)
        session.commit()
    ctx.audit(user.username, "add_user", username, {"role": role})
    return RedirectResponse(f"/admin/users?message=added+{username}", status_code=303)
