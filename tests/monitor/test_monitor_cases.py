"""The signed-case schema: round trips, JSONL files and clear errors for bad records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from monitor_builders import effusion, make_case

from radloop.errors import InputError
from radloop.monitor.cases import (
    FlagOutcome,
    SignedCase,
    field_names,
    image_stats,
    read_cases,
    write_cases,
)


def test_a_case_round_trips_through_the_review_store_schema() -> None:
    case = make_case(
        3, (effusion(),), (), flags=(FlagOutcome("pleural_effusion", "r", "rejected"),)
    )
    data = case.to_dict()
    assert tuple(data) == field_names()
    assert SignedCase.from_dict(json.loads(json.dumps(data))) == case


def test_naive_timestamps_are_read_as_utc() -> None:
    data = make_case(0).to_dict()
    data["signed_at"] = "2025-03-03T08:30:00"
    assert SignedCase.from_dict(data).signed_at.utcoffset() is not None


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("signed_at", "yesterday", "signed_at as ISO-8601"),
        ("sex", "X", "sex 'M', 'F' or null"),
        ("age", -4, "age as whole years"),
        ("flags", [{"code": "mass", "reason": "", "decision": "ignored"}], "flag decision"),
        ("draft_findings", [{"code": "unicorn"}], "draft_findings as Finding.to_dict"),
        ("image_stats", {"mean": 0.5}, "image_stats with mean, std, p05 and p95"),
        ("ood_score", "high", "ood_score as a number"),
    ],
)
def test_bad_fields_name_what_was_expected(field: str, value: object, match: str) -> None:
    data = make_case(0).to_dict()
    data[field] = value
    with pytest.raises(InputError, match=match):
        SignedCase.from_dict(data)


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(InputError, match="signed case with study_id, signed_at"):
        SignedCase.from_dict({"model": "m"})


def test_jsonl_round_trip_and_bad_line(tmp_path: Path) -> None:
    cases = [make_case(i) for i in range(5)]
    path = tmp_path / "cases.jsonl"
    assert write_cases(cases, path) == 5
    assert list(read_cases(path)) == cases
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(InputError, match=r"one JSON object per line.*line 6"):
        list(read_cases(path))


def test_image_stats_keep_display_pixels_and_rescale_raw_ones() -> None:
    display = np.full((10, 10), 0.25)
    assert image_stats(display).mean == pytest.approx(0.25)
    raw = np.arange(100.0).reshape(10, 10) * 40  # 12-bit stored values
    stats = image_stats(raw)
    assert stats.mean == pytest.approx(0.5)
    assert 0.0 <= stats.p05 < stats.p95 <= 1.0
