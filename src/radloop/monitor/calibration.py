"""Calibration over time: the ECE of the drafts' probabilities on newly signed cases, per
finding type, and an alert when it drifts past a threshold.

Each draft claim that carries a probability (the probability of presence the workstation
showed: calibrated where a calibrator for the film's domain was loaded) is scored against the
signed report: the finding is present when the signed report states it on a compatible side
(``radloop.safety.signed_calibration.signed_states``). Windows of ``window_size`` signed cases
every ``step`` cases give, per finding type with at least ``min_claims`` claims in the window
and over all claims, the ECE (15 equal-width bins, ``radloop.stats``) and Brier score.

A small window shows a sizeable ECE even for perfectly calibrated probabilities, so a window
*alarms* only when its ECE is above ``threshold`` and above the 95th percentile of the ECE that
perfectly calibrated probabilities would show on the same claims (consistency resampling:
labels drawn as Bernoulli(p) from the window's own probabilities, ``draws`` times, fixed seed;
Bröcker and Smith, Weather and Forecasting 2007; each bin's count of present findings is drawn
from its normal approximation). An alert is raised after ``persistence``
consecutive alarming windows of a finding type and stays active while its windows alarm; the
fix it names is a refit on the site's signed reports (``radloop calibrate --from-signed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.monitor.cases import SignedCase
from radloop.safety.signed_calibration import signed_states
from radloop.stats import ECE_BINS, brier_score, expected_calibration_error
from radloop.vocabulary import finding

__all__ = [
    "ALL_FINDINGS",
    "CalibrationAlert",
    "CalibrationConfig",
    "CalibrationReport",
    "EceWindow",
    "calibration_over_time",
    "scored_claims",
]

ALL_FINDINGS = "all"


@dataclass(frozen=True)
class CalibrationConfig:
    """Window, alarm and alert settings of the ECE monitor."""

    window_size: int = 200
    step: int = 100
    threshold: float = 0.05
    min_claims: int = 30
    persistence: int = 2
    draws: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.window_size < 1 or self.step < 1 or self.min_claims < 1 or self.persistence < 1:
            raise ValueError(
                "window_size, step, min_claims and persistence must be positive, got "
                f"{self.window_size}, {self.step}, {self.min_claims}, {self.persistence}"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f'Argument "threshold" must be in (0, 1), got {self.threshold}.')


@dataclass(frozen=True)
class EceWindow:
    """One window's calibration for one finding type (or ``all``)."""

    finding: str
    start: int
    end: int
    first_signed: str
    last_signed: str
    n: int
    ece: float
    brier: float
    null_ece_95: float | None
    """What perfectly calibrated probabilities show here (95th percentile); computed only
    when the ECE is past the threshold (None otherwise)."""
    alarm: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "start": self.start,
            "end": self.end,
            "first_signed": self.first_signed,
            "last_signed": self.last_signed,
            "n": self.n,
            "ece": round(self.ece, 4),
            "brier": round(self.brier, 4),
            "null_ece_95": None if self.null_ece_95 is None else round(self.null_ece_95, 4),
            "alarm": self.alarm,
        }


@dataclass(frozen=True)
class CalibrationAlert:
    """A finding type whose ECE stayed past the threshold for ``persistence`` windows."""

    finding: str
    raised_time: str
    ece: float
    threshold: float
    active: bool

    @property
    def message(self) -> str:
        name = "all findings" if self.finding == ALL_FINDINGS else finding(self.finding).name
        state = "active" if self.active else "ended"
        return (
            f"calibration drift ({state}) of {name}: ECE {self.ece:.3f} on the cases signed up "
            f"to {self.raised_time[:16]} is above {self.threshold:.3f}; refit with "
            "`radloop calibrate --from-signed`"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "raised_time": self.raised_time,
            "ece": round(self.ece, 4),
            "threshold": self.threshold,
            "active": self.active,
            "message": self.message,
        }


@dataclass(frozen=True)
class CalibrationReport:
    """Every window's ECE per finding type, and the alerts."""

    config: CalibrationConfig
    n_claims: int
    windows: list[EceWindow] = field(default_factory=list)
    alerts: list[CalibrationAlert] = field(default_factory=list)

    @property
    def active(self) -> list[CalibrationAlert]:
        return [a for a in self.alerts if a.active]

    def series(self) -> dict[str, list[EceWindow]]:
        """The windows of each finding type, in order."""
        out: dict[str, list[EceWindow]] = {}
        for w in self.windows:
            out.setdefault(w.finding, []).append(w)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.config.threshold,
            "window_size": self.config.window_size,
            "step": self.config.step,
            "n_claims": self.n_claims,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
            "active_alerts": len(self.active),
        }


def scored_claims(case: SignedCase) -> list[tuple[str, float, bool]]:
    """(finding code, probability of presence, present in the signed report) of each draft
    claim of ``case`` that carries a probability."""
    return [
        (f.code, float(f.probability), signed_states(f, case.signed_findings))
        for f in case.draft_findings
        if f.probability is not None
    ]


def _null_ece(p: npt.NDArray[np.float64], draws: int, rng: np.random.Generator) -> float:
    """The 95th percentile of the ECE of ``p`` against labels drawn as Bernoulli(p): what
    perfectly calibrated probabilities show on this many claims (the bins of radloop.stats).
    Each bin's count of present findings is drawn from its normal approximation (mean the
    sum of p, variance the sum of p(1-p)), so a draw costs one number per bin."""
    index = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    sd = np.sqrt(np.bincount(index, weights=p * (1.0 - p), minlength=ECE_BINS))
    gaps = np.abs(rng.standard_normal((draws, ECE_BINS))) @ sd / p.size
    return float(np.percentile(gaps, 95))


def calibration_over_time(
    cases: Sequence[SignedCase], config: CalibrationConfig | None = None
) -> CalibrationReport:
    """ECE per finding type over windows of signed cases (in signing order), with alerts."""
    config = config or CalibrationConfig()
    ordered = sorted(cases, key=lambda c: (c.signed_at, c.study_id))
    per_case = [scored_claims(c) for c in ordered]
    rng = np.random.default_rng(config.seed)
    windows: list[EceWindow] = []
    n = len(ordered)
    starts = range(0, max(n - config.window_size, 0) + 1, config.step) if n else range(0)
    for start in starts:
        end = min(start + config.window_size, n)
        rows = [r for claims in per_case[start:end] for r in claims]
        groups: dict[str, list[tuple[float, bool]]] = {ALL_FINDINGS: []}
        for code, probability, present in rows:
            groups[ALL_FINDINGS].append((probability, present))
            groups.setdefault(code, []).append((probability, present))
        for code in sorted(groups, key=lambda c: (c != ALL_FINDINGS, c)):
            pairs = groups[code]
            if len(pairs) < config.min_claims:
                continue
            p = np.array([v for v, _ in pairs], dtype=np.float64)
            y = np.array([t for _, t in pairs], dtype=np.float64)
            ece = expected_calibration_error(p, y)
            null = _null_ece(p, config.draws, rng) if ece > config.threshold else None
            windows.append(EceWindow(
                code, start, end, ordered[start].signed_at.isoformat(),
                ordered[end - 1].signed_at.isoformat(), len(pairs), ece, brier_score(p, y),
                null, null is not None and ece > null,
            ))  # fmt: skip
    total = sum(len(c) for c in per_case)
    report = CalibrationReport(config, total, windows)
    return CalibrationReport(config, total, windows, _alerts(report, config))


def _alerts(report: CalibrationReport, config: CalibrationConfig) -> list[CalibrationAlert]:
    alerts = []
    for code, series in report.series().items():
        run = 0
        raised: EceWindow | None = None
        for i, window in enumerate(series):
            run = run + 1 if window.alarm else 0
            if run >= config.persistence and raised is None:
                raised = window
            last = i == len(series) - 1
            if raised is not None and (not window.alarm or last):
                alerts.append(CalibrationAlert(
                    code, raised.last_signed, raised.ece, config.threshold,
                    active=window.alarm and last,
                ))  # fmt: skip
                raised = None
    return alerts
