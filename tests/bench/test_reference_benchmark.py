"""The reference benchmark: how a truth change is scored, and a tiny run end to end."""

from __future__ import annotations

import pytest

from radloop.assist.types import Change
from radloop.lab.bench.reference import _predicted_direction, format_benchmark, run_benchmark
from radloop.report import Change as Direction
from radloop.vocabulary import Side


def test_a_truth_change_is_scored_by_the_change_of_the_same_finding_on_its_side() -> None:
    changes = [
        Change("rib_fracture", Direction.NEW, "", Side.RIGHT),
        Change("rib_fracture", Direction.RESOLVED, "", Side.LEFT),
        Change("cardiomegaly", Direction.STABLE, "", None),
    ]
    left = {"code": "rib_fracture", "side": "left", "change": "resolved"}
    assert _predicted_direction(changes, left) == "resolved"
    right = {"code": "rib_fracture", "side": "right", "change": "new"}
    assert _predicted_direction(changes, right) == "new"
    # No change on the truth's side (or no side): the first change of that finding.
    bilateral = {"code": "rib_fracture", "side": "bilateral", "change": "stable"}
    assert _predicted_direction(changes, bilateral) == "new"
    assert _predicted_direction(changes, {"code": "cardiomegaly", "change": "stable"}) == "stable"
    # Nothing reported for the finding: no direction, a miss whatever the truth.
    assert _predicted_direction(changes, {"code": "nodule", "side": "left"}) is None


def test_a_tiny_reference_benchmark_runs_end_to_end() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("scipy")
    result = run_benchmark(n=2, pairs=2, workers=1)
    assert result["n_studies"] == 2 and result["n_pairs"] == 2
    assert result["changes"] >= 2  # every pair has at least one finding that changed
    accuracy = result["change_direction_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    assert abs(accuracy * result["changes"] - round(accuracy * result["changes"])) < 1e-3
    assert set(result["change_by_direction"]) <= {"new", "increased", "decreased", "stable",
                                                  "resolved"}  # fmt: skip
    assert set(result["bars"]) >= {"macro_auroc", "change_direction_accuracy"}
    changes = result["intervals"]["change_direction_accuracy"]
    assert changes["n"] == result["changes"]
    low, high = changes["ci95"]
    assert low <= accuracy <= high and high - low > 0.2  # a handful of changes pins down little
    assert result["vqa_questions"] > 0 and "vqa_accuracy" in result["intervals"]
    assert result["draft_latency_p50_ms"] > 0
    table = format_benchmark(result)
    assert "change" in table and f"95 % interval {low}-{high}" in table
