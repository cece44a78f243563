"""The monitoring page inside the workstation, in Debian's headless Chromium, over a simulated
stream of 400 signed studies with a shift at study 300: the screenshot shown in README.md and
docs/monitor.md (tests/artifacts/monitor/in-app-sqlite.png; docs-monitoring.png reduced to 256
colours, copied to docs/images/). Simulated data only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitor_builders import hand_pools

from browserkit import CHROMIUM, chromium, served, sign_in
from docshots import DOCS_LIMIT, docs_copy

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "monitor"
PASSWORD = "correct horse battery staple 7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from radloop.lab.monitor_simulation import StreamConfig, simulate
    from radloop.monitor.analysis import MonitorSettings
    from radloop.monitor.dashboard import monitor_router, workstation_frame
    from radloop.monitor.drift import DriftConfig
    from radloop.review.accounts import create_user
    from radloop.review.app import create_app
    from radloop.review.deps import NavLink
    from radloop.review.settings import Settings
    from radloop.review.store import open_store

    cases = list(simulate(hand_pools(), StreamConfig(n=400, seed=8, shift_profile="portable",
                                                      shift_at=300, per_day=25)))  # fmt: skip
    drift = DriftConfig(reference_size=100, window_size=50, step=25)

    def simulated(app: Any, ctx: Any) -> None:
        # The workstation's own extension, over the simulated stream instead of the store.
        app.include_router(
            monitor_router(
                lambda: cases, ctx.require_role("auditor", "admin"), audit=ctx.audit,
                frame=workstation_frame(ctx), settings=MonitorSettings(drift=drift),
            )
        )  # fmt: skip
        ctx.nav.append(NavLink("Monitoring", "/monitor", ("auditor", "admin")))

    settings = Settings(data_dir=tmp_path_factory.mktemp("monitor-shot"), in_process_worker=False)
    store = open_store(settings)
    with store.sessions() as session:
        create_user(session, "aud", PASSWORD, "auditor", "Dr Audrey Auditor")
        session.commit()
    app = create_app(settings, store=store, extensions=[simulated], start_worker=False)
    with served(app) as url:
        yield url
    store.close()


def test_the_monitoring_page_in_the_workstation(server: str) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1500, "height": 1500})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, server, "aud", PASSWORD)
        page.click("nav a:has-text('Monitoring')")
        page.wait_for_url(f"{server}/monitor")
        assert page.locator("header.topbar").count() == 1
        assert "Sign out" in page.locator("header.topbar").inner_text()
        assert "Monitoring: drafts compared with signed reports" in page.content()
        assert "400" in page.locator("main").inner_text()
        box = page.locator("#chart-agreement").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "in-app-sqlite.png"
        # The top of the page: alerts, the headline figures and the first charts.
        page.screenshot(path=str(shot))
        context.close()
    assert errors == []
    docs = docs_copy(shot, ARTIFACTS / "docs-monitoring.png")
    assert 20_000 < docs.stat().st_size < DOCS_LIMIT
