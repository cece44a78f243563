"""``radloop monitor check --database-url``: signed cases read from the review store.

The store is seeded the way the review tests seed it (bundled sample radiograph, scripted
drafts, a table verifier), two studies are signed, and the monitor reads them through
``radloop.review.store.signed_cases``. Skipped when the review workstation is not installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("sqlalchemy")
pytest.importorskip("fastapi")
store_module = pytest.importorskip("radloop.review.store", reason="needs the review workstation")
REVIEW_TESTS = Path(__file__).resolve().parents[1] / "review"


def test_check_and_report_read_signed_cases_from_the_review_database(tmp_path: Path) -> None:
    sys.path.insert(0, str(REVIEW_TESTS))
    try:
        from reviewkit import seed_store
    finally:
        sys.path.remove(str(REVIEW_TESTS))
    from radloop.cli import main
    from radloop.monitor.agreement import agreement
    from radloop.monitor.cases import SignedCase
    from radloop.review import worksheet
    from radloop.review.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", in_process_worker=False)
    store = store_module.open_store(settings)
    try:
        seeded = seed_store(store, tmp_path / "sources")
        with store.sessions() as session:
            from radloop.review.db import Draft, Worksheet

            study_id = seeded.ids["flagged"]
            items = worksheet.review_items(
                session.get(Draft, study_id), session.get(Worksheet, study_id)
            )
            mass = next(i for i in items if i.finding["code"] == "mass")
            worksheet.decide(session, study_id, mass.key, "rejected", "rad")
            worksheet.sign(session, seeded.ids["flagged"], "rad", "Dr Rad")
            worksheet.sign(session, seeded.ids["routine"], "rad", "Dr Rad")
            # Its rib fracture claim was not checked (no verifier validated for it).
            worksheet.sign(session, seeded.ids["unchecked"], "rad", "Dr Rad")
        url = str(store.engine.url)
        cases = [SignedCase.from_dict(r) for r in store_module.signed_cases(store.engine)]
    finally:
        store.close()
    assert {c.study_id for c in cases} == {
        seeded.ids["flagged"],
        seeded.ids["routine"],
        seeded.ids["unchecked"],
    }
    flagged = next(c for c in cases if c.study_id == seeded.ids["flagged"])
    result = agreement(flagged)
    assert [f.code for f in result.removed] == ["mass"] and result.flags_rejected == 1

    runner = CliRunner()
    checked = runner.invoke(main, ["monitor", "check", "--database-url", url, "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output.strip().splitlines()[-1])["n"] == 3
    out = tmp_path / "report"
    reported = runner.invoke(main, ["monitor", "report", "--database-url", url, "--out", str(out),
                                    "--json"])  # fmt: skip
    assert reported.exit_code == 0, reported.output
    data = json.loads((out / "data.json").read_text())
    assert data["summary"]["overall"]["flags"] == 1
    assert data["summary"]["overall"]["guard_precision"] == 1.0
    # The drafts' stored verdicts: a not-checked claim is counted apart, never as supported.
    overall = data["summary"]["overall"]
    verdicts = {k: overall[f"claims_{k}"] for k in ("supported", "contradicted", "not_checked")}
    assert overall["claims"] == 6 and verdicts == {
        "supported": 4,
        "contradicted": 1,
        "not_checked": 1,
    }
    assert overall["not_checked_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert "1 of 6 draft claims were not checked" in (out / "dashboard.html").read_text()
