"""The reporting flow in Debian's headless Chromium: identity on the worklist, j/k and Enter,
a normal study read and signed in three keystrokes with "Sign and next", sign errors said
before the confirmation, the critical-result communication form, readable hints and named
controls. Screenshots of the worklist and the study page go to tests/artifacts/review/.
Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, signed_in_page

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"
pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

CURRENT_ROW = (
    "() => (document.activeElement.closest('tr[data-study]') || {dataset: {}}).dataset.study"
)


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    """A signed-in radiologist's page that counts confirmation dialogs (and accepts them)."""
    with signed_in_page(browser, server, "rad", PASSWORD, dialogs=True) as opened:
        yield opened


def _contrast(fg: str, bg: str) -> float:
    def luminance(css: str) -> float:
        values = [int(float(n)) / 255 for n in re.findall(r"[\d.]+", css)[:3]]
        r, g, b = (v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_worklist_keys_move_along_the_rows_and_enter_opens(
    server: str, page: Any, seeded: Seeded, backend: str
) -> None:
    rows = page.locator("table.worklist tbody tr[data-study]")
    order = [rows.nth(i).get_attribute("data-study") for i in range(rows.count())]
    assert order[0] == seeded.ids["urgent"]
    assert page.evaluate(CURRENT_ROW) == order[0]  # the first study has the focus on arrival
    first = rows.first.inner_text()
    assert "SAMPLE, FICTIONAL" in first and "PAT-urgent" in first and "Acc." in first
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"flow-worklist-{backend}.png"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate(CURRENT_ROW) == order[2]
    assert "current" in (rows.nth(2).get_attribute("class") or "")
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(CURRENT_ROW) == order[1]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/studies/{order[1]}")

    # "Add studies…" is reachable by Tab.
    page.goto(f"{server}/")
    for _ in range(25):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.matches('#upload input[type=file]')"):
            break
    else:
        raise AssertionError("Tab never reached Add studies…")


def test_a_normal_study_is_read_and_signed_in_three_keystrokes_then_the_next_opens(
    server: str, page: Any, seeded: Seeded
) -> None:
    page.goto(f"{server}/?urgent=no")
    first = page.evaluate(CURRENT_ROW)
    assert first == seeded.ids["routine"]
    page.keyboard.press("Enter")  # 1: open
    page.wait_for_selector(".viewer.loaded")
    assert page.locator("#sign-blockers").count() == 0
    page.keyboard.press("n")  # 2: sign and next; 3: confirm (the dialog's Enter)
    page.wait_for_url(re.compile(r".*/studies/(?!" + first + r")[0-9a-f]+$"))
    assert page.dialogs == [  # type: ignore[attr-defined]
        "Sign this report? A signed report cannot be changed; later changes are addenda. "
        "The next unsigned study opens after it."
    ]
    signed = page.evaluate(
        "async (id) => (await (await fetch(`/api/studies/${id}`)).json()).status", first
    )
    assert signed == "signed"
    # The next one is the study after it in worklist order (urgent first, then by arrival).
    assert page.url.endswith(f"/studies/{seeded.ids['flagged']}")


def test_sign_errors_are_said_before_the_confirmation(
    server: str, page: Any, seeded: Seeded
) -> None:
    page.goto(f"{server}/studies/{seeded.ids['flagged']}")
    page.wait_for_selector(".viewer.loaded")
    page.keyboard.press("s")
    status = page.locator("#action-status")
    page.wait_for_function(
        "() => /Not signed yet/.test(document.getElementById('action-status').textContent)"
    )
    said = status.inner_text()
    assert "Decide the flagged finding “" in said and "right upper lobe" in said.lower()
    assert "409" not in said and "expected" not in said
    assert page.dialogs == []  # type: ignore[attr-defined]
    # The focus went to the finding to decide.
    assert page.evaluate("() => document.activeElement.matches('li.finding.flagged')")


def test_an_urgent_study_records_the_communication_before_signing(
    server: str, page: Any, seeded: Seeded, backend: str
) -> None:
    page.goto(f"{server}/studies/{seeded.ids['urgent']}")
    page.wait_for_selector(".viewer.loaded")
    bar = page.locator(".patient-bar").inner_text()
    assert "SAMPLE, FICTIONAL" in bar and "PAT-urgent" in bar
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"flow-study-{backend}.png"))
    page.keyboard.press("s")
    page.wait_for_function(
        "() => /Not signed yet/.test(document.getElementById('action-status').textContent)"
    )
    assert "Record to whom, when and how" in page.locator("#action-status").inner_text()
    assert page.evaluate("() => document.activeElement.name") == "recipient"
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator('#communicate-form input[name="communicated_at"]').input_value()
    page.fill('#communicate-form input[name="recipient"]', "Dr Okafor, ED consultant")
    page.select_option('#communicate-form select[name="method"]', "telephone")
    page.click("#communicate")
    page.wait_for_selector("ul.communications li")
    record = page.locator("ul.communications li").inner_text()
    assert "Dr Okafor, ED consultant" in record and "telephone" in record
    assert page.locator("#sign-blockers").count() == 0
    page.screenshot(path=str(ARTIFACTS / f"flow-communication-{backend}.png"))


def test_hints_are_readable_and_controls_are_named(server: str, page: Any, seeded: Seeded) -> None:
    page.goto(f"{server}/studies/{seeded.ids['current']}")
    page.wait_for_selector(".viewer.loaded")
    hint = page.evaluate(
        """() => [getComputedStyle(document.querySelector('.toolbar .hint')).color,
                  getComputedStyle(document.querySelector('.toolbar')).backgroundColor]"""
    )
    assert _contrast(*hint) >= 4.5, hint
    assert page.get_by_label("Question about this study").count() == 1
    canvas = page.get_by_role("img", name=re.compile("Current image: .* chest radiograph"))
    assert canvas.count() == 1
    assert "has prior" in page.goto(f"{server}/?status=all").text()
