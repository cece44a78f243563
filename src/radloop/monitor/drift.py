"""Drift of inputs, outputs and agreement against a reference window, and the alerts it raises.

The first ``reference_size`` cases (in the order received), or those received before a given
time, are the reference. After it, windows of ``window_size`` cases every ``step`` cases are
each compared with the reference by a family of tests:

- input drift: two-sample Kolmogorov–Smirnov tests of each image statistic (mean, standard
  deviation, 5th and 95th percentile of the frontal image scaled 0..1) and of the scope
  guard's out-of-distribution score;
- output drift: for each finding, the share of drafts stating it (chi-square test of the 2 x 2
  table with Yates' correction; Fisher's exact test when an expected count is under 5);
- agreement drift: the share of cases significantly revised by the reader (same test).

Many windows times many tests would raise false alarms all the time, so a window alarms only
when a test's p-value is under ``alpha / m`` (Bonferroni over the window's ``m`` tests: the
window's family-wise error is at most ``alpha`` whatever the tests' dependence), and an alert is
raised only after ``persistence`` consecutive alarming windows. An alert stays active while its
windows keep alarming; ``radloop monitor check`` exits 1 while one is active.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.monitor.aggregate import CaseTable

__all__ = [
    "IMAGE_STATS",
    "DriftAlert",
    "DriftConfig",
    "DriftReport",
    "DriftTest",
    "DriftWindow",
    "detect_drift",
]

IMAGE_STATS = ("mean", "std", "p05", "p95")
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DriftConfig:
    """Settings of drift detection (defaults meet the bars of docs/benchmarks.md, "monitor")."""

    reference_size: int = 400
    window_size: int = 100
    step: int = 50
    alpha: float = 0.001
    persistence: int = 2
    min_positives: int = 5
    reference_until: datetime.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("reference_size", "window_size", "step", "persistence"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f'Argument "{name}" must be at least 1, got {getattr(self, name)}.'
                )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f'Argument "alpha" must be in (0, 1), got {self.alpha}.')

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_size": self.reference_size,
            "window_size": self.window_size,
            "step": self.step,
            "alpha": self.alpha,
            "persistence": self.persistence,
            "min_positives": self.min_positives,
            "reference_until": None if self.reference_until is None else
            self.reference_until.isoformat(),
        }  # fmt: skip


@dataclass(frozen=True)
class DriftTest:
    """One test of one window against the reference."""

    name: str
    kind: str  # input | output | agreement
    method: str  # ks | chi2 | fisher
    statistic: float
    p_value: float
    reference_value: float
    window_value: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            # Fisher's odds ratio is infinite when a cell is empty; JSON has no infinity.
            "statistic": round(self.statistic, 6) if math.isfinite(self.statistic) else None,
            "p_value": float(f"{self.p_value:.6g}"),
            "reference_value": round(self.reference_value, 6),
            "window_value": round(self.window_value, 6),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class DriftWindow:
    """A window of cases ``[start, end)`` in received order, and its tests."""

    start: int
    end: int
    first_received: str
    last_received: str
    threshold: float  # the per-test p-value threshold: alpha / number of tests
    tests: tuple[DriftTest, ...]

    @property
    def alarm(self) -> bool:
        return any(t.significant for t in self.tests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "first_received": self.first_received,
            "last_received": self.last_received,
            "threshold": float(f"{self.threshold:.6g}"),
            "alarm": self.alarm,
            "tests": [t.to_dict() for t in self.tests],
        }


@dataclass(frozen=True)
class DriftAlert:
    """Drift that persisted: when it was raised, which tests, and whether it is still on."""

    raised_at: int  # index of the case that completed the raising window (its end)
    raised_time: str
    first_window: int  # index into DriftReport.windows
    last_window: int
    kinds: tuple[str, ...]
    tests: tuple[str, ...]
    active: bool

    @property
    def message(self) -> str:
        state = "active" if self.active else "ended"
        return (
            f"{'/'.join(self.kinds)} drift ({state}) raised at case {self.raised_at} "
            f"({self.raised_time}): {', '.join(self.tests[:6])}"
            + (" …" if len(self.tests) > 6 else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "raised_at": self.raised_at,
            "raised_time": self.raised_time,
            "first_window": self.first_window,
            "last_window": self.last_window,
            "kinds": list(self.kinds),
            "tests": list(self.tests),
            "active": self.active,
            "message": self.message,
        }


@dataclass(frozen=True)
class DriftReport:
    """The reference, every window's tests and the alerts."""

    config: DriftConfig
    n: int
    reference: tuple[int, int]
    windows: list[DriftWindow]
    alerts: list[DriftAlert] = field(default_factory=list)

    @property
    def active(self) -> list[DriftAlert]:
        return [a for a in self.alerts if a.active]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "n": self.n,
            "reference": list(self.reference),
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
            "active_alerts": len(self.active),
        }


def ks_statistic(reference: F64, window: F64) -> float:
    """The two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
    distribution functions (equal to ``scipy.stats.ks_2samp(...).statistic``)."""
    ref, win = np.sort(reference), np.sort(window)
    points = np.concatenate([ref, win])
    gap = (
        np.searchsorted(ref, points, side="right") / ref.size
        - np.searchsorted(win, points, side="right") / win.size
    )
    return float(np.max(np.abs(gap)))


def _ks_tests(
    name: str, kind: str, values: F64, ref: slice, windows: Sequence[slice]
) -> list[DriftTest | None]:
    """One KS test per window; p-values from the asymptotic-in-effective-n distribution of
    ``ks_2samp(method="asymp")``, computed for all windows at once."""
    from scipy import stats

    reference = values[ref][np.isfinite(values[ref])]
    out: list[DriftTest | None] = [None] * len(windows)
    if reference.size < 2:
        return out
    stats_, sizes, index = [], [], []
    for i, win in enumerate(windows):
        window = values[win][np.isfinite(values[win])]
        if window.size < 2:
            continue
        stats_.append(ks_statistic(reference, window))
        m, n = max(reference.size, window.size), min(reference.size, window.size)
        sizes.append(np.round(m * n / (m + n)))
        index.append((i, float(np.median(window))))
    if not stats_:
        return out
    p_values = np.clip(stats.kstwo.sf(np.array(stats_), np.array(sizes)), 0.0, 1.0)
    median = float(np.median(reference))
    for (i, win_median), d, p in zip(index, stats_, p_values, strict=True):
        out[i] = DriftTest(name, kind, "ks", d, float(p), median, win_median, False)
    return out


@functools.lru_cache(maxsize=65536)
def _rate_test(ref_k: int, ref_n: int, win_k: int, win_n: int) -> tuple[str, float, float]:
    """(method, statistic, p) comparing two proportions; cached, since a code's reference
    count is fixed and its window count takes few values."""
    from scipy import stats

    table = np.array([[ref_k, ref_n - ref_k], [win_k, win_n - win_k]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if (expected < 5).any():
        statistic, p = stats.fisher_exact(table)
        return "fisher", float(statistic), float(p)
    result = stats.chi2_contingency(table, correction=True)
    return "chi2", float(result.statistic), float(result.pvalue)


def _rate(name: str, kind: str, ref_k: int, ref_n: int, win_k: int, win_n: int) -> DriftTest:
    method, statistic, p = _rate_test(ref_k, ref_n, win_k, win_n)
    return DriftTest(name, kind, method, statistic, p, ref_k / ref_n, win_k / win_n, False)


def _window_tests(
    table: CaseTable, ref: slice, windows: Sequence[slice], config: DriftConfig
) -> list[list[DriftTest]]:
    """The tests of every window, in a fixed order: inputs, finding rates, agreement."""
    per_feature = [
        _ks_tests(f"image {stat}", "input", table.image[:, i], ref, windows)
        for i, stat in enumerate(IMAGE_STATS)
    ]
    per_feature.append(_ks_tests("ood score", "input", table.ood, ref, windows))
    out: list[list[DriftTest]] = [
        [t for t in tests if t is not None] for tests in zip(*per_feature, strict=True)
    ] if windows else []  # fmt: skip
    ref_n = ref.stop - ref.start
    ref_pos = table.draft_positive[ref].sum(0)
    revised_ref = int(table.revised[ref].sum())
    for tests, win in zip(out, windows, strict=True):
        win_n = win.stop - win.start
        win_pos = table.draft_positive[win].sum(0)
        for i, code in enumerate(table.codes):
            if ref_pos[i] + win_pos[i] >= config.min_positives:
                tests.append(_rate(f"rate {code}", "output", int(ref_pos[i]), ref_n,
                                   int(win_pos[i]), win_n))  # fmt: skip
        revised_win = int(table.revised[win].sum())
        if revised_ref + revised_win >= config.min_positives:
            tests.append(_rate("significantly revised", "agreement", revised_ref, ref_n,
                               revised_win, win_n))  # fmt: skip
    return out


def _reference_end(table: CaseTable, config: DriftConfig) -> int:
    if config.reference_until is None:
        return min(config.reference_size, len(table))
    until = np.datetime64(int(config.reference_until.timestamp()), "s")
    return int(np.searchsorted(table.received_at, until, side="left"))


def detect_drift(table: CaseTable, config: DriftConfig | None = None) -> DriftReport:
    """Test every full window after the reference; raise alerts by the persistence rule."""
    config = config or DriftConfig()
    n = len(table)
    ref_end = _reference_end(table, config)
    ref = slice(0, ref_end)
    slices = [
        slice(start, start + config.window_size)
        for start in range(ref_end, n - config.window_size + 1, config.step)
    ] if ref_end >= 2 else []  # fmt: skip
    windows: list[DriftWindow] = []
    for win, tests in zip(slices, _window_tests(table, ref, slices, config), strict=True):
        threshold = config.alpha / max(len(tests), 1)
        marked = tuple(replace(t, significant=t.p_value < threshold) for t in tests)
        windows.append(
            DriftWindow(win.start, win.stop, str(table.received_at[win.start]),
                        str(table.received_at[win.stop - 1]), threshold, marked)
        )  # fmt: skip
    return DriftReport(config, n, (0, ref_end), windows, _alerts(windows, config.persistence))


def _alerts(windows: Sequence[DriftWindow], persistence: int) -> list[DriftAlert]:
    runs: list[list[int]] = []  # [first, raised, last] window of each persisting run
    run_start: int | None = None
    for i, window in enumerate(windows):
        if not window.alarm:
            run_start = None
            continue
        if run_start is None:
            run_start = i
        length = i - run_start + 1
        if length == persistence:
            runs.append([run_start, i, i])
        elif length > persistence:
            runs[-1][2] = i
    last = len(windows) - 1
    return [_alert(windows, first, raised, end, end == last) for first, raised, end in runs]


def _alert(
    windows: Sequence[DriftWindow], first: int, raised: int, last: int, active: bool
) -> DriftAlert:
    significant = [t for w in windows[first : last + 1] for t in w.tests if t.significant]
    names = list(dict.fromkeys(t.name for t in sorted(significant, key=lambda t: t.p_value)))
    return DriftAlert(
        raised_at=windows[raised].end,
        raised_time=windows[raised].last_received,
        first_window=first,
        last_window=last,
        kinds=tuple(sorted({t.kind for t in significant})),
        tests=tuple(names),
        active=active,
    )
