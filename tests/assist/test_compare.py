"""compare(current, prior): both images in one request, or two structured outputs diffed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from radloop.assist import OutputMode, compare, diff_findings
from radloop.models.mock import MockModel
from radloop.report import Change, Finding, Presence, Severity
from radloop.study import Study
from radloop.vocabulary import Side, Zone


def test_both_studies_travel_in_one_request_current_first(study: Study, prior: Study) -> None:
    model = MockModel("No interval change.")
    result = compare(study, prior, model)
    assert len(model.requests) == 1
    uids = [i.sop_instance_uid for i in model.requests[0].images]
    assert not uids[0].startswith("prior-") and uids[1].startswith("prior-")
    assert result.changes == ()
    assert result.output_mode is OutputMode.TEXT


def test_a_text_comparison_is_read_finding_by_finding(study: Study, prior: Study) -> None:
    reply = "New right pneumothorax. The left pleural effusion has increased."
    result = compare(study, prior, MockModel(reply))
    assert [(c.code, c.direction, c.side) for c in result.changes] == [
        ("pneumothorax", Change.NEW, Side.RIGHT),
        ("pleural_effusion", Change.INCREASED, Side.LEFT),
    ]


def test_a_json_comparison_is_used_and_bad_entries_are_warned_about(
    study: Study, prior: Study
) -> None:
    reply = json.dumps(
        {
            "changes": [
                {"code": "pleural_effusion", "direction": "decreased", "side": "left",
                 "details": "moderate to small"},
                {"code": "pneumothorax", "direction": "sideways", "details": ""},
            ]
        }
    )  # fmt: skip
    result = compare(study, prior, MockModel(reply, supports_json_schema=True))
    assert result.output_mode is OutputMode.JSON
    assert [c.to_json() for c in result.changes] == [
        {"code": "pleural_effusion", "direction": "decreased", "side": "left",
         "details": "moderate to small"}
    ]  # fmt: skip
    assert len(result.warnings) == 1 and "'sideways'" in result.warnings[0]


def test_the_reference_model_compares_its_two_structured_outputs(
    study: Study, prior: Study, reference_model: Callable[..., Any]
) -> None:
    model = reference_model(
        current=[Finding("nodule", side=Side.RIGHT, size_mm=18.0)],
        prior=[Finding("nodule", side=Side.RIGHT, size_mm=12.0)],
    )
    result = compare(study, prior, model)
    assert result.output_mode is OutputMode.STRUCTURED
    (change,) = result.changes
    assert (change.direction, change.details) == (Change.INCREASED, "12 → 18 mm")


def test_differences_by_presence_size_severity_and_extent() -> None:
    current = [
        Finding("pneumothorax", side=Side.LEFT),
        Finding("nodule", side=Side.RIGHT, size_mm=13.0),  # +1 mm: within measurement error
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.SMALL),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_MIDDLE, Zone.LEFT_LOWER)),
        Finding("cardiomegaly", presence=Presence.ABSENT),
    ]
    prior = [
        Finding("nodule", side=Side.RIGHT, size_mm=12.0),
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.LARGE),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
        Finding("cardiomegaly"),
    ]
    directions = {c.code: c.direction for c in diff_findings(current, prior)}
    assert directions == {
        "pneumothorax": Change.NEW,
        "nodule": Change.STABLE,
        "pleural_effusion": Change.DECREASED,
        "consolidation": Change.INCREASED,
        "cardiomegaly": Change.RESOLVED,
    }
