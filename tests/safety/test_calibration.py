"""Calibrated confidence: combiner, temperature, isotonic, ECE and Brier, the data format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from radloop.safety import (
    CalibrationDataError,
    Calibrator,
    ClaimSignals,
    LabelledClaim,
    brier_score,
    expected_calibration_error,
    fit_calibrator,
    read_labelled_claims,
    save_reliability_diagram,
    write_labelled_claims,
)
from radloop.safety.calibration import FEATURES, fit_omission_thresholds
from radloop.safety.combine import EvidenceCalibrator


def miscalibrated_claims(n_studies: int = 300, seed: int = 0) -> list[LabelledClaim]:
    """Claims whose verifier is overconfident: true log-odds are a third of the stated ones."""
    rng = np.random.default_rng(seed)
    claims = []
    for study in range(n_studies):
        for code in ("pleural_effusion", "pneumothorax", "nodule"):
            stated = rng.normal(0, 4)
            present = rng.random() < 1 / (1 + np.exp(-stated / 3))
            p = float(1 / (1 + np.exp(-stated)))
            claims.append(LabelledClaim(f"s{study}", code, ClaimSignals(True, p), bool(present)))
    return claims


def test_ece_of_perfectly_calibrated_scores_is_near_zero_and_of_overconfident_ones_is_not() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(20_000)
    y = rng.random(20_000) < p
    assert expected_calibration_error(p, y) < 0.02
    assert expected_calibration_error(np.where(p > 0.5, 0.99, 0.01), y) > 0.2


def test_brier_score_is_zero_for_certain_correct_predictions() -> None:
    assert brier_score([1.0, 0.0], [1, 0]) == 0.0
    assert brier_score([0.5, 0.5], [1, 0]) == 0.25


def test_isotonic_calibration_lowers_ece_on_miscalibrated_scores() -> None:
    result = fit_calibrator(miscalibrated_claims())
    before, after = result.metrics["identity"], result.metrics["isotonic"]
    assert after["ece"] < before["ece"] / 2
    assert after["brier"] < before["brier"]


def test_temperature_scaling_lowers_ece_on_overconfident_scores() -> None:
    result = fit_calibrator(miscalibrated_claims())
    assert result.metrics["temperature"]["ece"] < result.metrics["identity"]["ece"] / 2


def test_negative_claim_probability_is_the_probability_of_presence() -> None:
    calibrator = Calibrator()
    assert calibrator.presence_probability(ClaimSignals(False, 0.9)) == pytest.approx(0.9)
    assert calibrator.presence_probability(ClaimSignals(True, 0.9)) == pytest.approx(0.9)


def test_a_version_3_combiner_still_applies_as_it_was_fitted() -> None:
    # Files of versions 1-3 read a missing signal as 0; refitting replaces them.
    calibrator = Calibrator(weights=(1.0, 2.0, 0.5, -3.0))
    bare = calibrator.presence_probability(ClaimSignals(True, 0.7))
    full = calibrator.presence_probability(ClaimSignals(True, 0.7, 1.0, 0.0, False))
    assert bare == pytest.approx(full)


def test_a_contradicted_detail_lowers_the_probability_the_claim_is_right() -> None:
    calibrator = Calibrator(weights=(1.0, 0.0, 0.0, -3.0))
    plain = calibrator.presence_probability(ClaimSignals(True, 0.9))
    objected = calibrator.presence_probability(ClaimSignals(True, 0.9, contradicted=True))
    assert objected < plain / 2


def test_the_fitted_combiner_learns_that_contradicted_claims_are_wrong() -> None:
    # Verifier probability says nothing here; only the contradiction flag separates the claims.
    rng = np.random.default_rng(3)
    claims = []
    for i in range(400):
        wrong = bool(rng.random() < 0.3)
        signals = ClaimSignals(True, float(rng.uniform(0.6, 0.95)), contradicted=wrong)
        claims.append(LabelledClaim(f"s{i // 4}", "pneumothorax", signals, present=not wrong))
    fitted = fit_calibrator(claims, seed=1)
    combiner = fitted.candidates["evidence"]
    assert isinstance(combiner, EvidenceCalibrator)
    assert combiner.model_for("pneumothorax").weights[-1] < -1.0  # the contradiction term
    assert fitted.metrics["temperature"]["ece"] < fitted.metrics["identity"]["ece"]


def test_version_1_calibration_files_still_load() -> None:
    data = Calibrator().to_dict() | {"version": 1, "features": list(FEATURES[:3])}
    data["combiner"] = {"weights": [1.5, 0.0, 0.0], "bias": 0.1}
    loaded = Calibrator.from_dict(data)
    assert loaded.weights == (1.5, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="4 weights"):
        Calibrator(weights=(1.0, 0.0, 0.0))  # type: ignore[arg-type]


def test_calibrator_round_trips_through_json_without_pickle(tmp_path) -> None:
    fitted = fit_calibrator(miscalibrated_claims()).calibrator
    path = fitted.save(tmp_path / "calibration.json")
    loaded = Calibrator.load(path)
    signals = [ClaimSignals(True, p) for p in (0.1, 0.5, 0.97)]
    assert np.allclose(
        loaded.presence_probabilities(signals), fitted.presence_probabilities(signals)
    )
    assert json.loads(path.read_text())["format"] == "radloop-calibration"


def test_calibration_file_of_another_format_is_refused(tmp_path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(CalibrationDataError, match='expected a JSON object with "format"'):
        Calibrator.load(path)


def test_labelled_claims_round_trip_through_csv(tmp_path) -> None:
    claims = miscalibrated_claims(5)
    path = write_labelled_claims(tmp_path / "claims.csv", claims)
    assert read_labelled_claims(tmp_path) == claims
    assert read_labelled_claims(path) == claims


def test_labelled_claims_are_read_from_jsonl_with_missing_signals(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"study_id": "s1", "code": "pneumothorax", "claim": "absent", "label": 0, '
        '"verifier_probability": 0.1}\n'
    )
    (claim,) = read_labelled_claims(tmp_path)
    assert not claim.signals.positive and claim.signals.sample_agreement is None


def test_bad_calibration_row_names_file_line_and_rule(tmp_path) -> None:
    (tmp_path / "bad.csv").write_text(
        "study_id,code,claim,verifier_probability,label\ns1,pneumothorax,present,1.4,1\n"
    )
    with pytest.raises(CalibrationDataError, match=r"bad.csv:2: .*must be in \[0, 1\]"):
        read_labelled_claims(tmp_path)


def test_too_few_claims_to_calibrate_are_refused_with_the_fix() -> None:
    with pytest.raises(CalibrationDataError, match="label more studies"):
        fit_calibrator(miscalibrated_claims(3))


def test_reliability_diagram_is_a_png(tmp_path) -> None:
    p = np.linspace(0, 1, 200)
    path = save_reliability_diagram(tmp_path / "r.png", [("before", p, p > 0.5)])
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100


def calibrated_claims(n_studies: int = 300, seed: int = 2) -> list[LabelledClaim]:
    """Claims whose verifier probability is already calibrated: present ~ Bernoulli(p)."""
    rng = np.random.default_rng(seed)
    claims = []
    for study in range(n_studies):
        for code in ("pleural_effusion", "pneumothorax", "nodule"):
            p = float(rng.random())
            present = bool(rng.random() < p)
            claims.append(LabelledClaim(f"s{study}", code, ClaimSignals(True, p), present))
    return claims


@pytest.mark.parametrize("make", [miscalibrated_claims, calibrated_claims])
def test_the_chosen_map_has_the_lowest_held_out_ece_raw_signals_included(make) -> None:
    result = fit_calibrator(make())
    best = min(result.metrics, key=lambda name: result.metrics[name]["ece"])
    assert result.calibrator.method == best
    assert result.metrics[best]["ece"] <= result.metrics["identity"]["ece"]


def denials(values: list[float], code: str = "pneumothorax", present: bool = False) -> list:
    return [
        LabelledClaim(f"d{i}", code, ClaimSignals(False, p), present) for i, p in enumerate(values)
    ]


def test_omission_threshold_lets_at_most_the_false_alarm_share_of_absent_findings_through() -> None:
    absent = [i / 1000 for i in range(100)]  # 0.000 .. 0.099
    thresholds = fit_omission_thresholds(denials(absent), false_alarm=0.02)
    t = thresholds["pneumothorax"]
    assert 0.097 < t <= 0.098  # just above the third highest: two of 100 reach it
    assert sum(p >= t for p in absent) == 2
    assert fit_omission_thresholds(denials(absent), false_alarm=0.0)["pneumothorax"] > 0.099


def test_omission_thresholds_only_for_critical_findings_with_enough_denials() -> None:
    claims = [
        *denials([0.9] * 50),  # never above the verifier's default for critical findings
        *denials([0.01] * 50, code="nodule"),  # not a critical finding
        *denials([0.01] * 5, code="pleural_effusion"),  # too few to fit
    ]
    assert fit_omission_thresholds(claims) == {"pneumothorax": 0.5}
    with pytest.raises(ValueError, match="false_alarm"):
        fit_omission_thresholds(claims, false_alarm=1.0)
    with pytest.raises(ValueError, match="recall"):
        fit_omission_thresholds(claims, recall=0.0)


def test_omission_threshold_rises_as_far_as_the_recall_target_on_present_findings_allows() -> None:
    absent = denials([i / 1000 for i in range(100)])  # false-alarm limit alone: ~0.099
    seen = [  # the verifier on studies with the finding: a correct claim, a false negation
        *[LabelledClaim(f"p{i}", "pneumothorax", ClaimSignals(True, p), True)
          for i, p in enumerate([0.3, 0.35, *[0.9] * 17])],
        LabelledClaim("n", "pneumothorax", ClaimSignals(False, 0.2), True),
    ]  # fmt: skip
    t = fit_omission_thresholds([*absent, *seen], recall=0.95)["pneumothorax"]
    assert t == 0.3  # 19 of 20 present at or above 0.3; the one at 0.2 may be missed
    assert fit_omission_thresholds([*absent, *seen], recall=1.0)["pneumothorax"] == 0.2
    few = fit_omission_thresholds([*absent, *seen[:5]], recall=0.95)["pneumothorax"]
    assert 0.098 < few < 0.1  # under 10 present findings: the false-alarm limit alone


def test_fitted_calibrator_carries_omission_thresholds_through_json(tmp_path) -> None:
    claims = [*miscalibrated_claims(), *denials([i / 500 for i in range(100)])]
    fitted = fit_calibrator(claims).calibrator
    assert set(fitted.omission_thresholds) == {"pneumothorax"}
    loaded = Calibrator.load(fitted.save(tmp_path / "calibration.json"))
    assert loaded.omission_thresholds == fitted.omission_thresholds
    assert fit_calibrator(claims, omission_false_alarm=None).calibrator.omission_thresholds == {}


def test_version_2_calibration_files_load_without_omission_thresholds() -> None:
    data = Calibrator().to_dict() | {"version": 2}
    del data["omission_thresholds"]
    assert Calibrator.from_dict(data).omission_thresholds == {}
