"""The reference model's real-film domain: declared from measurement, per finding type.

A finding type enters the real-film domain only when its figures on real films, measured by
``radloop bench sim2real`` on a labelled collection, meet that type's bar (:data:`BARS`).
``radloop bench sim2real --write-domain DIR`` writes the measurement and the verdict per type
to ``DIR/realfilm-domain.json``; the built-in model reads that file beside its weights. With
no file, or no type that met its bar, the model has no real-film domain: it abstains on real
films and, as a verifier, is silent (docs/safety.md).

Only ``lung_opacity`` can be measured on the real collections radloop is given (Brixia zone
scores); the other types have no real labels (no device, cardiomegaly or effusion labels), so
no figure can admit them and they stay outside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radloop.errors import InputError
from radloop.report import Change

__all__ = [
    "BARS",
    "CHANGE_BARS",
    "CHANGE_TOLERANCE",
    "REALFILM_DOMAIN",
    "RealFilmDomain",
    "declare_domain",
    "opacity_evidence",
    "opacity_probability",
    "zone_direction",
]

REALFILM_DOMAIN = "realfilm-domain.json"

CHANGE_TOLERANCE = 0.05
"""A zone's opacity score must move by at least this between two films for its opacity to be
stated increased or decreased; less is stated stable."""

BARS: dict[str, dict[str, tuple[str, float]]] = {
    "lung_opacity": {
        "zone_auroc": (">=", 0.75),
        "opacity_side_accuracy": (">=", 0.80),
        "lung_dice": (">=", 0.90),
    },
}
"""Per finding type: each figure (a key of ``radloop bench sim2real``'s result) and its bar.
Every bar of a type must be met by the measured value."""

CHANGE_BARS: dict[str, dict[str, tuple[str, float]]] = {
    "lung_opacity": {"change_zone_accuracy": (">=", 0.70)},
}
"""Per finding type: the bars its change must meet before ``compare`` states it zone by zone
on real films (the type itself must be admitted as well)."""


def _met(value: float | None, bar: tuple[str, float]) -> bool:
    if value is None:
        return False
    op, limit = bar
    return value >= limit if op == ">=" else value <= limit


def zone_direction(prior: float, current: float, tolerance: float = CHANGE_TOLERANCE) -> Change:
    """The change stated for one zone from its two scores: increased or decreased when the
    score moved by at least ``tolerance``, else stable."""
    step = current - prior
    if step >= tolerance:
        return Change.INCREASED
    if step <= -tolerance:
        return Change.DECREASED
    return Change.STABLE


def declare_domain(
    result: Mapping[str, Any],
    *,
    collection: str,
    opacity_threshold: float,
    change_tolerance: float = CHANGE_TOLERANCE,
) -> dict[str, Any]:
    """The domain file's content from one ``sim2real`` result (its JSON dict)."""
    types: dict[str, Any] = {}
    for code, bars in BARS.items():
        figures = _figures(result, bars)
        types[code] = {"figures": figures, "met": all(f["met"] for f in figures.values())}
    for code, bars in CHANGE_BARS.items():
        figures = _figures(result, bars)
        met = all(f["met"] for f in figures.values()) and types.get(code, {}).get("met", False)
        types.setdefault(code, {"figures": {}, "met": False})["change"] = {
            "figures": figures,
            "met": met,
        }
    return {
        "schema": "radloop.realfilm-domain/1",
        "collection": collection,
        "reader": result.get("reader"),
        "opacity_threshold": opacity_threshold,
        "change_tolerance": change_tolerance,
        "types": types,
        "findings": sorted(code for code, t in types.items() if t["met"]),
        "changes": sorted(code for code, t in types.items() if t.get("change", {}).get("met")),
    }


def _figures(result: Mapping[str, Any], bars: Mapping[str, tuple[str, float]]) -> dict[str, Any]:
    """Each barred figure of a ``sim2real`` result: value, interval, count, bar, met."""
    figures: dict[str, Any] = {}
    for key, bar in bars.items():
        entry = result.get(key) or {}
        value = entry.get("value") if isinstance(entry, Mapping) else None
        figures[key] = {
            "value": value,
            "ci95": entry.get("ci95") if isinstance(entry, Mapping) else None,
            "n": entry.get("n") if isinstance(entry, Mapping) else None,
            "bar": f"{bar[0]} {bar[1]}",
            "met": _met(value, bar),
        }
    return figures


@dataclass(frozen=True)
class RealFilmDomain:
    """The declared real-film domain: the finding types admitted and the figures behind them."""

    findings: tuple[str, ...]
    collections: tuple[str, ...]
    opacity_threshold: float
    figures: Mapping[str, float] = field(default_factory=dict)
    change_tolerance: float = CHANGE_TOLERANCE
    changes: tuple[str, ...] = ()
    """The admitted types whose change by zone also met its bars (:data:`CHANGE_BARS`)."""

    @classmethod
    def from_file(cls, path: Path) -> RealFilmDomain:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            findings = tuple(str(c) for c in data["findings"])
            threshold = float(data["opacity_threshold"])
            tolerance = float(data.get("change_tolerance", CHANGE_TOLERANCE))
            changes = tuple(str(c) for c in data.get("changes", []) if c in findings)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"a real-film domain file ({REALFILM_DOMAIN}: findings, opacity_threshold)",
                f"{path}: {error}",
            ) from error
        figures: dict[str, float] = {}
        for code, entry in dict(data.get("types", {})).items():
            for key, figure in dict(entry.get("figures", {})).items():
                if figure.get("value") is not None:
                    figures[f"{key}.{code}"] = float(figure["value"])
        collections = (str(data.get("collection", "")),)
        return cls(findings, collections, threshold, figures, tolerance, changes)


def findings_from_fields(fields: Any, domain: RealFilmDomain, source: str) -> tuple[Any, ...]:
    """The admitted findings of one real film from its lung-fields reading.

    ``lung_opacity`` is present when either lung's mean opacity probability reaches the
    domain's threshold; its zones are those whose score reaches it (else the likeliest), its
    side follows from the zones, its probability is the highest side score.
    """
    from radloop.report import Finding, Presence
    from radloop.vocabulary import Side, Zone

    if "lung_opacity" not in domain.findings:
        return ()
    sides = fields.side_scores()
    scores: dict[Zone, float] = {
        z: v
        for z, v in fields.zone_scores().items()
        if v == v  # NaN: an empty zone
    }
    best = max((v for v in sides.values() if v == v), default=0.0)
    if best < domain.opacity_threshold or not scores:
        return ()
    zones = tuple(z for z, v in scores.items() if v >= domain.opacity_threshold)
    zones = zones or (max(scores, key=lambda z: scores[z]),)
    right = any(z.side is Side.RIGHT for z in zones)
    left = any(z.side is Side.LEFT for z in zones)
    side = Side.BILATERAL if right and left else Side.RIGHT if right else Side.LEFT
    return (
        Finding(
            code="lung_opacity",
            presence=Presence.PRESENT,
            side=side,
            zones=zones,
            probability=round(float(best), 4),
            source=source,
        ),
    )


def opacity_probability(score: float, threshold: float) -> float:
    """A lung-fields opacity score on the verifier's scale: piecewise linear, 0 at 0, 0.5 at
    the domain's opacity threshold (where the drafter states opacity) and 1 at 1.

    Not a calibrated probability: the threshold was chosen on the lab, and what a score means
    on a site's films is learnt from its signed reports (docs/safety.md, calibration)."""
    score = min(max(float(score), 0.0), 1.0)
    if threshold <= 0.0 or threshold >= 1.0:
        return score
    if score < threshold:
        return 0.5 * score / threshold
    return 0.5 + 0.5 * (score - threshold) / (1.0 - threshold)


def opacity_evidence(fields: Any, domain: RealFilmDomain) -> dict[str, Any]:
    """What the reference verifier may say about one real film in the domain: lung opacity's
    probability (the higher side), per zone, and its map within the lung fields; empty when
    ``lung_opacity`` is not admitted."""
    import numpy as np

    if "lung_opacity" not in domain.findings:
        return {"presence": {}, "zones": {}, "heatmaps": {}}
    t = domain.opacity_threshold
    sides = [v for v in fields.side_scores().values() if v == v]
    zones = {z: opacity_probability(v, t) for z, v in fields.zone_scores().items() if v == v}
    heatmap = np.where(fields.lungs, fields.opacity, 0.0).astype(np.float32)
    return {
        "presence": {"lung_opacity": opacity_probability(max(sides, default=0.0), t)},
        "zones": {"lung_opacity": zones},
        "heatmaps": {"lung_opacity": heatmap},
    }
