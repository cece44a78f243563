"""Claim verification: each claim's verdict, with the numbers behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safety_builders import make_study

from radloop.models.errors import MissingReferenceModelError
from radloop.report import Change, Finding, Presence, Verdict
from radloop.safety import (
    TableVerifier,
    Thresholds,
    UnknownVerifierError,
    VerifierDataError,
    VerifierOutput,
    available_verifiers,
    load_verifier,
    register_verifier,
    verify_claims,
)
from radloop.safety.verify import heatmap_side_mass
from radloop.vocabulary import Lobe, Side, Zone

EFFUSION_LEFT = VerifierOutput(
    "test",
    presence={"pleural_effusion": 0.92, "pneumothorax": 0.03, "nodule": 0.9},
    zones={
        "pleural_effusion": {Zone.LEFT_LOWER: 0.9, Zone.RIGHT_LOWER: 0.05},
        "nodule": {Zone.RIGHT_UPPER: 0.88, Zone.LEFT_LOWER: 0.02},
    },
    sizes_mm={"nodule": 11.0},
)


def _one(finding: Finding, output: VerifierOutput = EFFUSION_LEFT, **kwargs: object):
    return verify_claims([finding], output, **kwargs)[0]


def test_claim_the_verifier_sees_at_the_claimed_side_is_supported() -> None:
    check = _one(Finding("pleural_effusion", side=Side.LEFT))
    assert check.verdict is Verdict.SUPPORTED
    assert check.numbers.p_claim == pytest.approx(0.92)
    assert check.numbers.p_side == pytest.approx(0.9)


def test_claim_the_verifier_does_not_see_is_unsupported_as_possible_hallucination() -> None:
    check = _one(Finding("pneumothorax", side=Side.RIGHT))
    assert check.verdict is Verdict.UNSUPPORTED
    assert "possible hallucination" in check.reasons[0]
    assert check.flagged


def test_wrong_side_is_contradicted_with_both_sides_probabilities() -> None:
    check = _one(Finding("pleural_effusion", side=Side.RIGHT))
    assert check.verdict is Verdict.CONTRADICTED
    assert check.reasons[0].startswith("wrong side")
    assert (check.numbers.p_side, check.numbers.p_other_side) == (0.05, 0.9)


def test_wrong_lobe_is_contradicted_with_the_zone_the_verifier_prefers() -> None:
    check = _one(Finding("nodule", side=Side.RIGHT, lobes=(Lobe.RIGHT_LOWER,)))
    assert check.verdict is Verdict.CONTRADICTED
    assert check.numbers.best_zone is Zone.RIGHT_UPPER
    assert "wrong location" in check.reasons[0]


def test_inflated_size_is_contradicted_with_the_ratio() -> None:
    check = _one(Finding("nodule", side=Side.RIGHT, lobes=(Lobe.RIGHT_UPPER,), size_mm=23.0))
    assert check.verdict is Verdict.CONTRADICTED
    assert check.numbers.size_ratio == pytest.approx(23 / 11)


def test_size_within_the_allowed_ratio_is_supported() -> None:
    check = _one(Finding("nodule", side=Side.RIGHT, lobes=(Lobe.RIGHT_UPPER,), size_mm=13.0))
    assert check.verdict is Verdict.SUPPORTED


def test_confident_negative_contradicted_by_verifier_is_a_possible_omission() -> None:
    check = _one(Finding("pleural_effusion", presence=Presence.ABSENT))
    assert check.verdict is Verdict.CONTRADICTED
    assert check.possible_omission
    assert "possible omission" in check.reasons[0]


def test_negative_the_verifier_agrees_with_is_supported() -> None:
    assert _one(Finding("pneumothorax", presence=Presence.ABSENT)).verdict is Verdict.SUPPORTED


def test_finding_the_draft_never_mentions_is_reported_as_possible_omission() -> None:
    output = VerifierOutput("test", presence={"pneumothorax": 0.95})
    checks = verify_claims([], output)
    assert [c.finding.code for c in checks] == ["pneumothorax"]
    assert checks[0].index is None and checks[0].possible_omission
    assert "critical" in checks[0].reasons[0]


def test_finding_the_verifier_does_not_assess_is_not_checked() -> None:
    check = _one(Finding("scoliosis"))
    assert check.verdict is Verdict.NOT_CHECKED and not check.checked
    assert not check.flagged
    assert "does not assess scoliosis" in check.reasons[0]


def test_narrow_claim_is_checked_against_the_verifiers_broader_code() -> None:
    output = VerifierOutput("test", presence={"lung_opacity": 0.9})
    check = _one(Finding("consolidation"), output)
    assert check.verdict is Verdict.SUPPORTED
    assert check.numbers.verifier_code == "lung_opacity"


def test_internal_contradiction_makes_both_claims_contradicted() -> None:
    findings = [
        Finding("pleural_effusion", presence=Presence.ABSENT),
        Finding("pleural_effusion", side=Side.LEFT),
    ]
    checks = verify_claims(findings, VerifierOutput("test"))
    assert [c.verdict for c in checks] == [Verdict.CONTRADICTED, Verdict.CONTRADICTED]
    assert "internal contradiction" in checks[1].reasons[0]


def test_heatmap_on_the_other_side_contradicts_the_claimed_side() -> None:
    heatmap = np.zeros((8, 8), dtype=np.float32)
    heatmap[:, 6:] = 1.0  # image right = patient's left
    output = VerifierOutput(
        "test", presence={"pneumothorax": 0.9}, heatmaps={"pneumothorax": heatmap}
    )
    assert heatmap_side_mass(heatmap, Side.LEFT) == pytest.approx(1.0)
    check = _one(Finding("pneumothorax", side=Side.RIGHT), output)
    assert check.verdict is Verdict.CONTRADICTED
    assert check.numbers.heatmap_side_mass == pytest.approx(0.0)


def test_tube_tip_far_from_the_measured_position_is_contradicted() -> None:
    output = VerifierOutput("test", presence={"endotracheal_tube": 0.99}, tube_tip_to_carina_mm=45)
    tube = Finding("endotracheal_tube", tip_distance_mm=10.0, tip_reference="carina")
    assert _one(tube, output).verdict is Verdict.CONTRADICTED


def test_claim_few_sampled_drafts_repeat_is_unsupported_unless_the_verifier_is_confident() -> None:
    output = VerifierOutput("test", presence={"nodule": 0.6, "pleural_effusion": 0.95})
    samples = [[Finding("nodule")], [], [], [Finding("pleural_effusion")]]
    nodule, effusion = verify_claims(
        [Finding("nodule"), Finding("pleural_effusion")], output, samples=samples
    )
    assert nodule.verdict is Verdict.UNSUPPORTED
    assert nodule.numbers.sample_agreement == pytest.approx(0.25)
    assert effusion.verdict is Verdict.SUPPORTED
    assert any("sampled drafts" in r for r in effusion.reasons)


def test_thresholds_refuse_values_outside_their_range() -> None:
    with pytest.raises(ValueError, match='"supported_at" must be a probability'):
        Thresholds(supported_at=1.5)
    with pytest.raises(ValueError, match='"size_ratio_max" must be greater than 1'):
        Thresholds(size_ratio_max=0.9)


def test_verifier_output_refuses_a_probability_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"presence\['pneumothorax'\]"):
        VerifierOutput("test", presence={"pneumothorax": 1.2})


def test_reference_verifier_reads_the_study_with_the_shipped_model() -> None:
    from radloop.models.reference.predictor import reliable_findings
    from radloop.study import load_study, sample_study_path

    assert {"reference", "table"} <= set(available_verifiers())
    verifier = load_verifier("reference")
    study = load_study(sample_study_path())
    output = verifier.verify(study)
    assert output.verifier.startswith("radloop-reference")
    assert set(output.presence) <= reliable_findings(verifier._model.sidecar)  # type: ignore[attr-defined]
    assert output.presence, "the shipped model assesses at least its reliable finding types"
    for code in output.presence:
        assert output.heatmaps[code].shape == study.images[0].pixels.shape
    assert output.embedding is not None


def test_reference_verifier_from_a_folder_without_weights_says_how_to_get_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(MissingReferenceModelError, match="train-reference"):
        load_verifier("reference", model=tmp_path)


def test_unknown_verifier_names_the_known_ones() -> None:
    with pytest.raises(UnknownVerifierError, match=r"expected a verifier name, one of .*table"):
        load_verifier("nonexistent")


def test_table_verifier_reads_a_hospitals_precomputed_outputs(tmp_path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(
        '{"verifier": "hospital-v2", "studies": {"1.2.3": {"presence": '
        '{"pneumothorax": 0.9}, "zones": {"pneumothorax": {"right_upper": 0.8}}}}}'
    )
    verifier = load_verifier("table", path=path)
    output = verifier.verify(make_study())
    assert verifier.verifier_id == "hospital-v2"
    assert output.zones["pneumothorax"][Zone.RIGHT_UPPER] == 0.8
    assert verifier.verify(make_study(uid="9.9")).presence == {}


def test_table_verifier_refuses_an_unknown_zone() -> None:
    with pytest.raises(VerifierDataError, match="zones such as 'right_upper'"):
        TableVerifier({"1": {"presence": {"nodule": 0.5}, "zones": {"nodule": {"apex": 0.5}}}})


def test_a_registered_verifier_can_be_loaded_by_name() -> None:
    @register_verifier("always-sure-test")
    class AlwaysSure:
        """A test verifier that sees a pneumothorax everywhere."""

        verifier_id = "always-sure"

        def verify(self, study):
            return VerifierOutput("always-sure", presence={"pneumothorax": 1.0})

    assert load_verifier("always-sure-test").verify(make_study()).presence == {"pneumothorax": 1.0}


# --- claimed change against the prior study --------------------------------------------------

PRIOR_SMALLER = VerifierOutput(
    "test",
    presence={"pleural_effusion": 0.9, "pneumothorax": 0.02, "nodule": 0.9},
    zones=EFFUSION_LEFT.zones,
    extents={"pleural_effusion": 300.0, "nodule": 11.0},
)
NOW_LARGER = VerifierOutput(
    "test",
    presence=EFFUSION_LEFT.presence,
    zones=EFFUSION_LEFT.zones,
    extents={"pleural_effusion": 520.0, "nodule": 11.5},
)


def _change(change: Change, code: str = "pleural_effusion", side: Side = Side.LEFT):
    claim = Finding(code, side=side, change=change)
    return verify_claims([claim], NOW_LARGER, prior_output=PRIOR_SMALLER)[0]


def test_a_change_the_two_readings_agree_with_is_supported() -> None:
    check = _change(Change.INCREASED)
    assert check.verdict is Verdict.SUPPORTED
    assert (check.numbers.extent_prior, check.numbers.extent_current) == (300.0, 520.0)
    assert _change(Change.STABLE, "nodule", Side.RIGHT).verdict is Verdict.SUPPORTED


@pytest.mark.parametrize("claimed", [Change.DECREASED, Change.STABLE, Change.NEW])
def test_a_wrong_change_direction_is_contradicted_with_both_measurements(claimed: Change) -> None:
    check = _change(claimed)
    assert check.verdict is Verdict.CONTRADICTED
    assert check.reasons[0].startswith(f"change: claimed {claimed.value}")
    assert check.numbers.p_prior == pytest.approx(0.9)


def test_an_increase_of_something_absent_on_the_prior_is_contradicted() -> None:
    prior = VerifierOutput("test", presence={"pneumothorax": 0.01})
    now = VerifierOutput("test", presence={"pneumothorax": 0.95})
    claim = Finding("pneumothorax", side=Side.RIGHT, change=Change.INCREASED)
    check = verify_claims([claim], now, prior_output=prior)[0]
    assert check.verdict is Verdict.CONTRADICTED
    assert "new?" in check.reasons[0]


def test_without_a_prior_reading_changes_are_not_judged() -> None:
    check = verify_claims([Finding("pleural_effusion", side=Side.LEFT, change=Change.DECREASED)],
                          NOW_LARGER)[0]  # fmt: skip
    assert check.verdict is Verdict.SUPPORTED
    assert check.numbers.p_prior is None


def test_extents_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive extent"):
        VerifierOutput("test", presence={"nodule": 0.5}, extents={"nodule": 0.0})


def test_a_critical_finding_is_a_possible_omission_at_a_lower_probability() -> None:
    output = VerifierOutput("test", presence={"pneumothorax": 0.6, "nodule": 0.6})
    checks = verify_claims([Finding("cardiomegaly", presence=Presence.ABSENT)], output)
    omitted = {c.finding.code for c in checks if c.possible_omission}
    assert omitted == {"pneumothorax"}  # critical at 0.6; a nodule needs 0.8
    strict = Thresholds(critical_omission_at=0.8)
    assert not any(c.possible_omission for c in verify_claims([], output, thresholds=strict))


def test_a_per_finding_omission_threshold_replaces_the_defaults_for_that_finding_only() -> None:
    output = VerifierOutput("test", presence={"pneumothorax": 0.1, "nodule": 0.85})
    fitted = Thresholds(omission_by_code={"pneumothorax": 0.05})
    omitted = {c.finding.code for c in verify_claims([], output, thresholds=fitted)}
    assert omitted == {"pneumothorax", "nodule"}  # 0.1 >= 0.05; the nodule keeps 0.8
    denied = verify_claims([Finding("pneumothorax", presence=Presence.ABSENT)], output,
                           thresholds=fitted)[0]  # fmt: skip
    assert denied.possible_omission and "gives 0.10" in denied.reasons[0]
    assert not any(c.possible_omission for c in verify_claims([], output) if c.finding.code
                   == "pneumothorax")  # fmt: skip


def test_per_finding_omission_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match=r"omission_by_code\['pneumothorax'\]"):
        Thresholds(omission_by_code={"pneumothorax": 1.5})
    with pytest.raises(KeyError, match="not_a_finding"):
        Thresholds(omission_by_code={"not_a_finding": 0.1})
