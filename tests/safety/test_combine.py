"""The combiner of every evidence source: a missing source is missing, never a default value."""

from __future__ import annotations

import numpy as np
import pytest

from radloop.safety import Calibrator, ClaimSignals, LabelledClaim, fit_calibrator
from radloop.safety.combine import (
    SOURCES,
    EvidenceCalibrator,
    design_row,
    fit_evidence_combiner,
    pattern_of,
    source_lines,
    source_readings,
)
from radloop.stats import expected_calibration_error


def _asked_or_not(n: int = 2000, seed: int = 0) -> list[LabelledClaim]:
    """Claims whose ask-back answer always reads 0.5, but claims that were asked are right 90 %
    of the time and the others 60 %: only the source's presence carries information."""
    rng = np.random.default_rng(seed)
    claims = []
    for i in range(n):
        asked = bool(rng.random() < 0.5)
        right = bool(rng.random() < (0.9 if asked else 0.6))
        signals = ClaimSignals(True, p_ask_yes=0.5 if asked else None)
        claims.append(LabelledClaim(f"s{i}", "pleural_effusion", signals, present=right))
    return claims


def test_a_missing_source_is_not_read_as_an_uninformative_reading() -> None:
    combiner = fit_evidence_combiner(_asked_or_not(), domain="real-frontal")
    asked = combiner.presence_probability(ClaimSignals(True, p_ask_yes=0.5))
    missing = combiner.presence_probability(ClaimSignals(True))
    assert asked == pytest.approx(0.9, abs=0.04)
    assert missing == pytest.approx(0.6, abs=0.04)


def test_the_design_row_leaves_a_missing_source_out_entirely() -> None:
    row = design_row(ClaimSignals(True, verifier_probability=0.8, contradicted=True))
    assert row[0] == pytest.approx(np.log(4.0)) and row[1] == 1.0
    assert not row[2 : 2 * len(SOURCES)].any()  # every other source: neither value nor flag
    assert row[-1] == 1.0


def test_readings_are_turned_toward_the_claim() -> None:
    denied = ClaimSignals(False, verifier_probability=0.9, p_ask_yes=0.2, p_second_opinion=0.7,
                          p_ask_side=0.9)  # fmt: skip
    readings = source_readings(denied)
    assert readings["verifier"] == pytest.approx(0.1)
    assert readings["ask_yes"] == pytest.approx(0.8)
    assert readings["second_opinion"] == pytest.approx(0.3)
    assert readings["ask_side"] is None  # a side question is about a stated finding only
    assert pattern_of(denied) == "verifier+ask_yes+second_opinion"
    assert pattern_of(ClaimSignals(True)) == "none"


def test_the_reader_sees_one_line_per_source() -> None:
    lines = source_lines(ClaimSignals(True, verifier_probability=0.83, sample_agreement=0.6))
    assert len(lines) == len(SOURCES)
    assert lines[0] == "verifier: 0.83"
    assert "sampled drafts agreeing: 0.60" in lines
    assert "second opinion: missing" in lines


def _two_findings(n: int, seed: int) -> list[LabelledClaim]:
    """The second opinion is reliable about effusion and near chance about pneumothorax."""
    rng = np.random.default_rng(seed)
    claims = []
    for i in range(n):
        for code, sharpness in (("pleural_effusion", 3.0), ("pneumothorax", 0.2)):
            present = bool(rng.random() < 0.4)
            z = rng.normal(sharpness if present else -sharpness, 1.0)
            p = float(1 / (1 + np.exp(-z)))
            sampled = float(rng.choice([0.2, 0.4, 0.6, 0.8, 1.0])) if rng.random() < 0.7 else None
            signals = ClaimSignals(True, p_second_opinion=p, sample_agreement=sampled)
            claims.append(LabelledClaim(f"s{i}", code, signals, present))
    return claims


def test_each_finding_type_gets_its_own_model() -> None:
    combiner = fit_evidence_combiner(_two_findings(600, 1), domain="real-frontal")
    assert set(combiner.by_finding) == {"pleural_effusion", "pneumothorax"}
    strong = ClaimSignals(True, p_second_opinion=0.95, code="pleural_effusion")
    weak = ClaimSignals(True, p_second_opinion=0.95, code="pneumothorax")
    assert combiner.presence_probability(strong) > 0.9
    assert combiner.presence_probability(weak) < 0.8
    assert combiner.model_for("pneumothorax").n == 600
    assert sum(combiner.pooled.patterns.values()) == 1200


def test_fitted_combination_is_calibrated_on_new_claims_and_round_trips(tmp_path) -> None:
    result = fit_calibrator(_two_findings(800, 2), domain="real-frontal")
    assert isinstance(result.calibrator, EvidenceCalibrator)
    fresh = _two_findings(500, 3)
    signals = [
        ClaimSignals(True, code=c.code, sample_agreement=c.signals.sample_agreement,
                     p_second_opinion=c.signals.p_second_opinion)
        for c in fresh
    ]  # fmt: skip
    present = np.array([c.present for c in fresh], dtype=float)
    p = result.calibrator.presence_probabilities(signals)
    assert expected_calibration_error(p, present) < 0.05
    raw = np.array([s.p_second_opinion for s in signals], dtype=float)
    assert expected_calibration_error(p, present) < expected_calibration_error(raw, present)
    loaded = Calibrator.load(result.calibrator.save(tmp_path / "calibration.json"))
    assert isinstance(loaded, EvidenceCalibrator) and loaded.domain == "real-frontal"
    assert np.allclose(loaded.presence_probabilities(signals), p)


def test_a_file_naming_other_sources_is_refused(tmp_path) -> None:
    from radloop.safety.errors import CalibrationDataError

    data = fit_evidence_combiner(_asked_or_not(200), domain="real-frontal").to_dict()
    data["features"] = ["verifier"]
    with pytest.raises(CalibrationDataError, match="refit with"):
        Calibrator.from_dict(data)


def test_too_few_claims_fit_nothing() -> None:
    from radloop.safety.errors import CalibrationDataError

    with pytest.raises(CalibrationDataError, match="at least 10 claims"):
        fit_evidence_combiner(_asked_or_not(5), domain="real-frontal")
