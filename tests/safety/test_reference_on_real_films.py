"""The reference verifier on real films: silent unless its real-film domain admits a type,
and then it checks claims of that type only, from the lung-fields reading."""

from __future__ import annotations

from pathlib import Path

import pytest
from safety_builders import make_draft

from lungfieldskit import FixedReader, film, model_with_domain, two_lungs
from radloop.models.competence import REAL_FILMS
from radloop.models.reference import lungfields
from radloop.models.reference.lungfields import LungFields
from radloop.models.reference.realfilm import opacity_probability
from radloop.report import Finding, Presence, Verdict
from radloop.safety import check
from radloop.safety.verifiers import ReferenceVerifier
from radloop.study import Series, Study
from radloop.vocabulary import Side, Zone


def _right_lung_opaque(distance: float = 1.0) -> LungFields:
    return two_lungs(slice(0, 60), level=0.9, distance=distance)


def _verifier(tmp_path: Path, findings: list[str]) -> ReferenceVerifier:
    return ReferenceVerifier(model_with_domain(tmp_path / "model", findings, opacity_threshold=0.3))


def _real_film() -> Study:
    return Study("9.8.7", (Series("9.8.7.1", (film(4),)),))


def _draft() -> list[Finding]:
    return [
        Finding("consolidation", Presence.PRESENT, side=Side.RIGHT, zones=(Zone.RIGHT_LOWER,)),
        Finding("consolidation", Presence.PRESENT, side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
        Finding("pneumothorax", Presence.PRESENT, side=Side.LEFT),
    ]


def test_opacity_scores_map_the_domain_threshold_to_one_half() -> None:
    assert opacity_probability(0.3, 0.3) == 0.5
    assert opacity_probability(0.0, 0.3) == 0.0 and opacity_probability(1.0, 0.3) == 1.0
    assert opacity_probability(0.15, 0.3) == pytest.approx(0.25)
    assert opacity_probability(0.65, 0.3) == pytest.approx(0.75)
    assert opacity_probability(1.7, 0.3) == 1.0  # clipped


def test_with_lung_opacity_admitted_it_checks_opacity_claims_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = FixedReader(_right_lung_opaque())
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: reader)
    verifier = _verifier(tmp_path, ["lung_opacity"])
    study = _real_film()
    output = verifier.verify(study)
    assert set(output.presence) == {"lung_opacity"}
    assert output.presence["lung_opacity"] == pytest.approx(opacity_probability(0.9, 0.3))
    assert output.zones["lung_opacity"][Zone.RIGHT_LOWER] > 0.5
    assert output.zones["lung_opacity"][Zone.LEFT_LOWER] == 0.0
    assert output.embedding is None and output.cardiothoracic_ratio is None
    assert verifier.assess_domain(study, output).domain == REAL_FILMS

    checked = check(make_draft(_draft()), study, verifier)
    right, left, pneumothorax = checked.checks
    assert right.verdict is Verdict.SUPPORTED
    assert left.verdict is Verdict.CONTRADICTED and "wrong side" in left.reasons[0]
    assert pneumothorax.verdict is Verdict.NOT_CHECKED


def test_without_an_admitted_type_or_outside_the_domain_it_stays_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        lungfields, "load_lung_fields", lambda model_dir=None: FixedReader(_right_lung_opaque())
    )
    closed = _verifier(tmp_path / "closed", [])
    checks = check(make_draft(_draft()), _real_film(), closed).checks
    assert {c.verdict for c in checks} == {Verdict.NOT_CHECKED}
    assert closed.verify(_real_film()).presence.keys().isdisjoint({"lung_opacity"})

    far = FixedReader(_right_lung_opaque(distance=9.0))  # the lung-fields network's OOD says no
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: far)
    admitted = _verifier(tmp_path / "far", ["lung_opacity"])
    checks = check(make_draft(_draft()), _real_film(), admitted).checks
    assert {c.verdict for c in checks} == {Verdict.NOT_CHECKED}
