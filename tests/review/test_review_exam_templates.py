"""Templates per exam type: "Normal chest" for a PA (and lateral) study, "Portable AP chest"
with a "Lines and tubes" line for an AP film, chosen by the study's view and put in the report
text by the t key; a device added with "Add finding" goes on the "Lines and tubes" line.
The browser part runs in Debian's headless Chromium against SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, signed_in_page
from radloop.report import parse
from radloop.review.compose import LINES_AND_TUBES, exam_template, normal_text, reporting_tools


@pytest.mark.parametrize("view", ["AP", "ap", " AP ", "AP SEMI-ERECT"])
def test_an_ap_film_gets_the_portable_template_with_lines_and_tubes(view: str) -> None:
    template = exam_template(view)
    assert template.label == "Portable AP chest"
    lines = template.text.splitlines()
    assert lines[:2] == ["FINDINGS:", f"{LINES_AND_TUBES}: None."]
    assert "Heart and mediastinum: Unremarkable for an AP projection." in lines
    assert lines[-1] == "No acute cardiopulmonary abnormality."
    assert parse(template.text) == []  # a normal report: the parser reads no finding in it


@pytest.mark.parametrize("view", ["PA", "LL", "LATERAL", None, "", "APEX"])
def test_other_views_get_the_normal_chest_template(view: str | None) -> None:
    template = exam_template(view)
    assert (template.label, template.text) == ("Normal chest", normal_text())
    assert LINES_AND_TUBES not in template.text


def test_the_study_page_tools_follow_the_study_s_view() -> None:
    ap = reporting_tools({"view": "AP"})
    pa = reporting_tools({"view": "PA"})
    assert ap["template_label"] == "Portable AP chest" and LINES_AND_TUBES in ap["normal_template"]
    assert pa["template_label"] == "Normal chest" and pa["normal_template"] == normal_text()


pytest.importorskip("playwright.sync_api")
browser_only = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    """A signed-in radiologist's page that records confirmation dialogs (and accepts them)."""
    with signed_in_page(browser, server, "rad", PASSWORD, dialogs=True) as opened:
        yield opened


def _as_ap(store: Any, study: str) -> None:
    from sqlalchemy import update

    from radloop.review.db import StudyRow

    with store.sessions() as session:
        session.execute(update(StudyRow).where(StudyRow.id == study).values(view="AP"))
        session.commit()


@browser_only
def test_t_puts_the_portable_ap_template_and_a_device_goes_on_lines_and_tubes(
    server: str, page: Any, seeded: Seeded, store: Any
) -> None:
    study = seeded.ids["routine"]
    _as_ap(store, study)
    page.goto(f"{server}/studies/{study}")
    page.wait_for_selector(".viewer.loaded")
    assert page.locator("#normal-template").inner_text() == "Portable AP chest (T)"
    page.keyboard.press("t")
    assert page.dialogs[-1] == "Replace the report text with the portable ap chest template?"  # type: ignore[attr-defined]
    value = page.locator("#report-text").input_value()
    assert value.startswith("FINDINGS:\nLines and tubes: None.\nLungs: Unremarkable.")
    page.locator("#add-finding select[name=code]").select_option("endotracheal_tube")
    page.locator("#add-finding button[type=submit]").click()
    page.wait_for_function(
        "() => /Added/.test(document.getElementById('action-status').textContent)"
    )
    text = page.locator("#report-text").input_value()
    assert "Lines and tubes: Endotracheal tube." in text, text
    assert "Devices:" not in text and "None." not in text


@browser_only
def test_a_pa_study_keeps_the_normal_chest_template_on_t(
    server: str, page: Any, seeded: Seeded
) -> None:
    page.goto(f"{server}/studies/{seeded.ids['flagged']}")
    page.wait_for_selector(".viewer.loaded")
    assert page.locator("#normal-template").inner_text() == "Normal chest (T)"
    page.keyboard.press("t")
    value = page.locator("#report-text").input_value()
    assert value.startswith("FINDINGS:\nLungs: Unremarkable.") and LINES_AND_TUBES not in value
