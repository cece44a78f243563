"""Calibration learned from the site's own signed reports.

Every draft claim the workstation stored with its claim check (the numbers of every evidence
source) becomes a labelled claim once the radiologist signs the study: the label is whether
the signed report states the claimed finding (on a compatible side). The combiner
(:mod:`radloop.safety.combine`) is fitted per finding type on all but the latest
``holdout`` share of the signed cases; those latest cases, never seen in fitting, give the
reliability diagram, ECE and Brier score, so the figures say how the calibrator does on the
cases that come next. Below ``min_cases`` signed cases nothing is fitted, and the error says how
many more are needed.

Reading the signed cases from the review database is ``radloop.monitor.signed_claims``; this
module only fits, so it needs neither the workstation nor a database.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radloop.models.competence import REAL_FILMS
from radloop.report import Finding
from radloop.safety.calibration import (
    OMISSION_FALSE_ALARM,
    OMISSION_RECALL,
    CalibrationResult,
    ClaimSignals,
    LabelledClaim,
    fit_calibrator,
)
from radloop.safety.errors import CalibrationDataError
from radloop.vocabulary import Side, ancestors

__all__ = [
    "HOLDOUT",
    "MIN_SIGNED_CASES",
    "NotEnoughSignedCasesError",
    "SignedCalibration",
    "SignedClaim",
    "claims_of_signed_case",
    "fit_from_signed",
    "signed_states",
]

MIN_SIGNED_CASES = 200
"""Fewer signed cases than this fit no calibrator."""
HOLDOUT = 0.2
"""The latest share of signed cases held out for the reliability diagram, ECE and Brier."""


class NotEnoughSignedCasesError(CalibrationDataError):
    """Too few signed cases (with stored claim checks) to fit a calibrator."""


@dataclass(frozen=True, slots=True)
class SignedClaim:
    """One draft claim of a signed case: when it was signed and the labelled claim."""

    signed_at: datetime.datetime
    claim: LabelledClaim


def _related(a: str, b: str) -> bool:
    return a == b or a in ancestors(b) or b in ancestors(a)


def signed_states(found: Finding, signed: Sequence[Finding]) -> bool:
    """Whether the signed findings state ``found``'s finding as present: the same code (or a
    broader or narrower one) on a compatible side (unsided, the same, or bilateral)."""
    for other in signed:
        if not other.is_positive or not _related(found.code, other.code):
            continue
        sides = (found.side, other.side)
        if None in sides or found.side is other.side or Side.BILATERAL in sides:
            return True
    return False


def _number(numbers: dict[str, Any], name: str) -> float | None:
    value = numbers.get(name)
    return None if value is None else float(value)


def claims_of_signed_case(
    study_id: str,
    signed_at: datetime.datetime,
    checks: Sequence[dict[str, Any]],
    signed_findings: Sequence[Finding],
) -> list[SignedClaim]:
    """The labelled claims of one signed case from its draft's stored claim checks
    (``ClaimCheck.to_dict()``); findings the draft did not state are skipped."""
    out = []
    for check in checks:
        if check.get("index") is None:
            continue  # a possible omission the verifier raised: not a claim of the draft
        found = Finding.from_dict(check["finding"])
        numbers = dict(check.get("numbers") or {})
        contradicted = found.is_positive and check.get("verdict") == "contradicted"
        signals = ClaimSignals(
            positive=found.is_positive,
            verifier_probability=_number(numbers, "p_claim"),
            sample_agreement=_number(numbers, "sample_agreement"),
            contradicted=contradicted,
            code=found.code,
            p_ask_yes=_number(numbers, "p_ask_yes"),
            p_ask_side=_number(numbers, "p_ask_side"),
            token_probability=_number(numbers, "token_probability"),
            p_second_opinion=_number(numbers, "p_second_opinion"),
        )
        present = signed_states(found, signed_findings)
        out.append(SignedClaim(signed_at, LabelledClaim(study_id, found.code, signals, present)))
    return out


@dataclass(frozen=True)
class SignedCalibration:
    """A calibrator fitted on signed cases, with its figures on the latest held-out ones."""

    result: CalibrationResult
    n_cases: int
    n_fit_cases: int
    n_test_cases: int
    fit_until: datetime.datetime
    test_from: datetime.datetime
    test_until: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "method": r.calibrator.method,
            "domain": r.calibrator.domain,
            "signed_cases": self.n_cases,
            "fit_cases": self.n_fit_cases,
            "held_out_cases": self.n_test_cases,
            "fit_until": self.fit_until.isoformat(),
            "held_out_from": self.test_from.isoformat(),
            "held_out_until": self.test_until.isoformat(),
            "n_fit": r.n_fit,
            "n_test": r.n_test,
            "held_out": r.metrics,
            "omission_thresholds": r.calibrator.omission_thresholds,
        }

    def save_plot(self, path: str | Path) -> Path:
        """The reliability diagram of the held-out cases: before (the verifier's probability
        as it is) and after calibration."""
        from radloop.safety.reliability import save_reliability_diagram

        r = self.result
        present = np.array(r.test_present, dtype=np.float64)
        curves = [
            ("before" if n == "identity" else f"after ({n})", c.presence_probabilities(
                r.test_signals), present)
            for n, c in r.candidates.items()
            if n in ("identity", r.calibrator.method)
        ]  # fmt: skip
        return Path(save_reliability_diagram(Path(path), curves))


def fit_from_signed(
    claims: Sequence[SignedClaim],
    *,
    min_cases: int = MIN_SIGNED_CASES,
    holdout: float = HOLDOUT,
    domain: str = REAL_FILMS,
    omission_false_alarm: float | None = OMISSION_FALSE_ALARM,
    omission_recall: float = OMISSION_RECALL,
) -> SignedCalibration:
    """Fit on the signed cases before the latest ``holdout`` share, measure on those latest."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f'Argument "holdout" must be in (0, 1), got {holdout}.')
    signed: dict[str, datetime.datetime] = {}
    for c in claims:
        signed[c.claim.study_id] = min(c.signed_at, signed.get(c.claim.study_id, c.signed_at))
    order = sorted(signed, key=lambda s: (signed[s], s))
    if len(order) < min_cases:
        missing = min_cases - len(order)
        raise NotEnoughSignedCasesError(
            f"at least {min_cases} signed cases with stored claim checks",
            f"{len(order)}",
            fix=f"{missing} more signed case{'s' * (missing != 1)} are needed before "
            "radloop can calibrate on this site's reports.",
        )
    n_test = max(1, round(holdout * len(order)))
    test_ids = set(order[-n_test:])
    fit = [c.claim for c in claims if c.claim.study_id not in test_ids]
    test = [c.claim for c in claims if c.claim.study_id in test_ids]
    result = fit_calibrator(
        fit,
        test_claims=test,
        domain=domain,
        omission_false_alarm=omission_false_alarm,
        omission_recall=omission_recall,
    )
    first_test = order[-n_test]
    return SignedCalibration(
        result=result,
        n_cases=len(order),
        n_fit_cases=len(order) - n_test,
        n_test_cases=n_test,
        fit_until=signed[order[-n_test - 1]] if len(order) > n_test else signed[first_test],
        test_from=signed[first_test],
        test_until=signed[order[-1]],
    )
