"""The reporting tools in Debian's headless Chromium: "Add finding" writes the finding into
its FINDINGS line and the text's findings list, the normal chest template on the t key then
signed, and macros at the cursor (buttons and Alt+digit). Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, sign_in, signed_in_page

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"
pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    with signed_in_page(browser, server, "rad", PASSWORD, dialogs=True) as opened:
        yield opened


def _study(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate("async () => (await (await fetch(`/api${location.pathname}`)).json())")
    )


def test_add_finding_writes_it_into_the_text_and_the_findings_read_from_it(
    server: str, page: Any, seeded: Seeded, backend: str
) -> None:
    page.goto(f"{server}/studies/{seeded.ids['unchecked']}")
    page.wait_for_selector(".viewer.loaded")
    for name in ("Add finding", "Side", "Zone", "Size"):  # each control says what it is
        assert page.get_by_label(name).first.evaluate("(e) => e.tagName") == "SELECT"
    page.locator("#add-finding select[name=code]").select_option("pleural_effusion")
    page.locator("#add-finding select[name=side]").select_option("left")
    page.locator("#add-finding select[name=size]").select_option("small")
    page.locator("#add-finding select[name=size]").focus()
    page.keyboard.press("Tab")  # the Add button, by keyboard
    assert page.evaluate("() => document.activeElement.textContent") == "Add"
    page.keyboard.press("Enter")
    page.wait_for_selector("#text-findings")
    assert "Small left pleural effusion." in page.locator("#text-findings").inner_text()
    assert "Cardiomegaly." in page.locator("#text-findings").inner_text()
    assert "Added “Small left pleural effusion.”" in page.locator("#action-status").inner_text()
    text = _study(page)["text"]
    assert "Small left pleural effusion." in text
    assert text.index("Small left pleural effusion.") < text.index("IMPRESSION")
    # A second finding of the lungs, on a zone of both sides.
    page.locator("#add-finding select[name=code]").select_option("consolidation")
    page.locator("#add-finding select[name=side]").select_option("bilateral")
    page.locator("#add-finding select[name=level]").select_option("lower")
    page.locator("#add-finding button[type=submit]").click()
    page.wait_for_function(
        "() => /Bilateral consolidation in the lower zones/.test("
        "(document.getElementById('text-findings') || {}).textContent)"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#add-finding").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"report-tools-{backend}.png"))
    # What is not offered together is refused in words, and nothing is written.
    page.locator("#add-finding select[name=code]").select_option("cardiomegaly")
    page.locator("#add-finding select[name=side]").select_option("left")
    page.locator("#add-finding button[type=submit]").click()
    page.wait_for_function(
        "() => /Not added/.test(document.getElementById('action-status').textContent)"
    )
    assert "expected no side for" in page.locator("#action-status").inner_text()


def test_the_normal_template_on_t_then_signed(server: str, page: Any, seeded: Seeded) -> None:
    page.goto(f"{server}/studies/{seeded.ids['routine']}")
    page.wait_for_selector(".viewer.loaded")
    page.keyboard.press("t")
    assert page.dialogs[-1] == "Replace the report text with the normal chest template?"  # type: ignore[attr-defined]
    value = page.locator("#report-text").input_value()
    assert value.startswith("FINDINGS:\nLungs: Unremarkable.")
    assert "No acute cardiopulmonary abnormality." in value
    # Macros at the cursor: a button, and Alt+2 in the text.
    page.locator("#report-text").focus()
    page.keyboard.press("Control+End")
    page.locator("button.macro", has_text="No change").click()
    page.keyboard.press("Alt+2")
    value = page.locator("#report-text").input_value()
    assert value.rstrip().endswith("No interval change since the prior study. No pneumothorax."), (
        value
    )
    page.locator("#report-text").blur()
    page.keyboard.press("s")
    page.wait_for_selector("article.signed")  # the page reloads with the signed report
    signed = _study(page)["signed"][0]["text"]
    assert "Lungs: Unremarkable." in signed and "No pneumothorax." in signed


def test_a_macro_of_ones_own_is_kept_and_inserted(
    server: str, browser: Any, seeded: Seeded
) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept("Apex view"))
    sign_in(page, server, "rad", PASSWORD)
    page.goto(f"{server}/studies/{seeded.ids['flagged']}")
    page.wait_for_selector(".viewer.loaded")
    page.locator("#save-macro").click()
    assert "Select the text" in page.locator("#action-status").inner_text()
    area = page.locator("#report-text")
    area.fill("FINDINGS: Cardiomegaly.\nAn apical lordotic view is suggested.")
    page.evaluate(
        """() => { const t = document.getElementById('report-text');
        const at = t.value.indexOf('An apical'); t.setSelectionRange(at, t.value.length); }"""
    )
    page.locator("#save-macro").click()
    assert page.locator("button.user-macro").inner_text() == "Apex view"
    page.reload()
    page.wait_for_selector(".viewer.loaded")
    mine = page.locator("button.user-macro")
    assert mine.inner_text() == "Apex view"  # kept across pages in this browser
    area.focus()
    page.keyboard.press("Control+End")
    mine.click()
    assert area.input_value().rstrip().endswith("An apical lordotic view is suggested.")
    area.focus()
    page.keyboard.press("Control+End")
    page.keyboard.press("Alt+7")  # the sixth fixed macro, then one's own
    assert area.input_value().count("An apical lordotic view is suggested.") == 2
    context.close()
