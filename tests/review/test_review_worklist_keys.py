"""The worklist's filter keys in Debian's headless Chromium (u urgent only, s signed, a all to
read, / the filters, with j/k and Enter still working), and a signed prior that is no second
item to read: out of the default worklist, under the "signed" filter, shown on the current
study as its prior. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, signed_in_page

ROWS = "table.worklist tbody tr[data-study]"
SHOWN = "() => Array.from(document.querySelectorAll('tr[data-study]')).map((r) => r.dataset.study)"
URGENT = (
    "() => Array.from(document.querySelectorAll('tr[data-study]')).map((r) => r.matches('.urgent'))"
)
CURRENT_ROW = (
    "() => (document.activeElement.closest('tr[data-study]') || {dataset: {}}).dataset.study"
)


def _shown(client: Any, query: str = "") -> str:
    response = client.get(f"/{query}")
    assert response.status_code == 200, response.text[:300]
    return str(response.text)


def test_a_signed_prior_leaves_the_default_worklist_and_stays_reachable(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    prior, current = seeded.ids["prior"], seeded.ids["current"]
    assert rad.get(f"/api/studies/{current}").json()["prior_id"] == prior
    # Unsigned, the earlier study is a study to read like any other.
    assert f'data-study="{prior}"' in _shown(rad)
    detail = rad.get(f"/api/studies/{prior}").json()
    signed = rad.post(f"/api/studies/{prior}/sign", json={"version": detail["version"]})
    assert signed.status_code == 200, signed.text[:300]

    default = _shown(rad)
    assert f'data-study="{prior}"' not in default  # not a second item to read
    assert f'data-study="{current}"' in default
    assert f'data-study="{prior}"' not in _shown(rad, "?status=to_review&urgent=no")
    assert f'data-study="{prior}"' in _shown(rad, "?status=signed")
    # On the current study it is the prior: its images beside the current ones.
    study_page = rad.get(f"/studies/{current}").text
    assert f"/api/studies/{prior}/images/" in study_page and "Prior " in study_page


pytest.importorskip("playwright.sync_api")
browser_only = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    """A signed-in radiologist on the worklist; fails the test on any JavaScript error."""
    with signed_in_page(browser, server, "rad", PASSWORD) as opened:
        yield opened


def _query(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


@browser_only
def test_u_shows_the_urgent_studies_only_and_a_all_of_them_again(
    server: str, page: Any, seeded: Seeded
) -> None:
    page.goto(f"{server}/")
    page.wait_for_selector(ROWS)
    everything = page.evaluate(SHOWN)
    assert seeded.ids["urgent"] in everything and seeded.ids["routine"] in everything
    hint = page.locator("#worklist-keys").inner_text()
    for said in ("u urgent only", "s signed", "a all to read", "/ the filters"):
        assert said in hint
    page.keyboard.press("u")
    page.wait_for_url("**/?*urgent=yes*")
    assert _query(page)["urgent"] == ["yes"]
    urgent = page.evaluate(SHOWN)
    assert seeded.ids["urgent"] in urgent and seeded.ids["routine"] not in urgent
    assert all(page.evaluate(URGENT)) and len(urgent) < len(everything)
    assert page.locator("select[name=urgent]").input_value() == "yes"
    # j/k and Enter still work on the filtered list.
    assert page.evaluate(CURRENT_ROW) == urgent[0]
    page.keyboard.press("a")
    page.wait_for_url(f"{server}/")
    assert page.evaluate(SHOWN) == everything
    page.keyboard.press("j")
    assert page.evaluate(CURRENT_ROW) == everything[1]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/studies/{everything[1]}")


@browser_only
def test_slash_focuses_the_filters_and_letters_typed_there_filter_nothing(
    server: str, page: Any
) -> None:
    page.goto(f"{server}/?urgent=yes&page=1")
    page.wait_for_selector("form.filters")
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.name") == "status"
    page.keyboard.press("u")  # in the select: chooses an option, does not leave the page
    assert _query(page) == {"urgent": ["yes"], "page": ["1"]}
    page.keyboard.press("Escape")
    page.locator("h1").click()
    page.keyboard.press("Shift+U")  # letters act unshifted only
    assert _query(page) == {"urgent": ["yes"], "page": ["1"]}
    page.keyboard.press("s")
    page.wait_for_url("**/?status=signed")
    assert page.locator("select[name=status]").input_value() == "signed"
