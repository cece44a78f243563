"""radloop.stats: each figure checked against a reference implementation or by hand."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import brier_score_loss, roc_auc_score

from radloop import stats


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.random(200) < 0.3
        scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
        assert stats.auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), 1e-12)


def test_auroc_of_one_class_is_nan() -> None:
    assert math.isnan(stats.auroc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(stats.auroc([], []))


def test_weighted_auroc_counts_each_weight_as_copies_of_a_case() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(60) < 0.5
    scores = np.round(rng.random(60), 1)
    weights = stats.bootstrap_weights(60, resamples=5, seed=3)
    found = stats.weighted_auroc(weights, labels, scores)
    for row, value in zip(weights, found, strict=True):
        copies = row.astype(int)
        expected = roc_auc_score(np.repeat(labels, copies), np.repeat(scores, copies))
        assert value == pytest.approx(expected, 1e-12)


@pytest.mark.parametrize(("hits", "n"), [(0, 10), (5, 10), (33, 35), (230, 242), (31, 31)])
def test_wilson_interval_matches_scipy(hits: int, n: int) -> None:
    reference = binomtest(hits, n).proportion_ci(method="wilson")
    low, high = stats.wilson_interval(hits, n)
    assert low == pytest.approx(reference.low, abs=1e-12)
    assert high == pytest.approx(reference.high, abs=1e-12)


def test_wilson_intervals_of_arrays_match_each_proportion_alone() -> None:
    hits, totals = np.array([0, 3, 7, 0]), np.array([10, 10, 7, 0])
    low, high = stats.wilson_intervals(hits, totals)
    for k, n, lo, hi in zip(hits, totals, low, high, strict=True):
        alone = stats.wilson_interval(int(k), int(n))
        assert (lo, hi) == pytest.approx(alone, nan_ok=True)
    assert low[0] == 0.0 and high[2] == 1.0 and np.isnan(low[3]) and np.isnan(high[3])


def test_wilson_interval_refuses_more_hits_than_trials() -> None:
    with pytest.raises(ValueError, match="hits=11, n=10"):
        stats.wilson_interval(11, 10)


def test_counted_share_reports_count_total_and_rounded_interval() -> None:
    assert stats.counted_share(83, 97) == {"hits": 83, "n": 97, "ci95": [0.7722, 0.912]}


def test_ece_of_a_hand_computed_example() -> None:
    # Bins of width 1/15: 0.10 and 0.12 share bin 1 (mean 0.11, frequency 0.5, gap 0.39);
    # 0.90 (bin 13) and 0.95 (bin 14) are alone, with gaps 0.10 and 0.05.
    probabilities, labels = [0.10, 0.12, 0.90, 0.95], [0, 1, 1, 1]
    expected = (2 * 0.39 + 0.10 + 0.05) / 4
    assert stats.expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    bins = stats.reliability_bins(probabilities, labels)
    assert len(bins) == stats.ECE_BINS == 15
    assert [b.count for b in bins if b.count] == [2, 1, 1]


def test_a_probability_of_one_falls_in_the_last_bin() -> None:
    assert stats.reliability_bins([1.0], [1])[-1].count == 1
    assert stats.expected_calibration_error([1.0], [1]) == 0.0


def test_brier_score_matches_sklearn() -> None:
    probabilities, labels = [0.1, 0.4, 0.8, 0.65], [0, 1, 1, 0]
    assert stats.brier_score(probabilities, labels) == pytest.approx(
        brier_score_loss(labels, probabilities)
    )


def test_calibration_figures_refuse_probabilities_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        stats.brier_score([1.2], [1])
    with pytest.raises(ValueError, match="one equal length"):
        stats.expected_calibration_error([0.5, 0.5], [1])


def test_sigmoid_keeps_the_input_type_and_never_overflows() -> None:
    x32 = np.array([-1000.0, 0.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise"):
        p = stats.sigmoid(x32)
    assert p.dtype == np.float32 and p[1] == 0.5 and p[0] < 1e-25 and p[2] == 1.0
    x = np.linspace(-8, 8, 33)
    assert np.array_equal(stats.sigmoid(x, limit=None), 1.0 / (1.0 + np.exp(-x)))


def test_bootstrap_weights_row_zero_is_the_sample_and_rows_are_resamples() -> None:
    weights = stats.bootstrap_weights(50, resamples=200, seed=7)
    assert weights.shape == (201, 50) and np.all(weights[0] == 1)
    assert np.all(weights.sum(axis=1) == 50)
    assert np.array_equal(weights, stats.bootstrap_weights(50, resamples=200, seed=7))


def test_bootstrap_interval_is_the_central_95_percent_of_the_resamples() -> None:
    values = np.concatenate([[0.5], np.linspace(0.0, 1.0, 1001)])
    found = stats.bootstrap_interval(values)
    assert found == pytest.approx({"value": 0.5, "low": 0.025, "high": 0.975})
    assert stats.bootstrap_interval(np.array([np.nan, 0.1]))["value"] is None


def test_stats_imports_only_numpy_scipy_and_the_standard_library() -> None:
    source = Path(stats.__file__).read_text(encoding="utf-8")
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
    allowed = {"numpy", "scipy", *sys.stdlib_module_names}
    assert roots <= allowed, sorted(roots - allowed)
