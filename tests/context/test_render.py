"""Context items as prompt lines: provenance and age on every line, a budget that drops the
least relevant first and says so, nothing from after the film."""

from __future__ import annotations

import pytest

from radloop.context import DEFAULT_MAX_CHARS, age_phrase, render_items
from radloop.study import ContextItem

CRP = "http://loinc.org|1988-5"
LDH = "http://loinc.org|2532-0"


def lab(
    text: str, days: int | None, code: str | None = CRP, flag: str | None = None
) -> ContextItem:
    return ContextItem("lab", text, "FHIR Bundle labs.json", days, code=code, flag=flag)


def test_each_line_says_where_the_item_came_from_and_how_old_it_is() -> None:
    items = [
        ContextItem("history", "Post CABG", "this film's order, DICOM (0010,21B0) Additional "
                    "Patient History"),
        ContextItem("prior_report", "Clear lungs.", "radloop", 14,
                    detail="signed 2026-03-01, prior film of 2026-02-28"),
        ContextItem("condition", "COVID-19", "FHIR server https://ehr/fhir", 5,
                    detail="onset 2026-03-10"),
        lab("CRP 48 mg/L", 1, flag="high"),
    ]  # fmt: skip
    assert render_items(items).lines == (
        "History (this film's order, DICOM (0010,21B0) Additional Patient History): Post CABG",
        "Prior report (radloop, signed 2026-03-01, prior film of 2026-02-28, 14 days before "
        "this film): Clear lungs.",
        "Active conditions (FHIR server https://ehr/fhir):",
        "- COVID-19 (onset 2026-03-10, 5 days before this film)",
        "Laboratory values (FHIR Bundle labs.json):",
        "- CRP 48 mg/L, high (1 day before this film)",
    )


@pytest.mark.parametrize(
    ("days", "phrase"),
    [(0, "same day as this film"), (1, "1 day before this film"), (30, "30 days before this film"),
     (None, "date not given"), (-2, "2 days after this film")],
)  # fmt: skip
def test_ages_are_said_in_days_from_the_film(days: int | None, phrase: str) -> None:
    assert age_phrase(days) == phrase


def test_items_from_after_the_film_are_never_given_and_are_recorded() -> None:
    rendered = render_items([lab("CRP 48 mg/L", 1), lab("CRP 300 mg/L", -2)])
    assert "- CRP 300 mg/L (2 days after this film)" not in rendered.lines
    assert [(d.item.text, d.reason) for d in rendered.dropped] == [
        ("CRP 300 mg/L", "after this film")
    ]
    assert not any(line.startswith("Left out") for line in rendered.lines)


def test_labs_are_newest_first_under_one_header_per_source() -> None:
    rendered = render_items(
        [lab("CRP 10 mg/L", 6), lab("LDH 300 U/L", 0, LDH), lab("CRP 48 mg/L", 1)]
    )
    assert rendered.lines == (
        "Laboratory values (FHIR Bundle labs.json):",
        "- LDH 300 U/L (same day as this film)",
        "- CRP 48 mg/L (1 day before this film)",
        "- CRP 10 mg/L (6 days before this film)",
    )


def test_the_budget_drops_older_repeats_first_then_older_labs_and_says_so() -> None:
    items = [
        ContextItem("prior_report", "Clear lungs.", "radloop", 14),
        lab("CRP 48 mg/L", 1),
        lab("CRP 10 mg/L", 2),  # an older value of a test with a newer one: goes first
        lab("LDH 300 U/L", 3, LDH),  # the newest LDH, but older than the newest CRP
    ]
    full = render_items(items, max_chars=10_000)
    size = full.chars
    one_less = render_items(items, max_chars=size - 1)
    assert [d.item.text for d in one_less.dropped] == ["CRP 10 mg/L"]
    assert one_less.lines[-1] == (
        f"Left out to keep this context within {size - 1} characters: 1 laboratory value."
    )
    smaller = render_items(items, max_chars=size - 45)
    assert [d.item.text for d in smaller.dropped] == ["LDH 300 U/L", "CRP 10 mg/L"]
    assert "Clear lungs." in "\n".join(smaller.lines)
    assert all(d.reason == "size limit" for d in smaller.dropped)
    assert smaller.chars - len(smaller.lines[-1]) - 1 <= size - 45


def test_a_long_prior_report_is_shortened_to_fit_and_the_shortening_is_said() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    items = [ContextItem("prior_report", words, "radloop", 7), lab("CRP 48 mg/L", 1)]
    rendered = render_items(items, max_chars=600)
    assert [d.item.text for d in rendered.dropped] == ["CRP 48 mg/L"]
    prior = next(line for line in rendered.lines if line.startswith("Prior report"))
    assert prior.endswith(" […]") and len(prior) <= 600
    assert rendered.lines[-1].endswith("1 laboratory value, 1 text shortened.")
    assert [i.kind for i in rendered.shortened] == ["prior_report"]


def test_the_record_keeps_what_was_given_and_what_was_left_out() -> None:
    record = render_items([lab("CRP 48 mg/L", 1), lab("CRP 9 mg/L", -1)]).to_dict()
    assert record["max_chars"] == DEFAULT_MAX_CHARS
    assert record["given"] == [{"kind": "lab", "text": "CRP 48 mg/L", "source": "FHIR Bundle "
                                "labs.json", "days_before": 1, "code": CRP}]  # fmt: skip
    assert record["dropped"][0]["reason"] == "after this film"
