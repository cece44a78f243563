"""The study page's keys in Debian's headless Chromium: they act on the focused finding, the
focus shows, no key both decides and works the viewer, and rejecting a critical finding the
safety check verified asks why first. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, signed_in_page

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

DECISIONS = """async (id) => (await (await fetch(`/api/studies/${id}`)).json()).items
    .map((item) => [item.key, item.decision, item.decision_reason])"""
FOCUSED_FINDING = (
    "() => document.activeElement.matches('li.finding') && document.activeElement.dataset.key"
)
ACTIVE_KEY = "() => (document.activeElement.closest('li.finding') || {dataset: {}}).dataset.key"


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    """A signed-in radiologist's page; fails the test on any JavaScript error."""
    with signed_in_page(browser, server, "rad", PASSWORD) as opened:
        yield opened


def _open(page: Any, server: str, study: str) -> None:
    page.goto(f"{server}/studies/{study}")
    page.wait_for_selector(".viewer.loaded")


def _decisions(page: Any, study: str) -> dict[str, tuple[str | None, str | None]]:
    return {key: (d, r) for key, d, r in page.evaluate(DECISIONS, study)}


def _tab_to(page: Any, key: str) -> None:
    """Press Tab (as a reader would) until the finding ``key`` itself has the focus."""
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_FINDING) == key:
            return
    raise AssertionError(f"Tab never reached finding {key}")


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _rgb(css: str) -> tuple[int, ...]:
    numbers = re.findall(r"[\d.]+", css)
    assert len(numbers) >= 3, css
    return tuple(int(float(n)) for n in numbers[:3])


def test_tab_to_the_second_finding_then_a_accepts_the_second(
    server: str, page: Any, seeded: Seeded
) -> None:
    study = seeded.ids["urgent"]
    _open(page, server, study)
    keys = page.eval_on_selector_all("li.finding", "items => items.map((li) => li.dataset.key)")
    assert len(keys) >= 2, keys
    first, second = keys[0], keys[1]
    before = _decisions(page, study)
    page.locator("li.finding").first.focus()
    _tab_to(page, second)
    # The selection follows the focus: the focused finding is the selected one.
    assert page.eval_on_selector_all(
        "li.finding.selected", "items => items.map((li) => li.dataset.key)"
    ) == [second]
    page.keyboard.press("a")
    page.wait_for_selector(f'li.finding.decision-accepted[data-key="{second}"]')
    after = _decisions(page, study)
    assert after[second][0] == "accepted"
    assert after[first] == before[first]  # the first finding is left as it was


def test_j_and_k_move_the_focus_and_the_focused_finding_shows_a_ring(
    server: str, page: Any, seeded: Seeded
) -> None:
    study = seeded.ids["urgent"]
    _open(page, server, study)
    keys = page.eval_on_selector_all("li.finding", "items => items.map((li) => li.dataset.key)")
    page.locator("li.finding").first.focus()
    assert page.evaluate(ACTIVE_KEY) == keys[0]
    page.keyboard.press("j")
    assert page.evaluate(ACTIVE_KEY) == keys[1]
    assert page.locator("li.finding.selected").get_attribute("data-key") == keys[1]
    page.keyboard.press("k")
    assert page.evaluate(ACTIVE_KEY) == keys[0]
    _tab_to(page, keys[1])
    ring = page.evaluate(
        """() => {
          const li = document.activeElement, style = getComputedStyle(li);
          const pane = getComputedStyle(document.querySelector('.report-pane'));
          return {focus: li.matches(':focus'), style: style.outlineStyle,
                  width: parseFloat(style.outlineWidth), color: style.outlineColor,
                  shadow: style.boxShadow, background: pane.backgroundColor};
        }"""
    )
    assert ring["focus"] and ring["style"] == "solid" and ring["width"] >= 2, ring
    # WCAG 2.2 (2.4.11, 1.4.11): a focus indicator contrasts 3:1 with what is around it.
    assert _contrast(_rgb(ring["color"]), _rgb(ring["background"])) >= 3, ring
    assert _contrast(_rgb(ring["color"]), (255, 251, 235)) >= 3  # a flagged finding's fill
    assert ring["shadow"] != "none", ring  # the selection ring as well
    # A finding not focused has no focus ring.
    other = page.locator(f'li.finding[data-key="{keys[0]}"]')
    assert other.evaluate("(li) => getComputedStyle(li).outlineStyle") == "none"


def _readout(page: Any) -> str:
    return str(page.locator('.viewer[data-which="current"] .readout').inner_text())


def _change_window(page: Any) -> None:
    box = page.locator('.viewer[data-which="current"] .stage').bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 40, y + 30, steps=4)
    page.mouse.up(button="right")
    assert not _readout(page).startswith("W 255 L 128"), _readout(page)


def test_the_window_reset_key_decides_nothing_and_r_resets_no_window(
    server: str, page: Any, seeded: Seeded
) -> None:
    tooltip = "Reset window/level (W)"
    # A study with findings: w resets the window and decides nothing; R decides nothing.
    study = seeded.ids["routine"]
    _open(page, server, study)
    assert page.locator('[data-act="reset-wl"]').get_attribute("title") == tooltip
    assert "w: reset window/level" in page.locator(".toolbar .hint").inner_text()
    before = _decisions(page, study)
    page.locator("li.finding").first.focus()
    _change_window(page)
    page.locator("li.finding").first.focus()
    page.keyboard.press("w")
    assert _readout(page).startswith("W 255 L 128"), _readout(page)
    _change_window(page)
    page.locator("li.finding").first.focus()
    changed = _readout(page)
    page.keyboard.press("Shift+R")
    page.keyboard.press("Shift+A")
    page.wait_for_timeout(300)
    assert _readout(page) == changed  # R resets no window either
    assert page.locator(".decided").count() == 0
    assert _decisions(page, study) == before

    # A study without findings: r and R touch the window not at all.
    _open(page, server, seeded.ids["abstained"])
    _change_window(page)
    changed = _readout(page)
    for key in ("r", "Shift+R"):
        page.keyboard.press(key)
        page.wait_for_timeout(200)
        assert _readout(page) == changed, key


def test_rejecting_a_verified_critical_finding_asks_why_and_escape_cancels(
    server: str, page: Any, seeded: Seeded
) -> None:
    study = seeded.ids["urgent"]
    _open(page, server, study)
    critical = page.locator("li.finding[data-reason-required]")
    assert critical.count() == 1
    assert "neumothorax" in critical.locator(".finding-text").inner_text()
    key = critical.get_attribute("data-key")
    before = _decisions(page, study)[key]
    dialog = page.locator("#reject-reason")

    critical.focus()
    page.keyboard.press("r")
    dialog.wait_for(state="visible")
    assert page.evaluate("() => document.getElementById('reject-reason').open")
    assert page.evaluate("() => document.activeElement.name") == "reason"
    assert "neumothorax" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate(ACTIVE_KEY) == key  # the focus goes back to the finding
    page.wait_for_timeout(300)
    assert _decisions(page, study)[key] == before  # nothing stored

    # The Reject button asks too; an empty reason is not accepted, a reason is stored.
    critical.locator('button[data-decide="rejected"]').click()
    dialog.wait_for(state="visible")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.getElementById('reject-reason').open")
    page.keyboard.type("skin fold, not a pneumothorax")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'li.finding.decision-rejected[data-key="{key}"]')
    assert _decisions(page, study)[key] == ("rejected", "skin fold, not a pneumothorax")
    shown = page.locator(f'li.finding[data-key="{key}"] .decided').inner_text()
    assert "reason: skin fold, not a pneumothorax" in shown
