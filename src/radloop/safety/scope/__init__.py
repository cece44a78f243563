"""Scope guard: radloop's intended use is adult frontal (PA/AP) chest radiographs.

Decisions come from DICOM tags when present (Modality, ViewPosition, BodyPartExamined,
PatientAge; PS3.3 C.7.3.1, C.8.11.5, C.7.1.1) and from the image otherwise: the acquisition
classifier (:mod:`radloop.safety.scope.model`: frontal, lateral, CT/MR slice or other, trained
on images made from chest CTs, no real radiograph), a view classifier and an
out-of-distribution score on the reference model's embedding (Mahalanobis distance, Lee et
al., NeurIPS 2018) when plugged in, and model-free quality checks
(:mod:`radloop.safety.image_checks`).

- refused: CT, MR and other non-radiograph modalities, lateral views, other body parts, and
  untagged images the acquisition classifier gives a frontal probability under 0.5 (the
  reason names the likeliest other class: CT/MR slice, lateral, not a radiograph);
- flagged: children (age < 18), poor exposure, heavy collimation, possible rotation, an
  uncertain view, out-of-distribution images, an image that contradicts its tags;
- accepted: everything else.

Each decision lists its reasons, each with a code, words and the values behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from radloop.models.ood import MahalanobisScorer
from radloop.safety.image_checks import (
    ImageCheckThresholds,
    ImageMeasures,
    measure_small,
    shrink,
)
from radloop.safety.scope.model import (
    AcquisitionModel,
    AcquisitionPrediction,
    load_acquisition_classifier,
)
from radloop.study import Image, Study, StudyMetadata

__all__ = [
    "ADULT_AGE_YEARS",
    "MahalanobisScorer",
    "OODScorer",
    "ScopeDecision",
    "ScopeOutcome",
    "ScopeReason",
    "ViewClassifier",
    "assess_image",
    "assess_study",
    "guard_study",
    "ood_inputs",
    "study_decision",
    "tag_reasons",
]

ADULT_AGE_YEARS = 18.0
FRONTAL_MIN_PROBABILITY = 0.5
"""Without tags, an image whose frontal probability is below this is refused (flagged when
frontal is nevertheless the likeliest class)."""
DISAGREE_PROBABILITY = 0.9
"""With tags, a non-frontal class at or above this flags the disagreement."""
_LOOKS = {
    "frontal": "a frontal chest radiograph",
    "lateral": "a lateral radiograph",
    "ct": "a CT or MR slice",
    "other": "something other than a radiograph",
}
_CODES = {"lateral": "looks_lateral", "ct": "looks_like_ct", "other": "not_a_radiograph"}
_RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "PX"})
_FRONTAL_VIEWS = frozenset({"PA", "AP", "APS", "AP SUPINE", "PA ERECT", "AP ERECT"})
_LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "L", "RLD", "LLD", "XTABLE"})
_CHEST_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "TORSO"})


class ScopeOutcome(StrEnum):
    """What the scope guard decided, most permissive first."""

    ACCEPTED = "accepted"
    FLAGGED = "flagged"
    REFUSED = "refused"


@dataclass(frozen=True)
class ScopeReason:
    """One reason of a decision: a stable code, words, the outcome it argues for, the values."""

    code: str
    text: str
    outcome: ScopeOutcome
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "outcome": self.outcome.value,
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class ScopeDecision:
    """The decision for one image or study, with every reason (none when accepted)."""

    outcome: ScopeOutcome
    reasons: tuple[ScopeReason, ...] = ()
    source: str = ""
    measures: ImageMeasures | None = None

    @property
    def refused(self) -> bool:
        return self.outcome is ScopeOutcome.REFUSED

    @property
    def flagged(self) -> bool:
        return self.outcome is ScopeOutcome.FLAGGED

    @classmethod
    def from_reasons(cls, reasons: Sequence[ScopeReason], **kwargs: Any) -> ScopeDecision:
        order = list(ScopeOutcome)
        outcome = max((r.outcome for r in reasons), key=order.index, default=ScopeOutcome.ACCEPTED)
        return cls(outcome, tuple(reasons), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "outcome": self.outcome.value,
            "reasons": [r.to_dict() for r in self.reasons],
        }
        if self.measures is not None:
            out["measures"] = self.measures.to_dict()
        return out


@runtime_checkable
class ViewClassifier(Protocol):
    """Probabilities of view labels for an image (``PA``, ``AP``, ``LATERAL``, ``CT``, ...)."""

    def predict_view(self, image: Image) -> Mapping[str, float]: ...


@runtime_checkable
class OODScorer(Protocol):
    """An out-of-distribution score of an embedding and the threshold above which it is OOD."""

    @property
    def threshold(self) -> float: ...

    def score(self, embedding: npt.NDArray[np.floating[Any]]) -> float: ...


def _upper(value: str | None) -> str:
    return (value or "").strip().upper()


def tag_reasons(metadata: StudyMetadata, image: Image | None = None) -> list[ScopeReason]:
    """Reasons from DICOM attributes; an attribute that is absent gives none."""
    reasons = []
    modality = _upper(metadata.modality)
    if modality in ("CT", "MR"):
        reasons.append(
            ScopeReason(
                f"modality_{modality.lower()}",
                f"Modality is {modality}: radloop reads chest radiographs only",
                ScopeOutcome.REFUSED,
                {"Modality": modality},
            )
        )
    elif modality and modality not in _RADIOGRAPH_MODALITIES and modality != "OT":
        reasons.append(
            ScopeReason(
                "modality_not_radiograph",
                f"Modality is {modality}, not a radiograph (CR, DX)",
                ScopeOutcome.REFUSED,
                {"Modality": modality},
            )
        )
    view = _upper((image.view_position if image is not None else None) or metadata.view_position)
    if view in _LATERAL_VIEWS:
        reasons.append(
            ScopeReason(
                "view_lateral",
                f"ViewPosition is {view}: radloop reads frontal (PA/AP) views only",
                ScopeOutcome.REFUSED,
                {"ViewPosition": view},
            )
        )
    elif view and view not in _FRONTAL_VIEWS:
        reasons.append(
            ScopeReason(
                "view_unusual",
                f"ViewPosition is {view}, not PA or AP",
                ScopeOutcome.FLAGGED,
                {"ViewPosition": view},
            )
        )
    part = _upper(metadata.body_part)
    if part and part not in _CHEST_PARTS:
        reasons.append(
            ScopeReason(
                "body_part_not_chest",
                f"BodyPartExamined is {part}, not the chest",
                ScopeOutcome.REFUSED,
                {"BodyPartExamined": part},
            )
        )
    age = metadata.patient_age
    if age is not None and age < ADULT_AGE_YEARS:
        reasons.append(
            ScopeReason(
                "child",
                f"patient age {age:.1f} years is under {ADULT_AGE_YEARS:g}: "
                "radloop is not validated on children",
                ScopeOutcome.FLAGGED,
                {"PatientAge": round(age, 2)},
            )
        )
    return reasons


def _acquisition_reasons(
    prediction: AcquisitionPrediction, tags_known: bool, tag_view: str = ""
) -> list[ScopeReason]:
    """Reasons from the acquisition classifier (:mod:`radloop.safety.scope.model`).

    Without tags its word decides. In scope means frontal, so what counts is the frontal
    probability: below ``FRONTAL_MIN_PROBABILITY`` the image is refused, for the likeliest
    other class (however the rest is split among CT, lateral and other), or flagged when
    frontal is still the likeliest class. With tags it only flags a confident disagreement
    (tags are the better evidence, but a mislabelled series is worth a look).
    """
    label, p = prediction.label, prediction.probability
    frontal = float(prediction.probabilities.get("frontal", 0.0))
    values = {
        "class": label,
        "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
    }
    if tags_known:
        # What the tags say: a lateral view when ViewPosition says so, else a frontal one.
        tagged = "lateral" if tag_view in _LATERAL_VIEWS else "frontal"
        if label != tagged and p >= DISAGREE_PROBABILITY:
            return [
                ScopeReason(
                    "image_disagrees_with_tags",
                    f"the tags say {_LOOKS[tagged]} but the image looks like "
                    f"{_LOOKS[label]} ({p:.2f})",
                    ScopeOutcome.FLAGGED,
                    values,
                )
            ]
        return []
    if frontal >= FRONTAL_MIN_PROBABILITY:
        return []
    if label == "frontal":
        return [
            ScopeReason(
                "view_uncertain",
                f"the acquisition classifier is unsure this is a frontal chest "
                f"radiograph ({frontal:.2f})",
                ScopeOutcome.FLAGGED,
                values,
            )
        ]
    return [
        ScopeReason(
            _CODES[label],
            f"the image looks like {_LOOKS[label]} ({p:.2f}; frontal chest radiograph "
            f"{frontal:.2f})",
            ScopeOutcome.REFUSED,
            values,
        )
    ]


def _image_reasons(m: ImageMeasures, th: ImageCheckThresholds) -> list[ScopeReason]:
    """Quality flags from the model-free measures (exposure, rotation, collimation)."""
    reasons = []
    if m.clipped_high > th.clipped_high:
        reasons.append(
            ScopeReason(
                "clipped_highlights",
                f"{m.clipped_high:.1%} of the image is clipped white "
                "(overexposed display or burned-in labels)",
                ScopeOutcome.FLAGGED,
                {"clipped_high": round(m.clipped_high, 4)},
            )
        )
    if m.symmetry < th.symmetry_min:
        reasons.append(
            ScopeReason(
                "rotation_suspected",
                "the thorax is left-right asymmetric: the patient may be rotated",
                ScopeOutcome.FLAGGED,
                {"symmetry": round(m.symmetry, 3)},
            )
        )
    if m.dynamic_range < th.dynamic_range_min:
        reasons.append(
            ScopeReason(
                "low_dynamic_range",
                f"the image spans only {m.dynamic_range:.2f} of the grey "
                "range (under- or overexposed, or flat processing)",
                ScopeOutcome.FLAGGED,
                {"dynamic_range": round(m.dynamic_range, 4)},
            )
        )
    if m.clipped_low > th.clipped_low_max:
        reasons.append(
            ScopeReason(
                "clipped_shadows",
                f"{m.clipped_low:.0%} of the image is clipped black",
                ScopeOutcome.FLAGGED,
                {"clipped_low": round(m.clipped_low, 4)},
            )
        )
    if m.empty_border > th.empty_border_max:
        reasons.append(
            ScopeReason(
                "collimated_or_padded",
                f"{m.empty_border:.0%} of the image is empty border "
                "(tight collimation, cropping or padding)",
                ScopeOutcome.FLAGGED,
                {"empty_border": round(m.empty_border, 4)},
            )
        )
    return reasons


def _view_reasons(view: Mapping[str, float]) -> list[ScopeReason]:
    if not view:
        return []
    label = max(view, key=lambda k: view[k])
    p = view[label]
    values = {"view": label, "probability": round(p, 4)}
    if label.upper() in ("LATERAL", "LL", "RL", "L") and p >= 0.5:
        return [
            ScopeReason(
                "view_head_lateral",
                f"the view classifier says lateral ({p:.2f})",
                ScopeOutcome.REFUSED,
                values,
            )
        ]
    if label.upper() not in ("PA", "AP") and p >= 0.5:
        return [
            ScopeReason(
                "view_head_not_frontal",
                f"the view classifier says {label} ({p:.2f})",
                ScopeOutcome.REFUSED,
                values,
            )
        ]
    return []


def assess_image(
    image: Image,
    metadata: StudyMetadata | None = None,
    *,
    view_classifier: ViewClassifier | None = None,
    ood_scorer: OODScorer | None = None,
    embedding: npt.NDArray[np.floating[Any]] | None = None,
    thresholds: ImageCheckThresholds | None = None,
    acquisition: AcquisitionModel | bool = True,
) -> ScopeDecision:
    """The scope decision for one image: tags, then the acquisition classifier, the view
    head, OOD and the quality checks.

    ``acquisition`` is the classifier to use: ``True`` the shipped one, ``False`` none. Its
    refusals apply only when the tags say nothing about modality and view (no Modality or
    no ViewPosition): tags are the better evidence.
    """
    metadata = metadata or StudyMetadata()
    th = thresholds or ImageCheckThresholds()
    reasons = tag_reasons(metadata, image)
    tags_known = bool(
        _upper(metadata.modality) not in ("", "OT")
        and _upper(image.view_position or metadata.view_position)
    )
    small = shrink(image.pixels)  # one area-averaged copy for the classifier and the checks
    classifier = load_acquisition_classifier() if acquisition is True else acquisition
    if classifier is not False:
        tag_view = _upper(image.view_position or metadata.view_position)
        reasons += _acquisition_reasons(classifier.predict_one(small), tags_known, tag_view)
    if view_classifier is not None:
        reasons += _view_reasons(view_classifier.predict_view(image))
    if ood_scorer is not None and embedding is not None:
        score = ood_scorer.score(embedding)
        if score > ood_scorer.threshold:
            reasons.append(
                ScopeReason(
                    "out_of_distribution",
                    f"the image is far from the reference model's training "
                    f"data (score {score:.1f} > {ood_scorer.threshold:.1f})",
                    ScopeOutcome.FLAGGED,
                    {"score": round(score, 3), "threshold": round(ood_scorer.threshold, 3)},
                )
            )
    measures = measure_small(small)
    reasons += _image_reasons(measures, th)
    return ScopeDecision.from_reasons(reasons, source=str(image.source), measures=measures)


def ood_inputs(study: Study, output: Any, scorer: OODScorer | None) -> dict[str, Any]:
    """:func:`assess_study`'s OOD arguments from one verifier reading of the study.

    The verifier reads one image of a study (the reference model: the first tagged PA or AP,
    else the one that looks most frontal), so its embedding is placed at the study's first
    image tagged PA or AP, else at its first image. Nothing without a scorer or an embedding.
    """
    embedding = getattr(output, "embedding", None)
    if scorer is None or embedding is None:
        return {}
    frontal = next(
        (i for i, image in enumerate(study.images) if _upper(image.view_position) in ("PA", "AP")),
        0,
    )
    embeddings = [embedding if i == frontal else None for i in range(len(study.images))]
    return {"ood_scorer": scorer, "embeddings": embeddings}


def assess_study(
    study: Study,
    *,
    view_classifier: ViewClassifier | None = None,
    ood_scorer: OODScorer | None = None,
    embeddings: Sequence[npt.NDArray[np.floating[Any]] | None] | None = None,
    thresholds: ImageCheckThresholds | None = None,
    acquisition: AcquisitionModel | bool = True,
) -> list[ScopeDecision]:
    """One decision per image of a study, in order (a PA and a lateral: accept one, refuse
    the other)."""
    out = []
    for i, image in enumerate(study.images):
        embedding = embeddings[i] if embeddings is not None else None
        out.append(
            assess_image(
                image,
                study.metadata,
                view_classifier=view_classifier,
                ood_scorer=ood_scorer,
                embedding=embedding,
                thresholds=thresholds,
                acquisition=acquisition,
            )
        )
    return out


def study_decision(decisions: Sequence[ScopeDecision]) -> ScopeDecision | None:
    """The decision that stands for a whole study, from its images' decisions.

    A PA + lateral study is in scope through its PA: the study is refused only when every
    image is; otherwise the strictest decision among the images not refused stands (a flagged
    PA flags the study). None for a study without images.
    """
    if not decisions:
        return None
    order = list(ScopeOutcome)
    usable = [d for d in decisions if not d.refused] or list(decisions)
    return max(usable, key=lambda d: order.index(d.outcome))


def guard_study(study: Study, verifier: Any = None) -> ScopeDecision | None:
    """The scope decision that stands for ``study``, with the out-of-distribution flag from
    ``verifier``'s own OOD reference where it ships one (the reference model does)."""
    options: dict[str, Any] = {}
    inner = getattr(verifier, "inner", verifier)
    shipped = getattr(inner, "ood_scorer", None)
    scorer = shipped() if callable(shipped) else None
    if scorer is not None and verifier is not None:
        options = ood_inputs(study, verifier.verify(study), scorer)
    return study_decision(assess_study(study, **options))
