"""An admin requeues a failed draft from the study page, in Debian's headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded
from sqlalchemy import select

from browserkit import CHROMIUM, sign_in

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


def _page(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context(base_url=base).new_page()
    sign_in(page, base, username, PASSWORD)
    return page


def test_an_admin_drafts_a_failed_study_again_and_a_radiologist_cannot(
    server: str, browser: Any, seeded: Seeded, store: Any
) -> None:
    from radloop.review.db import AuditEntry, Job, StudyRow

    failed = seeded.ids["failed"]
    reader = _page(browser, server, "rad")
    reader.goto(f"{server}/studies/{failed}")
    assert reader.locator("#draft-banner").is_visible()
    assert reader.locator("#requeue").count() == 0
    reader.context.close()

    admin = _page(browser, server, "boss")
    admin.goto(f"{server}/studies/{seeded.ids['routine']}")
    assert admin.locator("#requeue").count() == 0  # only failed drafts
    admin.goto(f"{server}/studies/{failed}")
    admin.click("#requeue")
    admin.wait_for_url(f"{server}/studies/{failed}")
    assert "The draft is being prepared" in admin.locator("main").inner_text()
    assert admin.locator("#requeue").count() == 0
    admin.context.close()
    with store.sessions() as session:
        row = session.get(StudyRow, failed)
        assert row is not None and row.status == "queued"
        states = list(session.execute(select(Job.state).where(Job.study_id == failed)).scalars())
        assert "queued" in states
        requeued = session.execute(
            select(AuditEntry).where(
                AuditEntry.action == "requeue_draft", AuditEntry.target == failed
            )
        ).scalar_one()
        assert requeued.username == "boss"
