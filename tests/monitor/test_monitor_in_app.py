"""The monitoring dashboard inside the workstation: its layout, its own guard-precision chart,
and the standalone report file that stays self-contained."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitor_builders import START, effusion, make_case

from radloop.monitor.analysis import Analysis, analyse
from radloop.monitor.cases import FlagOutcome, SignedCase
from radloop.monitor.page import dashboard_content, render_dashboard

WEEK = datetime.timedelta(days=7)
PASSWORD = "correct horse battery staple 7"


def two_weeks() -> list[SignedCase]:
    """Week one: drafts signed unchanged, every flag rejected (revised 0, guard precision 1).
    Week two: every draft revised, every flag kept (revised 1, guard precision 0)."""
    rejected = (FlagOutcome("pleural_effusion", "unsupported", "rejected"),)
    kept = (FlagOutcome("pleural_effusion", "unsupported", "kept"),)
    first = [make_case(i, flags=rejected) for i in range(10)]
    second = [
        make_case(100 + i, (effusion(),), (), flags=kept, when=START + WEEK + i * WEEK / 20)
        for i in range(10)
    ]
    return first + second


def _svg(page: str, css_id: str) -> ET.Element:
    match = re.search(rf'<svg [^>]*id="{css_id}".*?</svg>', page, re.S)
    assert match, f"no chart {css_id}"
    return ET.fromstring(match.group())


def _points(chart: ET.Element) -> list[str]:
    """The data points' tooltips ("series: value") of a chart."""
    ns = "{http://www.w3.org/2000/svg}"
    return [c.findtext(f"{ns}title") or "" for c in chart.iter(f"{ns}circle")]


def _texts(chart: ET.Element) -> list[str]:
    return [t.text or "" for t in chart.iter("{http://www.w3.org/2000/svg}text")]


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return analyse(two_weeks())


def test_revised_share_and_guard_precision_are_on_separate_charts(analysis: Analysis) -> None:
    windows = analysis.summary.windows
    assert [w.revised_rate for w in windows] == [0.0, 1.0]
    assert [w.guard_precision for w in windows] == [1.0, 0.0]
    page = dashboard_content(analysis)
    revised, guard = _svg(page, "chart-revised"), _svg(page, "chart-guard")
    assert _points(revised) == ["significantly revised: 0", "significantly revised: 1"]
    assert _points(guard) == ["guard precision: 1", "guard precision: 0"]
    assert "Significantly revised share" in revised.get("aria-label", "")
    assert "guard precision" not in " ".join(_texts(revised)).lower()
    assert "Guard precision" in guard.get("aria-label", "")
    assert "guard precision" in _texts(guard) and "share of flags" in _texts(guard)
    assert "significantly revised" not in " ".join(_texts(guard)).lower()


def test_guard_chart_says_so_when_nothing_was_flagged() -> None:
    page = dashboard_content(analyse([make_case(i) for i in range(5)]))
    assert "id='chart-guard'" in page and "guard precision is not measured" in page
    assert 'id="chart-guard"' not in page


def test_standalone_report_is_self_contained(analysis: Analysis) -> None:
    page = render_dashboard(analysis, export_base=None)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and ".monitor .chart" in page
    for outside in ("<link", "<script", "src=", "/static/", "@import", "url("):
        assert outside not in page
    assert "href='data.json'" in page and 'id="chart-guard"' in page


def test_content_styles_stay_inside_the_dashboard(analysis: Analysis) -> None:
    style = re.search(r"<style>(.*?)</style>", dashboard_content(analysis), re.S)
    assert style
    selectors = [rule.split("{")[0] for rule in style.group(1).replace("\n", "").split("}")]
    for selector in filter(None, (s.strip() for s in selectors)):
        assert all(part.strip().startswith(".monitor") for part in selector.split(",")), selector


# --- inside the workstation ------------------------------------------------------------------

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


def _login(client: Any, username: str) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from radloop.monitor.dashboard import review_extension
    from radloop.review.accounts import create_user
    from radloop.review.app import create_app
    from radloop.review.settings import Settings
    from radloop.review.store import open_store

    settings = Settings(data_dir=tmp_path_factory.mktemp("in-app"), in_process_worker=False)
    store = open_store(settings)
    with store.sessions() as session:
        create_user(session, "aud", PASSWORD, "auditor", "Dr Audrey Auditor")
        create_user(session, "rad", PASSWORD, "radiologist", "Dr Rad")
        session.commit()
    yield create_app(settings, store=store, extensions=[review_extension], start_worker=False)
    store.close()


def _client(app: Any, username: str) -> Any:
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url="https://testserver")
    assert _login(client, username).status_code == 303
    return client


def test_dashboard_is_rendered_in_the_workstation_layout(app: Any) -> None:
    with _client(app, "aud") as client:
        page = client.get("/monitor")
        worklist = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert text.count("<html") == 1 and text.count("<body") == 1
    assert '<header class="topbar">' in text and 'href="/static/review.css"' in text
    assert 'action="/logout"' in text and "Sign out" in text and "Dr Audrey Auditor" in text
    assert '<a href="/monitor">Monitoring</a>' in text and '<a href="/audit">' in text
    assert "<title>Monitoring · radloop review</title>" in text
    main = text[text.index("<main>") : text.index("</main>")]
    assert "<div class='monitor'>" in main and "Monitoring: drafts compared" in main
    assert "No signed cases yet." in main and "← Worklist" not in main
    assert "href='monitor/data.json'" in main

    # The same frame as the worklist's: the top bar up to the assistant banner is identical.
    def frame(html: str) -> str:
        return html[html.index('<header class="topbar">') : html.index("<main>")]

    assert frame(text) == frame(worklist.text)


def test_radiologists_are_refused_and_strangers_sent_to_log_in(app: Any) -> None:
    from fastapi.testclient import TestClient

    with _client(app, "rad") as client:
        assert client.get("/monitor").status_code == 403
    with TestClient(app, base_url="https://testserver") as anonymous:
        assert anonymous.get("/monitor", follow_redirects=False).status_code == 303


def test_extension_adds_its_template_once(app: Any, tmp_path: Path) -> None:
    from jinja2 import ChoiceLoader

    from radloop.monitor.dashboard import FRAME_TEMPLATE, _add_frame_template

    env = app.state.ctx.templates.env
    loaders_before = len(env.loader.loaders)
    _add_frame_template(env)
    assert isinstance(env.loader, ChoiceLoader) and len(env.loader.loaders) == loaders_before
    assert env.get_template(FRAME_TEMPLATE) is not None


def test_in_a_browser_the_dashboard_has_the_top_bar_and_signs_out(app: Any) -> None:
    """Chromium: an auditor signs in, opens Monitoring from the top bar, sees the dashboard
    under the top bar and signs out from it."""
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("uvicorn")
    from browserkit import CHROMIUM, chromium, served

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    with served(app) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/login")
        page.fill("input[name=username]", "aud")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(f"{url}/")
        page.click("header.topbar nav >> text=Monitoring")
        page.wait_for_url(f"{url}/monitor")
        bar = page.locator("header.topbar").bounding_box()
        heading = page.locator(".monitor h1").bounding_box()
        assert bar is not None and heading is not None and heading["y"] >= bar["y"] + bar["height"]
        assert page.locator("header.topbar button:has-text('Sign out')").is_visible()
        page.click("header.topbar button:has-text('Sign out')")
        page.wait_for_url(f"{url}/login*")
        assert page.goto(f"{url}/monitor").url.startswith(f"{url}/login")
        assert errors == []


def test_in_a_browser_the_charts_fit_the_layout_and_pass_axe(app: Any) -> None:
    """The dashboard with signed cases, in the workstation's layout: the revised-share and
    guard-precision charts render with visible size, and axe-core finds no serious or
    critical violation."""
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("uvicorn")
    from browserkit import AXE, CHROMIUM, chromium, serious_violations, served, sign_in
    from radloop.monitor.dashboard import monitor_router, workstation_frame
    from radloop.review.app import create_app

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    cases = two_weeks()

    def charted(app_: Any, ctx: Any) -> None:
        role = ctx.require_role("auditor", "admin")
        frame = workstation_frame(ctx)
        app_.include_router(monitor_router(lambda: cases, role, frame=frame))

    ctx = app.state.ctx
    charted_app = create_app(ctx.settings, store=ctx.store, extensions=[charted],
                             start_worker=False)  # fmt: skip
    with served(charted_app) as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, url, "aud", PASSWORD)
        page.goto(f"{url}/monitor")
        for chart in ("chart-revised", "chart-guard", "chart-agreement"):
            box = page.locator(f"#{chart}").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100, chart
        assert page.locator("header.topbar").is_visible()
        if AXE.is_file():
            assert serious_violations(page) == []
        context.close()
