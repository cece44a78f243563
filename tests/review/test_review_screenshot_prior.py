"""The study page with the prior side by side, in Debian's headless Chromium: the screenshot
shown in README.md and docs/review.md (the tests' seeded store: copies of the bundled
fictional sample). Runs against SQLite and PostgreSQL; the SQLite one is reduced to 256 colours
for the docs (tests/artifacts/review/docs-study-prior.png, copied to docs/images/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, sign_in
from docshots import DOCS_LIMIT, docs_copy

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"


def test_the_study_page_with_the_prior_side_by_side(
    server: str, browser: Any, seeded: Seeded, backend: str, accounts: dict[str, str]
) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, server, accounts["radiologist"], PASSWORD)
    page.goto(f"{server}/studies/{seeded.ids['current']}")
    page.wait_for_selector('.viewer[data-which="current"].loaded')
    page.click('[data-act="prior"]')
    page.wait_for_selector('.viewer[data-which="prior"].loaded')
    assert page.locator(".viewers.side-by-side").count() == 1
    labels = page.locator(".viewer .overlay, .viewer").all_inner_texts()
    assert any("Prior" in text for text in labels) and any("Current" in text for text in labels)
    # Identity on the page: the patient bar names the (fictional) patient.
    assert "SAMPLE, FICTIONAL" in page.locator("body").inner_text()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"study-prior-{backend}.png"
    page.screenshot(path=str(shot))
    context.close()
    assert errors == []
    if backend == "sqlite":
        docs = docs_copy(shot, ARTIFACTS / "docs-study-prior.png")
        assert 20_000 < docs.stat().st_size < DOCS_LIMIT
