"""The monitoring dashboard in a real browser (Debian's Chromium, headless, Playwright).

The router is mounted in a small app with a header-based role check, served by uvicorn on
loopback, and opened as an auditor: the charts render with visible size, the active alert is
shown, and the CSV export downloads. Screenshots go to tests/artifacts/monitor/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitor_builders import hand_pools

from browserkit import CHROMIUM, chromium, served
from radloop.lab.monitor_simulation import StreamConfig, simulate
from radloop.monitor.analysis import MonitorSettings
from radloop.monitor.drift import DriftConfig

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "monitor"
pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
from fastapi import FastAPI, HTTPException, Request  # noqa: E402

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from radloop.monitor.dashboard import monitor_router

    cases = list(simulate(hand_pools(), StreamConfig(n=400, seed=8, shift_profile="portable",
                                                      shift_at=300, per_day=25)))  # fmt: skip

    def require_auditor(request: Request) -> None:
        # A cookie stands in for the review app's session.
        if request.cookies.get("role") not in ("auditor", "admin"):
            raise HTTPException(status_code=403, detail="auditors and admins only")

    settings = MonitorSettings(drift=DriftConfig(reference_size=100, window_size=50, step=25))
    app = FastAPI()
    app.include_router(monitor_router(lambda: cases, require_auditor, settings=settings))
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_auditor_sees_charts_alerts_and_downloads_csv(server: str, browser: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    host = server.split("//")[1].split(":")[0]
    context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    assert page.goto(f"{server}/monitor").status == 403
    context.add_cookies([{"name": "role", "value": "auditor", "domain": host, "path": "/"}])
    assert page.goto(f"{server}/monitor").status == 200
    for chart in ("chart-agreement", "chart-revised", "chart-subgroups", "chart-drift-input",
                  "chart-drift-output"):  # fmt: skip
        box = page.locator(f"#{chart}").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, chart
    assert page.locator("#chart-agreement polygon.band").count() == 1
    assert page.locator("#chart-drift-input .mark").count() > 0
    assert "image mean" in page.locator("#alerts .alert").first.inner_text()
    assert page.locator("#kappa tr").count() > 1
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    with page.expect_download() as info:
        page.click("text=subgroups.csv")
    download = info.value
    content = Path(download.path()).read_text(encoding="utf-8")
    assert content.startswith("subgroup,label,n,f1")
    assert errors == []
    context.close()
