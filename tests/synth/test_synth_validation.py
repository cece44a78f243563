"""The truth checks of the issue's bars, on a small sample (the 500-study run is a benchmark)."""

from __future__ import annotations

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.benchmark import format_validation, validate_truth


def test_truth_of_random_studies_is_consistent(anatomy: Anatomy) -> None:
    result = validate_truth(16, 5, size=256, workers=2)
    assert result.passed, format_validation(result)
    assert result.nodule_max_error_mm <= 1.0
