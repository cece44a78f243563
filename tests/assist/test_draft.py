"""draft(study): JSON where the backend supports it, free text otherwise, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from radloop.assist import OutputMode, draft
from radloop.assist.types import WarningKind
from radloop.models.mock import MockModel
from radloop.report import Change, Finding, Presence, Severity
from radloop.study import Study
from radloop.vocabulary import Side, Zone

JSON_REPLY = json.dumps(
    {
        "findings": [
            {"code": "pleural_effusion", "presence": "present", "side": "left",
             "severity": "small"},
            {"code": "nodule", "presence": "present", "zones": ["right_upper"], "size_mm": 12},
            {"code": "pneumothorax", "presence": "absent"},
        ],
        "normal_sections": ["heart_mediastinum", "bones"],
        "impression": "Small left pleural effusion. 12 mm right upper zone nodule.",
    }
)  # fmt: skip

TEXT_REPLY = (
    "Lungs: 12 mm nodule in the right upper lobe.\n"
    "Pleura: Small left pleural effusion. No pneumothorax.\n"
    "Heart and mediastinum: Normal heart size.\n"
    "Bones: No fracture.\n"
    "Devices: None.\n"
    "IMPRESSION: Small left pleural effusion."
)


def test_a_json_reply_becomes_findings_and_a_written_report(study: Study) -> None:
    model = MockModel(JSON_REPLY, supports_json_schema=True)
    result = draft(study, model)
    assert result.output_mode is OutputMode.JSON
    assert result.warnings == ()
    effusion, nodule, pneumothorax = result.findings
    assert (effusion.side, effusion.severity) == (Side.LEFT, Severity.SMALL)
    assert (nodule.zones, nodule.side, nodule.size_mm) == ((Zone.RIGHT_UPPER,), Side.RIGHT, 12.0)
    assert pneumothorax.presence is Presence.ABSENT
    assert "Small left pleural effusion." in result.text
    assert result.report.source_model == "mock"
    assert model.requests[0].json_schema is not None  # structured output was asked for


def test_a_free_text_reply_is_read_by_the_report_parser(study: Study) -> None:
    result = draft(study, MockModel(TEXT_REPLY))
    assert result.output_mode is OutputMode.TEXT
    assert result.text == TEXT_REPLY
    positive = {(f.code, f.side) for f in result.findings if f.is_positive}
    assert positive == {("nodule", Side.RIGHT), ("pleural_effusion", Side.LEFT)}
    assert all(f.source == "mock" for f in result.findings)


def test_the_text_prompt_asks_for_the_standard_sections(study: Study) -> None:
    model = MockModel(TEXT_REPLY)
    draft(study, model)
    prompt = model.requests[0].prompt
    for section in ("Lungs:", "Pleura:", "Heart and mediastinum:", "Bones:", "Devices:",
                    "IMPRESSION:"):  # fmt: skip
        assert section in prompt
    assert model.requests[0].json_schema is None


def test_clinical_context_goes_into_the_prompt(study: Study) -> None:
    model = MockModel(TEXT_REPLY)
    draft(study, model, history="Smoker, 40 pack-years")
    prompt = model.requests[0].prompt
    assert (
        "Indication (this film's order, DICOM (0040,1002) Reason for the Requested Procedure): "
        "Fever and shortness of breath; check ETT position"
    ) in prompt
    assert "History (given with the request): Smoker, 40 pack-years" in prompt
    assert "Patient: 44-year-old male" in prompt
    assert "View: PA" in prompt


def test_a_schema_breaking_json_reply_fails_the_draft_with_the_reason(study: Study) -> None:
    model = MockModel(
        '{"findings": [{"code": "pleural_effusion", "presence": "pres',
        supports_json_schema=True,
    )
    result = draft(study, model, output="json")
    assert result.failed and result.failure is not None
    assert result.failure.kind is WarningKind.SCHEMA_BROKEN
    assert result.findings == () and result.text == ""


def test_prose_instead_of_the_requested_json_is_read_as_text_with_a_warning(study: Study) -> None:
    model = MockModel("Small left pleural effusion. No pneumothorax.", supports_json_schema=True)
    result = draft(study, model, output="json")
    assert result.output_mode is OutputMode.TEXT and not result.failed
    assert [w.kind for w in result.warnings] == [WarningKind.NOT_JSON]


def test_findings_that_break_the_schema_are_dropped_with_warnings(study: Study) -> None:
    reply = json.dumps(
        {
            "findings": [
                {"code": "pleural_effusions", "presence": "present"},  # a synonym: kept
                {"code": "unicorn", "presence": "present"},
                {"code": "nodule", "presence": "present", "size_mm": -3, "side": "up"},
                "pneumothorax",
            ],
            "normal_sections": ["heart_mediastinum", "bones"],
            "impression": "",
        }
    )
    result = draft(study, MockModel(reply), output="json")
    assert [f.code for f in result.findings] == ["pleural_effusion", "nodule"]
    assert result.findings[1].size_mm is None
    assert len(result.warnings) == 4
    assert all(w.kind is WarningKind.INVALID_FIELD for w in result.warnings)
    assert any("got 'unicorn'; skipped" in str(w) for w in result.warnings)


@pytest.mark.parametrize(
    "reply", ["", "   ", "\x00\x01garbage ]]}{", "[1, 2, 3]", '{"findings": "none"}', "{" * 5000]
)
def test_no_model_output_makes_draft_crash(study: Study, reply: str) -> None:
    result = draft(study, MockModel(reply), output="json")
    assert result.label == "assistant output — not a diagnosis"
    assert result.warnings
    # None of these is a report: each fails the draft, never a "normal" one.
    assert result.failed and result.findings == () and "No acute" not in result.text


def test_a_prior_study_travels_after_the_current_one(study: Study, prior: Study) -> None:
    model = MockModel(TEXT_REPLY)
    draft(study, model, prior=prior)
    request = model.requests[0]
    assert len(request.images) == 2
    assert request.images[1].sop_instance_uid.startswith("prior-")
    assert "the prior study from 2023-01-02" in request.prompt
    assert "new, increased, decreased, stable or resolved" in request.prompt


def test_the_reference_model_drafts_from_its_structured_findings_with_changes(
    study: Study, prior: Study, reference_model: Callable[..., Any]
) -> None:
    model = reference_model(
        current=[Finding("pleural_effusion", side=Side.LEFT, severity=Severity.MODERATE)],
        prior=[
            Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL),
            Finding("pneumothorax", side=Side.RIGHT),
        ],
    )
    result = draft(study, model, prior=prior)
    assert result.output_mode is OutputMode.STRUCTURED
    changes = {(f.code, f.presence, f.change) for f in result.findings}
    assert changes == {
        ("pleural_effusion", Presence.PRESENT, Change.INCREASED),
        ("pneumothorax", Presence.ABSENT, Change.RESOLVED),
    }
    assert "Interval resolution of the right pneumothorax." in result.text


def test_n_generations_are_all_kept_with_their_logprobs(study: Study) -> None:
    result = draft(study, MockModel(TEXT_REPLY), n=3, temperature=0.7, logprobs=True)
    assert len(result.generations) == 3
    assert all(g.logprobs for g in result.generations)
    assert result.to_dict()["generations"][0]["mean_logprob"] is not None


def test_an_unknown_output_mode_is_refused(study: Study) -> None:
    with pytest.raises(ValueError, match=r'"output" must be one of'):
        draft(study, MockModel(), output="xml")


def test_a_draft_with_a_prior_states_the_changes_compare_reports(
    study: Study, prior: Study, reference_model: Callable[..., Any]
) -> None:
    import numpy as np

    from radloop.assist import compare

    def strength(value: float) -> Any:
        grid = np.zeros((6, 6), np.float32)
        grid[2, 1] = value
        return grid

    base = reference_model(
        current=[Finding("nodule", side=Side.RIGHT, size_mm=14.0)],
        prior=[Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.SMALL)],
    )

    class LookingModel(type(base)):  # type: ignore[misc]
        """The fake reference model, also saying where each finding shows (LocalPredictor)."""

        def predict_local(self, images: Any) -> dict[str, Any]:
            if images[0].sop_instance_uid.startswith("prior-"):
                return {"nodule": strength(0.6), "pleural_effusion": strength(1.4)}
            return {"nodule": strength(1.3), "pleural_effusion": strength(0.7)}

    model = LookingModel(base.current, base.prior)
    result = draft(study, model, prior=prior)
    stated = {(f.code, f.presence, f.change) for f in result.findings}
    assert stated == {
        ("nodule", Presence.PRESENT, Change.INCREASED),
        ("pleural_effusion", Presence.UNCERTAIN, Change.DECREASED),
    }
    assert "Right pleural effusion may be present, decreased since the prior study." in result.text
    compared = {(c.code, c.direction) for c in compare(study, prior, model).changes}
    assert compared == {(f[0], f[2]) for f in stated}
    # Without the look-back (the plain fake) the same readings are new and resolved.
    plain = {(f.code, f.change) for f in draft(study, base, prior=prior).findings}
    assert plain == {("nodule", Change.NEW), ("pleural_effusion", Change.RESOLVED)}
