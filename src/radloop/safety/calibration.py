"""Calibrated confidence: the signals of a claim combined into one probability.

Signals of a claim (each may be missing): the verifier's probability of the finding, the
share of k sampled drafts that state the claim (self-consistency; Wang et al., ICLR 2023), the
drafting model's answers to closed questions (ask-back P(yes), P(side)), its token probability
of the claim, a second classifier's probability, and whether the verifier contradicted the
claim's details (side, zone, size, tube tip, change against the prior, an internal
contradiction) although it sees the finding.

:func:`fit_calibrator` fits the combiner of :mod:`radloop.safety.combine` (a logistic model per
finding type in which a missing source is missing: its slope and a learned missing-indicator
term drop out together) into the log-odds that the *claim* is correct, then two calibrators on
that score: temperature scaling (Guo et al., ICML 2017) and isotonic regression (Zadrozny and
Elkan, KDD 2002, scikit-learn's ``IsotonicRegression``). The probability that the finding is
*present* is the claim's probability for a positive claim and one minus it for a negative one.

:class:`Calibrator` itself applies files of versions 1 to 3, whose four-feature combiner
(``FEATURES``) read a missing signal as 0; refit them to weigh every source.

Calibrators are saved as JSON (format in docs/safety.md), never pickled. Applying one needs
only numpy; fitting needs scikit-learn.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from radloop.errors import MissingExtraError
from radloop.models.competence import SYNTHETIC_LAB
from radloop.safety.errors import CalibrationDataError
from radloop.safety.labelled_claims import read_labelled_claims, write_labelled_claims
from radloop.safety.verify import Thresholds
from radloop.stats import brier_score, expected_calibration_error, sigmoid
from radloop.vocabulary import Criticality, finding

__all__ = [
    "CALIBRATION_FORMAT",
    "FEATURES",
    "CalibrationResult",
    "Calibrator",
    "ClaimSignals",
    "LabelledClaim",
    "fit_calibrator",
    "fit_omission_thresholds",
    "read_labelled_claims",
    "write_labelled_claims",
]

CALIBRATION_FORMAT = "radloop-calibration"
CALIBRATION_VERSION = 3
OMISSION_FALSE_ALARM = 0.01
"""Default share of labelled absent findings allowed to raise a possible omission."""
OMISSION_RECALL = 0.95
"""Default share of labelled present findings an omission threshold must still reach."""
MIN_ABSENT_FOR_OMISSION = 20
"""Fewer labelled absent findings of a code than this fit no omission threshold for it."""
MIN_PRESENT_FOR_OMISSION = 10
"""Fewer labelled present findings of a code than this leave its threshold at the
false-alarm limit."""
FEATURES = ("verifier_logit", "sample_agreement", "mean_token_logprob", "contradicted")
_V1_FEATURES = FEATURES[:3]  # version 1 files: no contradiction feature (its weight is 0)
Method = Literal["identity", "temperature", "isotonic", "evidence"]
FloatArray = npt.NDArray[np.float64]
_EPS = 1e-4
_LOGIT_LIMIT = 40.0  # log-odds are clipped to ±40 before the logistic function


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class ClaimSignals:
    """What is known about one claim before calibration.

    ``positive`` is whether the claim states the finding (present or uncertain) rather than
    denying it; ``verifier_probability``, ``p_ask_yes`` and ``p_second_opinion`` are
    probabilities that the finding is present; ``p_ask_side`` that it is on the claimed side;
    ``token_probability`` the drafting model's probability of the claim's tokens; ``code`` the
    claim's finding code (the combiner has a model per finding type).
    """

    positive: bool = True
    verifier_probability: float | None = None
    sample_agreement: float | None = None
    mean_token_logprob: float | None = None
    contradicted: bool | None = None
    code: str | None = None
    p_ask_yes: float | None = None
    p_ask_side: float | None = None
    token_probability: float | None = None
    p_second_opinion: float | None = None

    def features(self) -> tuple[float, float, float, float]:
        p = self.verifier_probability
        verifier = 0.0 if p is None else _logit(p if self.positive else 1 - p)
        agreement = 0.0 if self.sample_agreement is None else self.sample_agreement - 1.0
        logprob = 0.0 if self.mean_token_logprob is None else self.mean_token_logprob
        return verifier, agreement, logprob, 1.0 if self.contradicted else 0.0

    @property
    def has_signal(self) -> bool:
        return any(
            v is not None
            for v in (self.verifier_probability, self.sample_agreement, self.mean_token_logprob,
                      self.p_ask_yes, self.p_ask_side, self.token_probability,
                      self.p_second_opinion)
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LabelledClaim:
    """One row of calibration data: a claim's signals and whether the finding is present."""

    study_id: str
    code: str
    signals: ClaimSignals
    present: bool

    @property
    def correct(self) -> bool:
        return self.present == self.signals.positive


@dataclass(frozen=True)
class Calibrator:
    """A fitted combiner and calibrator; ``Calibrator()`` passes the verifier through."""

    weights: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    bias: float = 0.0
    temperature: float = 1.0
    isotonic_x: tuple[float, ...] = ()
    isotonic_y: tuple[float, ...] = ()
    method: Method = "identity"
    metrics: dict[str, Any] = field(default_factory=dict)
    omission_thresholds: dict[str, float] = field(default_factory=dict)
    """Critical finding code -> verifier probability from which a denied or unmentioned finding
    is a possible omission (see :func:`fit_omission_thresholds`); the verifier's defaults
    apply to codes not listed."""
    domain: str = SYNTHETIC_LAB
    """The domain of the labelled claims it was fitted on (``synthetic-lab``, or a real-film
    domain such as ``real-frontal``): certainty words come from it only on studies there."""

    def __post_init__(self) -> None:
        # The verifier's thresholds check the codes and probabilities (one rule, one place).
        Thresholds(omission_by_code=self.omission_thresholds)
        if len(self.weights) != len(FEATURES):
            raise ValueError(
                f"expected {len(FEATURES)} weights ({', '.join(FEATURES)}), got {self.weights}"
            )
        if self.temperature <= 0:
            raise ValueError(f'Argument "temperature" must be positive, got {self.temperature}.')
        if self.method == "isotonic" and len(self.isotonic_x) < 2:
            raise ValueError("an isotonic calibrator needs at least two thresholds")
        if len(self.isotonic_x) != len(self.isotonic_y):
            raise ValueError("isotonic_x and isotonic_y must have the same length")

    def score(self, signals: Sequence[ClaimSignals]) -> FloatArray:
        """Combined log-odds that each claim is correct (before temperature or isotonic)."""
        x = np.array([s.features() for s in signals], dtype=np.float64).reshape(-1, len(FEATURES))
        return x @ np.asarray(self.weights, dtype=np.float64) + self.bias

    def claim_probabilities(self, signals: Sequence[ClaimSignals]) -> FloatArray:
        """Calibrated probability that each claim is correct."""
        z = self.score(signals)
        if self.method == "isotonic":
            return np.interp(sigmoid(z, limit=_LOGIT_LIMIT), self.isotonic_x, self.isotonic_y)
        return sigmoid(z / self.temperature, limit=_LOGIT_LIMIT)

    def presence_probabilities(self, signals: Sequence[ClaimSignals]) -> FloatArray:
        """Calibrated probability that each claim's finding is present."""
        p = self.claim_probabilities(signals)
        positive = np.array([s.positive for s in signals], dtype=bool)
        return np.where(positive, p, 1.0 - p)

    def presence_probability(self, signals: ClaimSignals) -> float:
        return float(self.presence_probabilities([signals])[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "version": CALIBRATION_VERSION,
            "features": list(FEATURES),
            "method": self.method,
            "combiner": {"weights": list(self.weights), "bias": self.bias},
            "temperature": self.temperature,
            "isotonic": {"x": list(self.isotonic_x), "y": list(self.isotonic_y)},
            "omission_thresholds": dict(sorted(self.omission_thresholds.items())),
            "metrics": self.metrics,
            "domain": self.domain,
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None) -> Calibrator:
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise CalibrationDataError(
                f'a JSON object with "format": "{CALIBRATION_FORMAT}"',
                repr(data)[:80],
                source=source,
            )
        if data.get("version") == 4:
            from radloop.safety.combine import EvidenceCalibrator

            return EvidenceCalibrator.from_evidence_dict(data, source=source)
        known = {(CALIBRATION_VERSION, FEATURES), (2, FEATURES), (1, _V1_FEATURES)}
        if (data.get("version"), tuple(data.get("features") or ())) not in known:
            raise CalibrationDataError(
                f"version {CALIBRATION_VERSION} with features {list(FEATURES)} "
                f"(or version 1 with {list(_V1_FEATURES)})",
                f"version {data.get('version')!r} with features {data.get('features')!r}",
                source=source,
                fix="refit with `radloop calibrate`",
            )
        try:
            weights = tuple(float(w) for w in data["combiner"]["weights"])
            expected = len(data["features"])
            if len(weights) != expected:
                raise ValueError(f"expected {expected} combiner weights, got {len(weights)}")
            weights = (*weights, 0.0)[: len(FEATURES)]
            return cls(
                weights=(weights[0], weights[1], weights[2], weights[3]),
                bias=float(data["combiner"]["bias"]),
                temperature=float(data["temperature"]),
                isotonic_x=tuple(float(v) for v in data["isotonic"]["x"]),
                isotonic_y=tuple(float(v) for v in data["isotonic"]["y"]),
                method=data["method"],
                metrics=dict(data.get("metrics", {})),
                omission_thresholds={
                    str(k): float(v) for k, v in data.get("omission_thresholds", {}).items()
                },
                # Files written before domains were recorded were fitted on the lab's claims.
                domain=str(data.get("domain", SYNTHETIC_LAB)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CalibrationDataError(
                "a complete calibration file", f"{error!s}", source=source
            ) from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CalibrationDataError("a calibration JSON file", str(error), source=path) from None
        return cls.from_dict(data, source=path)


# --- fitting ---------------------------------------------------------------------------------


def _fit_temperature(z: FloatArray, y: FloatArray) -> float:
    """The temperature minimising the negative log-likelihood (golden-section on log T)."""

    def nll(log_t: float) -> float:
        p = np.clip(sigmoid(z / math.exp(log_t), limit=_LOGIT_LIMIT), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def _isotonic(p: FloatArray, y: FloatArray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    try:
        module = importlib.import_module("sklearn.isotonic")
    except ImportError:
        raise MissingExtraError("scikit-learn", "safety", "Fitting calibrators") from None
    model = module.IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(p, y)
    return tuple(map(float, model.X_thresholds_)), tuple(map(float, model.y_thresholds_))


@dataclass(frozen=True)
class CalibrationResult:
    """The chosen calibrator and every candidate's ECE and Brier score on held-out claims."""

    calibrator: Calibrator
    candidates: dict[str, Calibrator]
    metrics: dict[str, dict[str, float]]
    n_fit: int
    n_test: int
    test_signals: tuple[ClaimSignals, ...]
    test_present: tuple[bool, ...]


def _split(
    claims: Sequence[LabelledClaim], holdout: float, seed: int
) -> tuple[list[LabelledClaim], list[LabelledClaim]]:
    """Split by study, so that no study's claims are both fitted and tested."""
    studies = sorted({c.study_id for c in claims})
    order = np.random.default_rng(seed).permutation(len(studies))
    n_test = max(1, round(holdout * len(studies)))
    test = {studies[i] for i in order[:n_test]}
    return [c for c in claims if c.study_id not in test], [c for c in claims if c.study_id in test]


def fit_omission_thresholds(
    claims: Sequence[LabelledClaim],
    *,
    false_alarm: float = OMISSION_FALSE_ALARM,
    recall: float = OMISSION_RECALL,
    ceiling: float = 0.5,
    min_absent: int = MIN_ABSENT_FOR_OMISSION,
    min_present: int = MIN_PRESENT_FOR_OMISSION,
) -> dict[str, float]:
    """Per critical finding, the verifier probability from which a possible omission is raised.

    A sensitivity target under a false-alarm limit (Neyman-Pearson). The limit: among the
    labelled claims that correctly deny a critical finding ("no pneumothorax" on a study
    without one), at most ``false_alarm`` have a verifier probability at or above the
    threshold. Where at least ``min_present`` labelled claims show the verifier's probability
    on studies *with* the finding, the threshold is raised (fewer false alarms) as far as still
    keeps ``recall`` of them at or above it. It is never above ``ceiling`` (the verifier's
    default for critical findings), so fitting can only make the check more sensitive; a code
    with fewer than ``min_absent`` labelled denials gets none.
    """
    if not 0.0 <= false_alarm < 1.0:
        raise ValueError(f'Argument "false_alarm" must be in [0, 1), got {false_alarm}.')
    if not 0.0 < recall <= 1.0:
        raise ValueError(f'Argument "recall" must be in (0, 1], got {recall}.')
    absent: dict[str, list[float]] = {}
    present: dict[str, list[float]] = {}
    for claim in claims:
        p = claim.signals.verifier_probability
        if p is None or finding(claim.code).critical is Criticality.NEVER:
            continue
        if claim.present:
            present.setdefault(claim.code, []).append(p)
        elif not claim.signals.positive:
            # Only denials: a wrong-side claim is labelled absent but its finding is there.
            absent.setdefault(claim.code, []).append(p)
    thresholds = {}
    for code, values in sorted(absent.items()):
        if len(values) < min_absent:
            continue
        ranked = np.sort(np.asarray(values, dtype=np.float64))[::-1]
        allowed = math.floor(false_alarm * len(ranked))
        # Just above the (allowed + 1)-th highest: at most `allowed` absent claims reach it.
        threshold = float(np.nextafter(ranked[allowed], 1.0))
        seen = np.sort(np.asarray(present.get(code, []), dtype=np.float64))
        if seen.size >= min_present:
            missed = math.floor(round((1.0 - recall) * seen.size, 9))
            threshold = max(threshold, float(seen[missed]))
        thresholds[code] = min(threshold, ceiling)
    return thresholds


def _with_code(claim: LabelledClaim) -> LabelledClaim:
    """The claim with its finding code in its signals (the combiner's model per finding)."""
    if claim.signals.code == claim.code:
        return claim
    return replace(claim, signals=replace(claim.signals, code=claim.code))


def fit_calibrator(
    claims: Sequence[LabelledClaim],
    *,
    holdout: float = 0.3,
    seed: int = 0,
    omission_false_alarm: float | None = OMISSION_FALSE_ALARM,
    omission_recall: float = OMISSION_RECALL,
    domain: str = SYNTHETIC_LAB,
    test_claims: Sequence[LabelledClaim] | None = None,
) -> CalibrationResult:
    """Fit the combiner of every source (:mod:`radloop.safety.combine`), and temperature and
    isotonic calibrators on its score; choose by held-out ECE, keeping the raw verifier
    probability (``identity``) when no fitted map beats it.

    Studies are split ``holdout`` for testing, or ``test_claims`` are the held-out claims
    (e.g. the latest signed cases); the figures in ``metrics`` are on the held-out claims. The
    calibrator also carries per-finding omission thresholds fitted on all claims at
    ``omission_false_alarm`` and ``omission_recall`` (:func:`fit_omission_thresholds`; a
    false-alarm rate of None fits none).
    """
    from radloop.safety.combine import fit_evidence_combiner

    claims = [_with_code(c) for c in claims]
    if test_claims is None:
        if not 0.0 < holdout < 1.0:
            raise ValueError(f'Argument "holdout" must be in (0, 1), got {holdout}.')
        fit, test = _split(claims, holdout, seed)
    else:
        fit, test = claims, [_with_code(c) for c in test_claims]
    labels = {c.correct for c in fit}
    if len(fit) < 10 or len(test) < 5 or labels != {True, False}:
        raise CalibrationDataError(
            "at least 10 fitting and 5 test claims from several studies, with correct and "
            "incorrect claims among them",
            f"{len(fit)} fitting and {len(test)} test claims",
            fix="label more studies",
        )
    combiner = fit_evidence_combiner(fit, domain=domain)
    y = np.array([c.correct for c in fit], dtype=np.float64)
    z = combiner.score([c.signals for c in fit])
    temperature = _fit_temperature(z, y)
    iso_x, iso_y = _isotonic(sigmoid(z, limit=_LOGIT_LIMIT), y)
    candidates: dict[str, Calibrator] = {
        "identity": Calibrator(),
        "evidence": combiner,
        "temperature": replace(combiner, temperature=temperature, method="temperature"),
        "isotonic": replace(combiner, temperature=temperature, isotonic_x=iso_x,
                            isotonic_y=iso_y, method="isotonic"),
    }  # fmt: skip
    signals = [c.signals for c in test]
    present = np.array([c.present for c in test], dtype=np.float64)
    metrics = {}
    for name, candidate in candidates.items():
        p = candidate.presence_probabilities(signals)
        metrics[name] = {
            "ece": expected_calibration_error(p, present),
            "brier": brier_score(p, present),
        }
    # The raw signals compete too: a fitted map that is worse on held-out claims than no map
    # at all must not be chosen (ties go to the simpler map, listed first).
    best = min(candidates, key=lambda n: metrics[n]["ece"])
    summary: dict[str, Any] = {"n_fit": len(fit), "n_test": len(test), "held_out": metrics}
    omission: dict[str, float] = {}
    if omission_false_alarm is not None:
        omission = fit_omission_thresholds(
            claims, false_alarm=omission_false_alarm, recall=omission_recall
        )
        summary["omission_false_alarm"] = omission_false_alarm
        summary["omission_recall"] = omission_recall
    chosen = replace(candidates[best], metrics=summary, omission_thresholds=omission, domain=domain)
    return CalibrationResult(
        chosen,
        candidates,
        metrics,
        len(fit),
        len(test),
        tuple(signals),
        tuple(bool(v) for v in present),
    )
