"""Drift detection: KS and chi-square tests per window, Bonferroni, persistence, alerts."""

from __future__ import annotations

import pytest
from monitor_builders import random_cases

from radloop.monitor.aggregate import CaseTable
from radloop.monitor.drift import DriftConfig, detect_drift

CONFIG = DriftConfig(reference_size=200, window_size=100, step=50)


def test_no_drift_raises_no_alert() -> None:
    report = detect_drift(CaseTable.build(random_cases(800, seed=2)), CONFIG)
    assert len(report.windows) == 11
    assert report.alerts == [] and report.active == []
    names = {t.name for t in report.windows[0].tests}
    assert {"image mean", "ood score", "rate pleural_effusion", "significantly revised"} <= names


def test_an_input_shift_is_alerted_soon_after_it_starts_and_stays_active() -> None:
    cases = random_cases(500, seed=5) + random_cases(300, seed=6, start_index=500,
                                                      stats_shift=0.1)  # fmt: skip
    report = detect_drift(CaseTable.build(cases), CONFIG)
    assert len(report.alerts) == 1
    alert = report.alerts[0]
    assert alert.active and "input" in alert.kinds
    assert "image mean" in alert.tests and "ood score" in alert.tests
    assert 500 < alert.raised_at <= 700
    # Windows before the shift stay quiet.
    assert not any(w.alarm for w in report.windows if w.end <= 500)


def test_an_output_shift_is_caught_by_the_finding_rate_test() -> None:
    cases = random_cases(500, seed=7, rate=0.1) + random_cases(
        300, seed=8, start_index=500, rate=0.45
    )
    report = detect_drift(CaseTable.build(cases), CONFIG)
    assert report.active and "rate pleural_effusion" in report.active[0].tests
    assert report.active[0].kinds == ("output",) or "output" in report.active[0].kinds


def test_a_single_alarming_window_does_not_raise_an_alert() -> None:
    # 100 shifted cases in the middle: at most two overlapping windows alarm, and with
    # persistence 3 nothing is raised.
    cases = (
        random_cases(400, seed=9)
        + random_cases(60, seed=10, start_index=400, stats_shift=0.2)
        + random_cases(340, seed=11, start_index=460)
    )
    strict = DriftConfig(reference_size=200, window_size=100, step=50, persistence=3)
    report = detect_drift(CaseTable.build(cases), strict)
    assert any(w.alarm for w in report.windows)
    assert report.alerts == []


def test_an_alert_that_ended_is_not_active() -> None:
    cases = (
        random_cases(400, seed=12)
        + random_cases(200, seed=13, start_index=400, stats_shift=0.2)
        + random_cases(400, seed=14, start_index=600)
    )
    report = detect_drift(CaseTable.build(cases), CONFIG)
    assert len(report.alerts) == 1 and not report.alerts[0].active and report.active == []


def test_bonferroni_threshold_is_alpha_over_the_number_of_tests() -> None:
    report = detect_drift(CaseTable.build(random_cases(400, seed=3)), CONFIG)
    window = report.windows[0]
    assert window.threshold == pytest.approx(CONFIG.alpha / len(window.tests))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match='"alpha" must be in'):
        DriftConfig(alpha=1.5)
    with pytest.raises(ValueError, match='"window_size" must be at least 1'):
        DriftConfig(window_size=0)


def test_too_few_cases_give_no_windows() -> None:
    report = detect_drift(CaseTable.build(random_cases(150, seed=1)), CONFIG)
    assert report.windows == [] and report.alerts == []


def test_ks_statistic_and_p_value_match_scipy() -> None:
    import numpy as np
    from scipy import stats

    from radloop.monitor.drift import _ks_tests, ks_statistic

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 300), rng.normal(0.3, 1, 200)])
    values[rng.integers(0, 500, 10)] = np.nan  # missing image statistics are skipped
    values[:40] = np.round(values[:40], 1)  # ties
    windows = [slice(300, 400), slice(350, 450), slice(400, 500)]
    tests = _ks_tests("x", "input", values, slice(0, 300), windows)
    for test, win in zip(tests, windows, strict=True):
        ref, w = values[:300], values[win]
        expected = stats.ks_2samp(ref[np.isfinite(ref)], w[np.isfinite(w)], method="asymp")
        assert test is not None
        assert test.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert test.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert ks_statistic(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0


def test_infinite_odds_ratios_are_written_as_null() -> None:
    import json

    from radloop.monitor.drift import _rate

    test = _rate("rate mass", "output", 0, 400, 6, 100)
    flipped = _rate("rate mass", "output", 6, 100, 0, 400)
    assert (test.method, flipped.method) == ("fisher", "fisher")
    assert test.statistic == 0.0 and flipped.statistic == float("inf")
    assert flipped.to_dict()["statistic"] is None
    for t in (test, flipped):
        json.loads(json.dumps(t.to_dict(), allow_nan=False))
