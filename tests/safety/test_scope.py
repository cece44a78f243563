"""Scope guard: tags first, then the view head, OOD and model-free image checks.

These tests switch the acquisition classifier off (``acquisition=False``) to test each rule on
its own; test_scope_classifier.py tests the classifier and its rules.
"""

from __future__ import annotations

import numpy as np
import pytest
from safety_builders import frontal_phantom, make_image, make_study

from radloop.safety import MahalanobisScorer, ScopeOutcome, assess_image, assess_study
from radloop.study import StudyMetadata


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def test_frontal_adult_chest_radiograph_is_accepted() -> None:
    meta = StudyMetadata(modality="DX", view_position="PA", body_part="CHEST", patient_age=54)
    decision = assess_image(make_image(frontal_phantom()), meta, acquisition=False)
    assert decision.outcome is ScopeOutcome.ACCEPTED, decision.reasons


def test_ct_modality_tag_is_refused_with_reason() -> None:
    decision = assess_image(
        make_image(frontal_phantom()), StudyMetadata(modality="CT"), acquisition=False
    )
    assert decision.refused
    assert codes(decision) == ["modality_ct"]
    assert decision.reasons[0].values == {"Modality": "CT"}
    assert "chest radiographs only" in decision.reasons[0].text


def test_mr_and_ultrasound_are_refused() -> None:
    for modality, code in (("MR", "modality_mr"), ("US", "modality_not_radiograph")):
        decision = assess_image(
            make_image(frontal_phantom()), StudyMetadata(modality=modality), acquisition=False
        )
        assert decision.refused and code in codes(decision)


def test_lateral_view_position_is_refused() -> None:
    meta = StudyMetadata(modality="CR", view_position="LL")
    decision = assess_image(make_image(frontal_phantom()), meta, acquisition=False)
    assert decision.refused and "view_lateral" in codes(decision)


def test_child_is_flagged_not_refused() -> None:
    meta = StudyMetadata(modality="DX", view_position="AP", patient_age=6.5)
    decision = assess_image(make_image(frontal_phantom()), meta, acquisition=False)
    assert decision.outcome is ScopeOutcome.FLAGGED
    assert decision.reasons[0].values == {"PatientAge": 6.5}


def test_other_body_part_is_refused() -> None:
    meta = StudyMetadata(modality="DX", view_position="PA", body_part="HAND")
    assert "body_part_not_chest" in codes(
        assess_image(make_image(frontal_phantom()), meta, acquisition=False)
    )


def test_flat_underexposed_image_is_flagged_for_dynamic_range() -> None:
    flat = (0.4 + 0.1 * frontal_phantom()).astype(np.float32)
    meta = StudyMetadata(modality="DX", view_position="PA")
    decision = assess_image(make_image(flat), meta, acquisition=False)
    assert decision.outcome is ScopeOutcome.FLAGGED and "low_dynamic_range" in codes(decision)


def test_view_classifier_saying_lateral_refuses() -> None:
    class ViewHead:
        def predict_view(self, image):
            return {"PA": 0.1, "LATERAL": 0.9}

    decision = assess_image(
        make_image(frontal_phantom()), view_classifier=ViewHead(), acquisition=False
    )
    assert decision.refused and "view_head_lateral" in codes(decision)


def test_mahalanobis_scorer_flags_an_embedding_far_from_training() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (400, 16))
    scorer = MahalanobisScorer.fit(train, quantile=0.99)
    assert scorer.score(train[0]) < scorer.threshold
    far = np.full(16, 6.0)
    assert scorer.score(far) > scorer.threshold
    meta = StudyMetadata(modality="DX", view_position="PA")
    decision = assess_image(
        make_image(frontal_phantom()), meta, ood_scorer=scorer, embedding=far, acquisition=False
    )
    assert decision.flagged and codes(decision) == ["out_of_distribution"]
    restored = MahalanobisScorer.from_dict(scorer.to_dict())
    assert restored.score(far) == pytest.approx(scorer.score(far))


def test_mahalanobis_scorer_refuses_a_single_embedding() -> None:
    with pytest.raises(ValueError, match="N x D with N >= 2"):
        MahalanobisScorer.fit(np.zeros((1, 4)))


def test_study_gets_one_decision_per_image() -> None:
    assert len(assess_study(make_study(), acquisition=False)) == 1


def test_a_study_stands_or_falls_by_its_frontal_images() -> None:
    from radloop.safety import ScopeDecision, ScopeOutcome, ScopeReason, study_decision

    def decision(outcome: ScopeOutcome) -> ScopeDecision:
        reasons = () if outcome is ScopeOutcome.ACCEPTED else (
            ScopeReason("test", "a test reason", outcome),)  # fmt: skip
        return ScopeDecision.from_reasons(reasons)

    accepted, flagged, refused = (decision(o) for o in ScopeOutcome)
    assert study_decision([accepted, refused]) is accepted  # PA + lateral: in scope via the PA
    assert study_decision([accepted, flagged]) is flagged  # a flagged frontal flags the study
    assert study_decision([refused, refused]).refused  # type: ignore[union-attr]
    assert study_decision([]) is None
