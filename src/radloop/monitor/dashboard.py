"""The monitoring dashboard as a FastAPI router, for the review app to mount.

``monitor_router(cases, require_role)`` serves, under its prefix:

- ``GET /monitor``: the dashboard (inline SVG charts, no scripts or external assets):
  agreement over time with its 95 % band, the revised share and guard precision on charts of
  their own, a forest plot per subgroup, drift statistics per window against the Bonferroni
  threshold, active alerts; inside the app's layout when a ``frame`` is given (the
  workstation's extension renders it through ``ctx.render``), else a self-contained page;
- ``GET /monitor/data.json``: the same figures as JSON (``Analysis.to_dict``);
- ``GET /monitor/export.csv?table=cases|windows|subgroups|kappa|drift``: CSV export.

Both arguments are injected, so mounting is two lines in the app::

    app.include_router(monitor_router(lambda: signed_cases(engine), require_auditor))

``cases`` is called on each request and returns ``SignedCase`` records; ``require_role`` is a
FastAPI dependency that raises (401/403) for users who are not auditors or admins. With
``audit`` (``audit(user, action, target, detail)``, the workstation's ``ctx.audit``) every
view is recorded: ``view_monitor`` for the page, ``export_monitor`` with target ``json`` or
``csv`` (and the table) for the exports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from radloop.monitor.analysis import CSV_TABLES, Analysis, MonitorSettings, analyse, csv_table
from radloop.monitor.cases import SignedCase
from radloop.monitor.page import dashboard_content, render_dashboard

__all__ = ["Frame", "monitor_router", "review_extension", "workstation_frame"]

CaseSource = Callable[[], Iterable[SignedCase]]
AuditSink = Callable[[str, str, str, dict[str, Any]], None]
Frame = Callable[[Request, str], Response]
"""Puts the dashboard's content (HTML text) into a page of the app that mounts the router."""

FRAME_TEMPLATE = "radloop-monitor.html"
"""The workstation template the extension adds: the dashboard inside ``base.html``."""
_FRAME_SOURCE = """{% extends "base.html" %}
{% block title %}Monitoring{% endblock %}
{% block body_class %}monitor-page{% endblock %}
{% block content %}{{ dashboard }}{% endblock %}
"""


def monitor_router(
    cases: CaseSource,
    require_role: Callable[..., Any],
    *,
    settings: MonitorSettings | None = None,
    back: str | None = None,
    audit: AuditSink | None = None,
    frame: Frame | None = None,
) -> APIRouter:
    """The dashboard's routes, every one behind ``require_role`` (and audited with ``audit``).

    With ``frame`` the page is the app's: ``frame(request, content)`` answers with the
    dashboard's content inside the app's layout (top bar, navigation, sign-out); without it,
    ``GET /monitor`` answers the self-contained document (with a link to ``back``).
    """
    base = settings or MonitorSettings()
    router = APIRouter(dependencies=[Depends(require_role)], tags=["monitor"])
    viewer_of = Depends(require_role)  # the router's own dependency: resolved once a request

    def record(viewer: Any, action: str, target: str, detail: dict[str, Any]) -> None:
        if audit is not None:
            audit(str(getattr(viewer, "username", None) or "-"), action, target, detail)

    def current(window_days: int | None) -> Analysis:
        chosen = base if window_days is None else MonitorSettings(
            base.f1_threshold, window_days, base.drift)  # fmt: skip
        return analyse(cases(), chosen)

    @router.get("/monitor", response_class=HTMLResponse)
    def dashboard(
        request: Request,
        window_days: int | None = Query(None, ge=1, le=366),
        viewer: Any = viewer_of,
    ) -> Response:
        analysis = current(window_days)
        response = (
            HTMLResponse(render_dashboard(analysis, back=back))
            if frame is None
            else frame(request, dashboard_content(analysis))
        )
        record(viewer, "view_monitor", "", {"window_days": window_days})
        return response

    @router.get("/monitor/data.json")
    def data(
        window_days: int | None = Query(None, ge=1, le=366), viewer: Any = viewer_of
    ) -> JSONResponse:
        figures = _finite(current(window_days).to_dict())
        record(viewer, "export_monitor", "json", {"window_days": window_days})
        return JSONResponse(figures)

    @router.get("/monitor/export.csv")
    def export(
        table: str = Query("cases", description=f"one of {', '.join(CSV_TABLES)}"),
        window_days: int | None = Query(None, ge=1, le=366),
        viewer: Any = viewer_of,
    ) -> PlainTextResponse:
        if table not in CSV_TABLES:
            raise HTTPException(
                status_code=422, detail=f"expected table one of {', '.join(CSV_TABLES)}, "
                f"got {table!r}")  # fmt: skip
        content = csv_table(current(window_days), table)
        record(viewer, "export_monitor", "csv", {"table": table, "window_days": window_days})
        return PlainTextResponse(
            content,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="monitor-{table}.csv"'},
        )

    return router


def _finite(value: Any) -> Any:
    """JSON has no NaN: replace non-finite floats with null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def review_extension(app: Any, ctx: Any) -> None:
    """Mount the dashboard in the review workstation for auditors and admins.

    Registered as the ``monitor`` entry point of ``radloop.review.extensions``, so
    ``radloop serve`` picks it up; ``ctx`` is the workstation's ``AppContext``. The page is
    rendered in the workstation's layout (:func:`workstation_frame`).
    """
    from radloop.review.deps import NavLink
    from radloop.review.store import signed_cases

    engine = ctx.store.engine

    def cases() -> Iterable[SignedCase]:
        return (SignedCase.from_dict(row) for row in signed_cases(engine))

    app.include_router(
        monitor_router(
            cases, ctx.require_role("auditor", "admin"), audit=ctx.audit,
            frame=workstation_frame(ctx),
        )
    )  # fmt: skip
    ctx.nav.append(NavLink("Monitoring", "/monitor", ("auditor", "admin")))


def workstation_frame(ctx: Any) -> Frame:
    """A :data:`Frame` that answers with the workstation's page: ``ctx.render`` of a template
    extending its ``base.html`` (top bar, navigation, signed-in user, sign-out)."""
    from markupsafe import Markup

    _add_frame_template(ctx.templates.env)

    def frame(request: Request, content: str) -> Response:
        response: Response = ctx.render(request, FRAME_TEMPLATE, dashboard=Markup(content))
        return response

    return frame


def _add_frame_template(env: Any) -> None:
    """Let the workstation's Jinja environment find :data:`FRAME_TEMPLATE` (once)."""
    from jinja2 import ChoiceLoader, DictLoader

    current = env.loader
    if isinstance(current, ChoiceLoader) and any(
        isinstance(loader, DictLoader) and FRAME_TEMPLATE in loader.mapping
        for loader in current.loaders
    ):
        return
    own = DictLoader({FRAME_TEMPLATE: _FRAME_SOURCE})
    env.loader = ChoiceLoader([current, own] if current is not None else [own])
