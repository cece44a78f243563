"""The eval report's page: the per-site AUROC chart and its words, fairness gaps between two
distinct groups, the scope section said right for zero, and a table of contents.

A small simulated run (``radloop.evaluate.simulate``) is scored and rendered; one site holds a
single labelled case, so its AUROC cannot be computed.
"""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from radloop.evaluate.arrays import build_arrays
from radloop.evaluate.report import render_html
from radloop.evaluate.report_sections import scope_html
from radloop.evaluate.scoring import ScoringOptions, score_arrays
from radloop.evaluate.simulate import PREVALENCE, simulate_run

CODES = tuple(PREVALENCE)


class Page(HTMLParser):
    """Headings with their ids, links, images and tables (rows of cell text) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str | None, str]] = []
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.tables: list[list[list[str]]] = []
        self._text: list[str] | None = None
        self._heading: tuple[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = (tag, a.get("id")), []
        elif tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        elif tag == "img":
            self.images.append(a)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading and self._text is not None:
            self.headings.append((*self._heading, "".join(self._text).strip()))
            self._heading, self._text = None, None
        elif tag in ("td", "th") and self._text is not None:
            self.tables[-1][-1].append("".join(self._text).strip())
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    return parser


def score(cases: list[Any], predictions: list[Any]) -> dict[str, Any]:
    options = ScoringOptions(resamples=20, subgroup_resamples=10, seed=1, min_group=10)
    return score_arrays(build_arrays(cases, predictions, CODES), options)


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, Any], str]:
    cases, predictions = simulate_run(160, seed=5)
    # One case moved to a site of its own: one labelled case has no positive and negative of
    # any finding, so that site's AUROC is undefined.
    cases[0] = dataclasses.replace(cases[0], attributes={**cases[0].attributes, "site": "solo"})
    table = score(cases, predictions)
    table["run"] = {"model": "mock", "dataset": "sim:160", "model_id": "mock-1"}
    return table, render_html(table)


def test_the_site_chart_has_every_computable_site_and_says_which_are_undefined(run) -> None:
    table, page = run
    sites = table["shift"]["sites"]
    assert set(sites) == {"community", "enhanced", "portable", "standard", "solo"}
    solo = sites["solo"]["macro_auroc"]
    assert solo["value"] is None and "no finding has both" in solo["undefined_because"]
    for name in ("community", "enhanced", "portable", "standard"):
        value = sites[name]["macro_auroc"]["value"]
        # The same figure as the site's row under fairness, where both are computed.
        assert value == pytest.approx(
            table["fairness"]["draft"]["site"]["groups"][name]["macro_auroc"]["value"]
        )
    chart = next(i for i in parse(page).images if "per site" in str(i.get("alt")))
    alt = str(chart["alt"])
    assert "solo undefined" in alt
    assert f"standard {sites['standard']['macro_auroc']['value']:.2f}" in alt
    assert re.search(
        r"macro AUROC is undefined at 1 of 5 sites[^<]*solo: no finding has both", page
    )
    site_table = next(t for t in parse(page).tables if t[0][0] == "site")
    assert site_table[0][-1] == "draft macro AUROC"
    solo_row = next(r for r in site_table if r[0] == "solo")
    assert solo_row[-1] == "–"


def test_every_gap_row_compares_two_distinct_groups_or_says_they_are_equal(run) -> None:
    table, page = run
    header = ["subgroups", "figure", "worst group against the best"]
    gaps = next(t for t in parse(page).tables if t[0][:3] == header)
    rows = gaps[1:]
    assert rows
    for row in rows:
        said = row[2]
        if said == "every group equal (no gap)":
            assert row[3].startswith("0.000")
            continue
        worse, better = re.fullmatch(r"(.+) against (.+) \(best\)", said).groups()  # type: ignore[union-attr]
        assert worse != better
    for variant in ("draft", "safety"):
        for feature, block in table["fairness"][variant].items():
            if feature == "min_group":
                continue
            for gap in block["gaps"].values():
                assert gap["highest"] != gap["lowest"]
                assert gap["tied"] == (gap["gap"]["value"] == 0)


def test_the_scope_section_is_worded_for_zero_and_counts_right(run) -> None:
    table, page = run
    assert "Of 0 " not in page
    assert "not measured here" in page
    outcomes = table["scope"]["outcomes"]
    assert outcomes and sum(outcomes.values()) == table["n_cases"]
    said = ", ".join(f"{k} {v}" for k, v in outcomes.items())
    assert f"<p>Outcomes: {said}.</p>" in page
    cases, predictions = simulate_run(60, seed=2)
    for k in range(10):  # ten lateral films that should be refused, half of them refused
        refused = k % 2 == 0
        cases[k] = dataclasses.replace(
            cases[k], attributes={**cases[k].attributes, "expected_scope": "refused"}
        )
        predictions[k] = dataclasses.replace(
            predictions[k], scope="refused" if refused else "accepted"
        )
    text = scope_html(score(cases, predictions))
    assert "Of 10 image(s) outside the intended use (CT, lateral), 5 refused (50%)." in text
    assert "No frontal radiograph is marked as expected in scope" in text
    assert "Of 0 " not in text


def test_a_table_of_contents_links_to_every_section(run) -> None:
    _, page = run
    parsed = parse(page)
    sections = [(i, t) for tag, i, t in parsed.headings if tag == "h2" and i != "contents"]
    assert len(sections) >= 12
    ids = [i for i, _ in sections]
    assert all(ids) and len(set(ids)) == len(ids)
    contents = [href for href in parsed.links if href.startswith("#")]
    assert contents == [f"#{i}" for i in ids]
    assert page.index('id="contents"') < page.index(f'id="{ids[0]}"')
    titles = [t for _, t in sections]
    for title in ("Model card", "Per finding", "Shift across sites", "Scope guard"):
        assert title in titles


def test_every_plot_has_alt_text_and_every_table_a_header_row(run) -> None:
    _, page = run
    parsed = parse(page)
    assert parsed.images and all(len(str(i.get("alt") or "")) > 20 for i in parsed.images)
    assert page.count("<table>") == page.count("<thead>")


def test_one_site_alone_still_has_its_auroc_drawn() -> None:
    """With a single site there is no site subgroup to compare (fairness needs two groups),
    which left the chart empty; the site's own AUROC is drawn all the same."""
    cases, predictions = simulate_run(60, seed=4)
    cases = [dataclasses.replace(c, attributes={**c.attributes, "site": "only"}) for c in cases]
    table = score(cases, predictions)
    assert table["fairness"]["draft"]["site"]["groups"] == {}
    value = table["shift"]["sites"]["only"]["macro_auroc"]["value"]
    assert value is not None and 0.5 < value <= 1
    assert value == pytest.approx(table["summary"]["draft"]["macro_auroc"]["value"])
    table["run"] = {"model": "mock", "dataset": "sim:60", "model_id": "mock-1"}
    chart = next(i for i in parse(render_html(table)).images if "per site" in str(i.get("alt")))
    assert f"only {value:.2f}" in str(chart["alt"])
