"""The reporting tools' server side: "Add finding" sentences that the parser reads back as
the finding chosen (or a typed refusal), the normal chest template, and the findings read
from a text edited by hand, as the study page lists them. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from reviewkit import Seeded

from radloop.errors import InputError
from radloop.report import parse
from radloop.review.compose import (
    LEVELS,
    SIDES,
    SIZES,
    compose_finding,
    finding_choices,
    normal_text,
)


def test_every_offered_finding_reads_back_as_itself_or_is_refused() -> None:
    written = refused = 0
    for choice in finding_choices():
        for side in (None, *SIDES) if choice.lateral else (None,):
            for level in (None, *LEVELS) if side else (None,):
                for size in (None, *SIZES):
                    try:
                        composed = compose_finding(choice.code, side, level, size)
                    except InputError as error:
                        assert "read back" in str(error)
                        refused += 1
                        continue
                    read = parse(f"FINDINGS: {composed['sentence']}")
                    assert [f.code for f in read] == [choice.code], composed
                    assert (read[0].side.value if read[0].side else None) == side
                    written += 1
    assert written > 1500 and refused < 10, (written, refused)


def test_a_finding_is_written_in_radiology_words() -> None:
    assert compose_finding("pneumothorax", "left", "upper")["sentence"] == (
        "Pneumothorax in the left upper zone."
    )
    assert compose_finding("pleural_effusion", "right", None, "small")["sentence"] == (
        "Small right pleural effusion."
    )
    both = compose_finding("consolidation", "bilateral", "lower")
    assert both["sentence"] == "Bilateral consolidation in the lower zones."
    assert sorted(both["finding"]["zones"]) == ["left_lower", "right_lower"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("tumour",), "a finding code of radloop's vocabulary"),
        (("no_finding",), "a finding code of radloop's vocabulary"),
        (("pneumothorax", "up"), "one of right, left, bilateral"),
        (("pneumothorax", "left", "apex"), "one of upper, middle, lower"),
        (("pneumothorax", None, "upper"), "a side with a lung level"),
        (("cardiomegaly", "left"), "no side for"),
        (("pleural_effusion", "left", None, "huge"), "one of small, moderate, large"),
    ],
)
def test_what_is_not_offered_is_refused_with_what_was_expected(
    args: tuple[Any, ...], says: str
) -> None:
    with pytest.raises(InputError, match=says):
        compose_finding(*args)


def test_the_normal_template_is_a_normal_report() -> None:
    text = normal_text()
    assert text.startswith("FINDINGS:") and "IMPRESSION:" in text
    assert "No acute cardiopulmonary abnormality." in text
    assert parse(text) == []


def test_the_sentence_api_and_the_findings_read_from_an_edited_text(
    client_for: Any, seeded: Seeded
) -> None:
    rad = client_for("rad")
    answer = rad.post("/api/findings/sentence", json={"code": "pneumothorax", "side": "left"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["sentence"] == "Left pneumothorax."
    refused = rad.post("/api/findings/sentence", json={"code": "tumour"})
    assert refused.status_code == 422
    assert "expected a finding code of radloop's vocabulary" in refused.text
    auditor = client_for("aud")
    assert auditor.post("/api/findings/sentence", json={"code": "mass"}).status_code == 403

    study = seeded.ids["unchecked"]
    page = rad.get(f"/studies/{study}").text
    assert 'id="add-finding"' in page and 'id="normal-template"' in page
    assert "Findings read from your text" not in page
    version = rad.get(f"/api/studies/{study}").json()["version"]
    text = "FINDINGS:\nPleura: Left pneumothorax.\n\nIMPRESSION:\nLeft pneumothorax."
    saved = rad.put(f"/api/studies/{study}/text", json={"text": text, "version": version})
    assert saved.status_code == 200, saved.text
    page = rad.get(f"/studies/{study}").text
    assert "Findings read from your text" in page
    assert "<li>Left pneumothorax.</li>" in page
