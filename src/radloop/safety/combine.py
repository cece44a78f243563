"""The combiner of every evidence source about a claim, where a missing source stays missing.

Sources of one claim (``SOURCES``), each a probability in [0, 1] or missing:

- ``verifier``: the verifier's probability of the finding (in its validated domain only),
- ``sample_agreement``: the share of sampled drafts that state the claim (self-consistency),
- ``ask_yes``: the drafting (or another) model's P(yes) to a closed question on the finding,
- ``ask_side``: its P(the claimed side) to a closed question on the side,
- ``token_probability``: the drafting model's own token probability of the claim,
- ``second_opinion``: a second classifier's probability of the finding (``onnx`` verifier),

plus whether the verifier contradicted a detail of the claim. Probabilities of the finding
(verifier, ask-back P(yes), second opinion) are turned toward the claim: for a claim that
denies the finding, the source's support is one minus its probability.

A missing source is missing, never a default value. The model is a logistic regression with,
per source, a slope on the source's log-odds *and* a learned missing-indicator term (the
"missing-indicator method"; Groenwold et al., CMAJ 2012): for a claim without source ``s``
the slope term is absent and the fitted intercept shift for "``s`` present" is absent too, so
what the other sources say is read with the base rate of claims that lack ``s``, as fitted,
rather than as if ``s`` had said 0.5. A model per pattern of present sources would need
enough signed claims for each of up to 64 patterns; the indicator model shares each slope
across patterns and needs only enough claims per source. How many fitted claims had each
pattern is kept with the model (``patterns``), so a reader of the file sees what it rests on.

Per finding type, a model is fitted with its weights shrunk toward the pooled model of all
finding types (a ridge penalty centred on the pooled weights), so a rare finding type borrows
strength from the others and a common one moves as far as its own claims warrant.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.safety.calibration import Calibrator, ClaimSignals, LabelledClaim
from radloop.safety.errors import CalibrationDataError
from radloop.stats import sigmoid

__all__ = [
    "EVIDENCE_VERSION",
    "SOURCES",
    "EvidenceCalibrator",
    "SourceModel",
    "design_row",
    "fit_evidence_combiner",
    "pattern_of",
    "source_lines",
    "source_readings",
]

SOURCES = (
    "verifier", "sample_agreement", "ask_yes", "ask_side", "token_probability",
    "second_opinion",
)  # fmt: skip
EVIDENCE_VERSION = 4
SOURCE_LABELS = {
    "verifier": "verifier",
    "sample_agreement": "sampled drafts agreeing",
    "ask_yes": "ask-back P(yes)",
    "ask_side": "ask-back P(side)",
    "token_probability": "token probability",
    "second_opinion": "second opinion",
}
N_FEATURES = 2 * len(SOURCES) + 1
_CLIP = 0.01  # log-odds of a source are taken within [logit(0.01), logit(0.99)]
_LOGIT_LIMIT = 40.0
FloatArray = npt.NDArray[np.float64]


def _logit(p: float) -> float:
    p = min(max(p, _CLIP), 1.0 - _CLIP)
    return math.log(p / (1.0 - p))


def source_readings(signals: ClaimSignals) -> dict[str, float | None]:
    """Each source's support for the claim as stated (None: the source is missing)."""

    def toward(p: float | None) -> float | None:
        return None if p is None else (p if signals.positive else 1.0 - p)

    return {
        "verifier": toward(signals.verifier_probability),
        "sample_agreement": signals.sample_agreement,
        "ask_yes": toward(signals.p_ask_yes),
        "ask_side": signals.p_ask_side if signals.positive else None,
        "token_probability": signals.token_probability,
        "second_opinion": toward(signals.p_second_opinion),
    }


def pattern_of(signals: ClaimSignals) -> str:
    """The present sources of a claim, joined by ``+`` (``none`` when it has none)."""
    present = [s for s, v in source_readings(signals).items() if v is not None]
    return "+".join(present) or "none"


def design_row(signals: ClaimSignals) -> FloatArray:
    """The model's inputs: per source its log-odds and a 1 where present (both 0 where
    missing), then the contradiction flag."""
    row = np.zeros(N_FEATURES, dtype=np.float64)
    for i, value in enumerate(source_readings(signals).values()):
        if value is not None:
            row[2 * i] = _logit(value)
            row[2 * i + 1] = 1.0
    row[-1] = 1.0 if signals.contradicted else 0.0
    return row


def source_lines(signals: ClaimSignals) -> list[str]:
    """One line per source for the reader: what it said about the claim, or that it is
    missing."""
    lines = []
    for source, value in source_readings(signals).items():
        label = SOURCE_LABELS[source]
        lines.append(f"{label}: {value:.2f}" if value is not None else f"{label}: missing")
    return lines


@dataclass(frozen=True)
class SourceModel:
    """One fitted logistic model over :func:`design_row`: weights, bias, and the number of
    fitted claims per pattern of present sources."""

    weights: tuple[float, ...]
    bias: float
    n: int = 0
    patterns: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.weights) != N_FEATURES:
            raise ValueError(f"expected {N_FEATURES} weights, got {len(self.weights)}")

    def score(self, rows: FloatArray) -> FloatArray:
        z: FloatArray = rows @ np.asarray(self.weights, dtype=np.float64) + self.bias
        return z

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "n": self.n,
            "patterns": dict(sorted(self.patterns.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceModel:
        return cls(
            weights=tuple(float(w) for w in data["weights"]),
            bias=float(data["bias"]),
            n=int(data.get("n", 0)),
            patterns={str(k): int(v) for k, v in dict(data.get("patterns", {})).items()},
        )


@dataclass(frozen=True)
class EvidenceCalibrator(Calibrator):
    """The combiner of every source as a calibrator: a model per finding type (shrunk toward
    the pooled one), the pooled model for the others. It plugs in wherever a
    :class:`Calibrator` does (``radloop check``, ``eval``, the workstation's worker)."""

    pooled: SourceModel = field(default_factory=lambda: SourceModel((0.0,) * N_FEATURES, 0.0))
    by_finding: Mapping[str, SourceModel] = field(default_factory=dict)

    def model_for(self, code: str | None) -> SourceModel:
        return self.by_finding.get(code or "", self.pooled)

    def score(self, signals: Sequence[ClaimSignals]) -> FloatArray:
        """Combined log-odds that each claim is correct, from the sources present (before
        temperature or isotonic)."""
        out = np.empty(len(signals), dtype=np.float64)
        for i, s in enumerate(signals):
            out[i] = float(self.model_for(s.code).score(design_row(s)[None, :])[0])
        return out

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(
            version=EVIDENCE_VERSION,
            features=list(SOURCES),
            combiner={
                "kind": "logistic with missing-indicator terms, per finding type",
                "columns": [f"{s}{part}" for s in SOURCES for part in ("_logit", "_present")]
                + ["contradicted"],
                "pooled": self.pooled.to_dict(),
                "by_finding": {c: m.to_dict() for c, m in sorted(self.by_finding.items())},
            },
        )
        return out

    @classmethod
    def from_evidence_dict(cls, data: Mapping[str, Any], *, source: Any = None
                           ) -> EvidenceCalibrator:  # fmt: skip
        """A calibrator from its version-4 JSON form (``Calibrator.load`` calls this)."""
        if tuple(data.get("features") or ()) != SOURCES:
            raise CalibrationDataError(
                f"version {EVIDENCE_VERSION} with sources {list(SOURCES)}",
                f"sources {data.get('features')!r}",
                source=source,
                fix="refit with `radloop calibrate`",
            )
        try:
            combiner = data["combiner"]
            method = str(data["method"])
            if method not in ("evidence", "temperature", "isotonic"):
                raise ValueError(f"unknown method {method!r}")
            return cls(
                temperature=float(data["temperature"]),
                isotonic_x=tuple(float(v) for v in data["isotonic"]["x"]),
                isotonic_y=tuple(float(v) for v in data["isotonic"]["y"]),
                method=method,  # type: ignore[arg-type]
                metrics=dict(data.get("metrics", {})),
                omission_thresholds={
                    str(k): float(v) for k, v in data.get("omission_thresholds", {}).items()
                },
                domain=str(data["domain"]),
                pooled=SourceModel.from_dict(combiner["pooled"]),
                by_finding={
                    str(c): SourceModel.from_dict(m)
                    for c, m in dict(combiner.get("by_finding", {})).items()
                },
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CalibrationDataError(
                "a complete evidence calibration file", str(error), source=source
            ) from None


def _fit(
    x: FloatArray, y: FloatArray, *, centre: FloatArray | None, l2: float
) -> tuple[FloatArray, float]:
    """Logistic regression by damped Newton steps with a ridge centred on ``centre`` (zero
    when None; the intercept is not penalised when centred on zero)."""
    design = np.hstack([x, np.ones((x.shape[0], 1))])
    k = design.shape[1]
    prior = np.zeros(k) if centre is None else centre
    ridge = l2 * np.eye(k)
    if centre is None:
        ridge[-1, -1] = 0.0
    beta = prior.copy()

    def loss(b: FloatArray) -> float:
        z = design @ b
        d = b - prior
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * d @ ridge @ d)

    current = loss(beta)
    for _ in range(100):
        p = sigmoid(design @ beta, limit=_LOGIT_LIMIT)
        gradient = design.T @ (p - y) + ridge @ (beta - prior)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge + 1e-6 * np.eye(k)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6 and loss(beta - scale * step) > current:
            scale /= 2
        beta = beta - scale * step
        previous, current = current, loss(beta)
        if previous - current < 1e-10:
            break
    return beta[:-1], float(beta[-1])


def fit_evidence_combiner(
    claims: Sequence[LabelledClaim],
    *,
    domain: str,
    min_per_finding: int = 30,
    l2: float = 1.0,
    shrink: float = 10.0,
) -> EvidenceCalibrator:
    """Fit the pooled model on every claim, then one per finding type with at least
    ``min_per_finding`` claims, both right and wrong ones among them, shrunk toward the pooled
    weights with strength ``shrink``."""
    if len(claims) < 10 or len({c.correct for c in claims}) < 2:
        raise CalibrationDataError(
            "at least 10 claims, with right and wrong claims among them",
            f"{len(claims)} claims ({sum(c.correct for c in claims)} right)",
            fix="wait for more signed cases",
        )
    x = np.stack([design_row(c.signals) for c in claims])
    y = np.array([c.correct for c in claims], dtype=np.float64)
    patterns = Counter(pattern_of(c.signals) for c in claims)
    w, b = _fit(x, y, centre=None, l2=l2)
    pooled = SourceModel(tuple(float(v) for v in w), b, len(claims), dict(patterns))
    centre = np.append(w, b)
    by_finding: dict[str, SourceModel] = {}
    for code in sorted({c.code for c in claims}):
        rows = [i for i, c in enumerate(claims) if c.code == code]
        if len(rows) < min_per_finding or len(set(y[rows].tolist())) < 2:
            continue
        wc, bc = _fit(x[rows], y[rows], centre=centre, l2=shrink)
        counts = Counter(pattern_of(claims[i].signals) for i in rows)
        by_finding[code] = SourceModel(tuple(float(v) for v in wc), bc, len(rows), dict(counts))
    return EvidenceCalibrator(method="evidence", domain=domain, pooled=pooled,
                              by_finding=by_finding)  # fmt: skip
