"""axe-core (the npm package, run in Debian's headless Chromium) finds no serious or critical
accessibility violation on the workstation's pages: login, worklist, study pages (urgent with
its communication form, flagged), the audit trail and one entry, and the not-found page.

axe-core is installed by the CI script (``npm install --prefix tests/artifacts/npm
axe-core@4.14.1``) or found at ``RADLOOP_AXE_CORE``; nothing is downloaded here. Runs against
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import AXE, AXE_MISSING, CHROMIUM, serious_violations, sign_in

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE.is_file(), reason=AXE_MISSING),
]


@pytest.fixture()
def context(browser: Any) -> Iterator[Any]:
    # The pages' Content-Security-Policy allows only their own scripts: the test's axe-core
    # is let in by the browser context, not by the pages.
    opened = browser.new_context(viewport={"width": 1500, "height": 900}, bypass_csp=True)
    yield opened
    opened.close()


def _violations(page: Any) -> list[str]:
    return serious_violations(page)


def test_no_serious_accessibility_violation_on_the_radiologists_pages(
    server: str, context: Any, seeded: Seeded
) -> None:
    page = context.new_page()
    found: dict[str, list[str]] = {}
    page.goto(f"{server}/login")
    found["login"] = _violations(page)
    sign_in(page, server, "rad", PASSWORD)
    found["worklist"] = _violations(page)
    for role in ("urgent", "flagged", "current"):
        page.goto(f"{server}/studies/{seeded.ids[role]}")
        page.wait_for_selector(".viewer.loaded")
        found[f"study ({role})"] = _violations(page)
    page.goto(f"{server}/no/such/page")
    found["not found"] = _violations(page)
    assert {name: v for name, v in found.items() if v} == {}


def test_no_serious_accessibility_violation_on_the_audit_pages(
    server: str, context: Any, seeded: Seeded
) -> None:
    page = context.new_page()
    sign_in(page, server, "aud", PASSWORD)
    found: dict[str, list[str]] = {}
    page.goto(f"{server}/audit")
    found["audit"] = _violations(page)
    page.goto(f"{server}/audit/1")
    found["audit entry"] = _violations(page)
    assert {name: v for name, v in found.items() if v} == {}
