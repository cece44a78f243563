"""Whose film is this: patient name, ID, accession number, age/sex and study date on every
worklist row and above every study, read from the DICOM header at ingest; a linked prior is
labelled "has prior"; the scope badge speaks only when the study is outside the intended use.
Runs against SQLite and PostgreSQL (the ``backend`` fixture).
"""

from __future__ import annotations

import re
from typing import Any

import pydicom
from reviewkit import Seeded

from radloop.review.identity import display_name


def _sample_header() -> Any:
    from radloop.study import sample_study_path

    return pydicom.dcmread(next(sample_study_path().glob("*.dcm")), stop_before_pixels=True)


def test_person_names_read_family_name_first() -> None:
    assert display_name("DOE^JANE^Q") == "DOE, JANE Q"
    assert display_name("DOE^JANE^^DR") == "DOE, JANE"
    assert display_name("Anonymous") == "Anonymous"
    assert display_name("YAMADA^TARO=山田^太郎") == "YAMADA, TARO"
    assert display_name("") is None and display_name(None) is None


def test_worklist_rows_carry_name_id_accession_age_and_date(
    seeded: Seeded, client_for: Any
) -> None:
    header = _sample_header()
    rad = client_for("rad")
    page = rad.get("/?status=all")
    assert page.status_code == 200
    row = re.compile(r'<tr class="[^"]*" data-study="([0-9a-f]+)">.*?</tr>', re.S)
    rows = {m.group(1): m.group(0) for m in row.finditer(page.text)}
    urgent = rows[seeded.ids["urgent"]]
    assert display_name(header.PatientName) in urgent  # e.g. "SAMPLE, FICTIONAL"
    assert "PAT-urgent" in urgent  # the Patient ID this copy was written with
    assert str(header.AccessionNumber) in urgent
    assert "2024-01-15" in urgent
    assert re.search(r"\d+ y [MF]", urgent), urgent

    listed = rad.get("/api/worklist?status=all&limit=50").json()["studies"]
    by_id = {s["id"]: s for s in listed}
    assert by_id[seeded.ids["current"]]["patient_id"] == "PAT-PAIR"
    assert by_id[seeded.ids["current"]]["accession_number"] == str(header.AccessionNumber)


def test_a_study_with_a_prior_says_has_prior_and_its_prior_does_not(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    page = rad.get("/?status=all").text
    row = lambda role: re.search(  # noqa: E731
        rf'data-study="{seeded.ids[role]}">.*?</tr>', page, re.S
    ).group(0)  # type: ignore[union-attr]
    assert ">has prior<" in row("current")
    assert "prior" not in row("prior").replace("data-study", "")


def test_the_study_header_names_the_patient(seeded: Seeded, client_for: Any) -> None:
    header = _sample_header()
    page = client_for("rad").get(f"/studies/{seeded.ids['current']}").text
    bar = re.search(r'<dl class="patient-bar".*?</dl>', page, re.S)
    assert bar is not None, page[:2000]
    text = re.sub(r"<[^>]+>", " ", bar.group(0))
    assert display_name(header.PatientName) in text
    assert "PAT-PAIR" in text and str(header.AccessionNumber) in text
    assert "2024-01-15" in text


def test_scope_notes_that_change_nothing_raise_no_badge(
    seeded: Seeded, client_for: Any, store: Any
) -> None:
    from sqlalchemy import update

    from radloop.review.db import StudyRow

    study = seeded.ids["routine"]
    note = [{"outcome": "flagged", "text": "the image is clipped at the border", "image": None}]
    with store.sessions() as session:
        session.execute(
            update(StudyRow)
            .where(StudyRow.id == study)
            .values(scope_outcome="flagged", scope=note, out_of_scope=False)
        )
        session.commit()
    rad = client_for("rad")
    worklist = rad.get("/?status=all").text
    row = re.search(rf'data-study="{study}">.*?</tr>', worklist, re.S)
    assert row is not None and "scope" not in row.group(0).split('class="badges"')[1]
    page = rad.get(f"/studies/{study}").text
    assert 'class="badge scope' not in page
    assert "the image is clipped at the border" in page  # the detail stays on the study page
