"""The monitor counts the signed cases whose draft failed or whose model abstained, per
window and per site: in its summary, the windows and subgroups CSV tables and the dashboard."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import sys
from pathlib import Path

import pytest
from monitor_builders import START, make_case

from radloop.errors import InputError
from radloop.monitor.analysis import MonitorSettings, analyse, csv_table
from radloop.monitor.cases import SignedCase
from radloop.monitor.page import render_dashboard

REVIEW_TESTS = Path(__file__).resolve().parents[1] / "review"


def _cases() -> list[SignedCase]:
    """Week 1: site-A 3 drafted, 1 failed; site-B 1 abstained. Week 2: site-A 2 abstained;
    site-B 1 failed, 1 drafted."""
    plan = [
        (0, "site-A", "drafted"), (0, "site-A", "drafted"), (0, "site-A", "drafted"),
        (0, "site-A", "failed"), (1, "site-B", "abstained"),
        (8, "site-A", "abstained"), (8, "site-A", "abstained"),
        (9, "site-B", "failed"), (9, "site-B", "drafted"),
    ]  # fmt: skip
    return [
        dataclasses.replace(
            make_case(i, site=site, when=START + datetime.timedelta(days=day, minutes=i)),
            draft_state=state,
        )
        for i, (day, site, state) in enumerate(plan)
    ]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_failed_and_abstained_drafts_are_counted_per_window_and_site() -> None:
    analysis = analyse(_cases(), MonitorSettings(window_days=7))
    summary = analysis.summary
    assert summary.overall is not None
    assert (summary.overall.failed_drafts, summary.overall.abstained_drafts) == (2, 3)
    by_window = [(w.label, w.n, w.failed_drafts, w.abstained_drafts) for w in summary.windows]
    assert by_window == [("2025-03-03", 5, 1, 1), ("2025-03-10", 4, 1, 2)]
    sites = {g.label: (g.failed_drafts, g.abstained_drafts) for g in summary.subgroups["site"]}
    assert sites == {"site-A": (1, 2), "site-B": (1, 1)}

    windows = _rows(csv_table(analysis, "windows"))
    assert [(r["label"], r["failed_drafts"], r["abstained_drafts"]) for r in windows] == [
        ("2025-03-03", "1", "1"),
        ("2025-03-10", "1", "2"),
    ]
    site_rows = [r for r in _rows(csv_table(analysis, "subgroups")) if r["subgroup"] == "site"]
    assert {r["label"]: (r["failed_drafts"], r["abstained_drafts"]) for r in site_rows} == {
        "site-A": ("1", "2"),
        "site-B": ("1", "1"),
    }
    assert summary.to_dict()["overall"]["abstained_drafts"] == 3

    page = render_dashboard(analysis)
    assert "<table id='draft-outcomes'>" in page
    assert "<td>window</td><td>2025-03-10</td><td>4</td><td>1</td><td>2</td><td>75.0 %</td>" in page
    assert "<td>site</td><td>site-B</td><td>3</td><td>1</td><td>1</td><td>66.7 %</td>" in page
    assert "<b>2 / 3</b><br>drafts failed / model abstained" in page


def test_the_draft_state_travels_through_the_case_schema() -> None:
    case = dataclasses.replace(make_case(1), draft_state="abstained")
    data = case.to_dict()
    assert data["draft_state"] == "abstained"
    assert SignedCase.from_dict(data) == case
    older = {k: v for k, v in data.items() if k != "draft_state"}
    assert SignedCase.from_dict(older).draft_state == "drafted"
    with pytest.raises(InputError, match="draft_state one of drafted, failed, abstained, none"):
        SignedCase.from_dict({**data, "draft_state": "skipped"})


def test_the_review_store_says_which_signed_drafts_failed_or_abstained(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("fastapi")
    sys.path.insert(0, str(REVIEW_TESTS))
    try:
        from reviewkit import seed_store
    finally:
        sys.path.remove(str(REVIEW_TESTS))
    from sqlalchemy import update

    from radloop.review import worksheet
    from radloop.review.db import Draft, StudyRow, Worksheet
    from radloop.review.settings import Settings
    from radloop.review.store import open_store, signed_cases

    store = open_store(Settings(data_dir=tmp_path / "data", in_process_worker=False))
    try:
        seeded = seed_store(store, tmp_path / "sources")
        roles = ("routine", "failed", "abstained")
        with store.sessions() as session:
            # The failed study is urgent (its verifier saw a pneumothorax); the communication
            # record that signing it needs is another test's subject.
            session.execute(update(StudyRow).values(urgent=False))
            session.commit()
            for role in roles[1:]:  # no draft text: the reader writes the report
                worksheet.set_text(session, seeded.ids[role], "No acute abnormality.", "rad")
            failed = seeded.ids["failed"]
            items = worksheet.review_items(
                session.get(Draft, failed), session.get(Worksheet, failed)
            )
            for item in items:
                if item.omission:  # the verifier's possible pneumothorax: the reader dismisses it
                    worksheet.decide(session, failed, item.key, "rejected", "rad")
            for role in roles:
                worksheet.sign(session, seeded.ids[role], "rad", "Dr Rad")
        states = {
            c.study_id: c.draft_state
            for c in (SignedCase.from_dict(r) for r in signed_cases(store.engine))
        }
    finally:
        store.close()
    expected = {"routine": "drafted", "failed": "failed", "abstained": "abstained"}
    assert states == {seeded.ids[role]: state for role, state in expected.items()}
