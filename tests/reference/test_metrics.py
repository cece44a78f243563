"""Wilson score intervals for the benchmarks' proportions."""

from __future__ import annotations

import math

import pytest

from radloop.models.reference.metrics import counted_share, wilson_interval


@pytest.mark.parametrize(("hits", "n"), [(5, 10), (0, 10), (33, 35), (230, 242), (31, 31)])
def test_wilson_interval_matches_scipy(hits: int, n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    reference = stats.binomtest(hits, n).proportion_ci(method="wilson")
    low, high = wilson_interval(hits, n)
    assert low == pytest.approx(reference.low, abs=1e-8)
    assert high == pytest.approx(reference.high, abs=1e-8)
    assert low <= hits / n <= high


def test_wilson_interval_known_values_and_bad_counts() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="hits=11, n=10"):
        wilson_interval(11, 10)


def test_counted_share_reports_count_total_and_rounded_interval() -> None:
    assert counted_share(83, 97) == {"hits": 83, "n": 97, "ci95": [0.7722, 0.912]}
