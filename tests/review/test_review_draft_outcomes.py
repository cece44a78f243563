"""The worklist tells an abstained draft (the model declined the film) from a failed one (the
model gave no usable reply) and from a drafted one."""

from __future__ import annotations

import re
from typing import Any

from reviewkit import Seeded


def _row(page: str, study_id: str) -> str:
    found = re.search(rf'<tr[^>]*data-study="{study_id}">(.*?)</tr>', page, re.S)
    assert found, f"no worklist row for {study_id}"
    return found.group(1)


def test_the_worklist_badges_an_abstained_draft_apart_from_a_failed_one(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    studies = {s["id"]: s for s in rad.get("/api/worklist?status=all&limit=100").json()["studies"]}
    abstained, failed, routine = (seeded.ids[r] for r in ("abstained", "failed", "routine"))
    assert studies[abstained]["abstained"] is True
    assert studies[abstained]["status"] == "ready"
    assert studies[failed]["abstained"] is False and studies[failed]["status"] == "failed"
    assert [i for i, s in studies.items() if s["abstained"]] == [abstained]

    page = rad.get("/?status=all").text
    assert "model abstained" in _row(page, abstained)
    failed_row = _row(page, failed)
    assert "model abstained" not in failed_row
    assert "status-failed" in failed_row and "draft failed" in failed_row
    assert "model abstained" not in _row(page, routine)
    # The study's own detail agrees with its worklist row.
    detail = rad.get(f"/api/studies/{abstained}").json()
    assert detail["abstained"] is True and detail["draft"]["abstained"]
