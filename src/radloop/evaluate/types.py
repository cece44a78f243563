"""The records an evaluation passes along: a labelled ``Case`` and the model's ``Prediction``.

Both are plain frozen dataclasses with a JSON round trip, because a run is persisted: the
cases once per run (``cases.json``) and each prediction as one file per case under
``OUT/cache/`` (which is what makes a run resumable). Scoring reads only these records, never
images, so it can be repeated and timed apart from inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radloop.report import Finding

__all__ = [
    "CASES_SCHEMA",
    "PREDICTION_SCHEMA",
    "Attributes",
    "Case",
    "Lesion",
    "Prediction",
]

CASES_SCHEMA = "radloop.evaluate/cases-v1"
PREDICTION_SCHEMA = "radloop.evaluate/prediction-v1"

Attributes = Mapping[str, str | float | None]
"""Per-case attributes used for subgroups: ``age`` (years), ``sex``, ``site``, ``view``."""


@dataclass(frozen=True)
class Lesion:
    """One inserted lesion of the synthetic lab, for sensitivity by size and contrast.

    ``size_mm`` is the lab's size (diameter of a nodule or mass, rim of a pneumothorax);
    ``contrast`` is the lesion's mean display value minus that of a ring around it, in percent
    of the display range, measured on the rendered image (a faint lesion has a small value).
    """

    code: str
    side: str | None
    size_mm: float | None
    contrast: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "side": self.side,
            "size_mm": self.size_mm,
            "contrast": self.contrast,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lesion:
        return cls(data["code"], data.get("side"), data.get("size_mm"), data.get("contrast"))


@dataclass(frozen=True)
class Case:
    """One labelled study: where to read it, its truth and its subgroup attributes.

    ``labels`` maps each finding code the dataset assesses to 1 (present), 0 (absent) or
    ``None`` (not known for this case: excluded from that code's figures). ``findings`` are the
    present findings with whatever location and size the truth has. ``zone_labels`` maps a code
    to its six Brixia zones (``right_upper`` ...) as 0/1 where zones are known. ``source`` is
    the path the dataset reads the study from (or the report text's file for report sets).
    """

    case_id: str
    source: str
    labels: Mapping[str, int | None]
    findings: tuple[Finding, ...] = ()
    zone_labels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    lesions: tuple[Lesion, ...] = ()
    attributes: Attributes = field(default_factory=dict)
    text: str | None = None  # report-only datasets: the report to parse

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "source": self.source,
            "labels": dict(self.labels),
            "findings": [f.to_dict() for f in self.findings],
            "zone_labels": {c: dict(z) for c, z in self.zone_labels.items()},
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "attributes": dict(self.attributes),
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        return cls(
            case_id=str(data["case_id"]),
            source=str(data["source"]),
            labels=dict(data.get("labels", {})),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            zone_labels={c: dict(z) for c, z in data.get("zone_labels", {}).items()},
            lesions=tuple(Lesion.from_dict(x) for x in data.get("lesions", [])),
            attributes=dict(data.get("attributes", {})),
            text=data.get("text"),
        )


@dataclass(frozen=True)
class Prediction:
    """What the model and the safety layer said about one case.

    ``scores`` are the model's presence probabilities per finding code it scores (for a model
    without per-code probabilities: derived from its draft, see ``runner.draft_scores``);
    ``zone_scores`` per code and zone where the model has them. ``draft`` are the drafted
    findings; ``checked`` the same findings after :func:`radloop.safety.check` (calibrated
    probability and verdict each), ``omissions`` the findings the verifier flags as possibly
    omitted. ``scope`` is the scope guard's outcome (``accepted``/``flagged``/``refused``),
    ``ood_score`` the out-of-distribution score of the image (``None`` without a scorer) and
    ``ood_flagged`` whether it is above the scorer's threshold.

    ``failure`` is why the draft failed (a degenerate reply: it states nothing), ``abstained``
    why the model declined the film (outside its validated domain: it states nothing);
    ``invalid_output`` the indices of draft findings the model stated invalidly (held as
    uncertain and flagged); ``domain`` the verifier's domain decision for the film (outside
    its domain the verifier is silent and every claim is ``not_checked``); ``cost`` what the
    model work cost, by part and in total (requests, tokens, seconds).
    """

    case_id: str
    model: str
    scores: Mapping[str, float]
    draft: tuple[Finding, ...]
    checked: tuple[Finding, ...] = ()
    omissions: tuple[Finding, ...] = ()
    zone_scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    scope: str | None = None
    scope_reasons: tuple[str, ...] = ()
    ood_score: float | None = None
    ood_flagged: bool | None = None
    urgent: bool | None = None
    latency_s: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    failure: str | None = None
    abstained: str | None = None
    invalid_output: tuple[int, ...] = ()
    domain: Mapping[str, Any] | None = None
    cost: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PREDICTION_SCHEMA,
            "case_id": self.case_id,
            "model": self.model,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "zone_scores": {
                c: {z: round(float(p), 6) for z, p in zs.items()}
                for c, zs in self.zone_scores.items()
            },
            "draft": [f.to_dict() for f in self.draft],
            "checked": [f.to_dict() for f in self.checked],
            "omissions": [f.to_dict() for f in self.omissions],
            "scope": self.scope,
            "scope_reasons": list(self.scope_reasons),
            "ood_score": self.ood_score,
            "ood_flagged": self.ood_flagged,
            "urgent": self.urgent,
            "latency_s": {k: round(float(v), 6) for k, v in self.latency_s.items()},
            "error": self.error,
            "failure": self.failure,
            "abstained": self.abstained,
            "invalid_output": list(self.invalid_output),
            "domain": dict(self.domain) if self.domain is not None else None,
            "cost": dict(self.cost),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(
            case_id=str(data["case_id"]),
            model=str(data["model"]),
            scores={k: float(v) for k, v in data.get("scores", {}).items()},
            draft=tuple(Finding.from_dict(f) for f in data.get("draft", [])),
            checked=tuple(Finding.from_dict(f) for f in data.get("checked", [])),
            omissions=tuple(Finding.from_dict(f) for f in data.get("omissions", [])),
            zone_scores={
                c: {z: float(p) for z, p in zs.items()}
                for c, zs in data.get("zone_scores", {}).items()
            },
            scope=data.get("scope"),
            scope_reasons=tuple(data.get("scope_reasons", [])),
            ood_score=data.get("ood_score"),
            ood_flagged=data.get("ood_flagged"),
            urgent=data.get("urgent"),
            latency_s=dict(data.get("latency_s", {})),
            error=data.get("error"),
            failure=data.get("failure"),
            abstained=data.get("abstained"),
            invalid_output=tuple(int(i) for i in data.get("invalid_output") or ()),
            domain=dict(data["domain"]) if isinstance(data.get("domain"), Mapping) else None,
            cost=dict(data.get("cost") or {}),
        )
