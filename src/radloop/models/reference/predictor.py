"""From the reference network's outputs to structured findings (``radloop.report.Finding``).

A finding is reported when its probability reaches the threshold chosen on the validation
split (highest F1, stored in ``reference.json``). Zones come from the zone heads (each zone at
probability ≥ 0.5, else the likeliest one); the side follows from the zones. Sizes and tip
distances come from the regression heads; severities use the synthetic lab's definitions
(effusion by volume, pneumothorax by rim ≥ 20 mm after the BTS 2010 guideline, edema by
density, cardiomegaly by cardiothoracic ratio). Finding types whose validation AUROC is below
``MIN_RELIABLE_AUROC`` are never reported (see :func:`reliable_findings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.models.reference.runtime import (
    MIN_RELIABLE_AUROC,
    ReferenceOutput,
    assessed_findings,
    reliable_findings,
)
from radloop.models.reference.spec import FINDINGS, ZONED
from radloop.report import Finding, Presence
from radloop.report.types import Severity
from radloop.vocabulary import Side, Zone

__all__ = [
    "EXTENTS",
    "MIN_RELIABLE_AUROC",
    "MODEL_SOURCE",
    "extents_from_output",
    "findings_from_output",
    "local_from_output",
    "reliable_findings",
    "severity_of",
]

MODEL_SOURCE = "radloop-reference"
_RIGHT = {Zone.RIGHT_UPPER, Zone.RIGHT_MIDDLE, Zone.RIGHT_LOWER}


def _zones(output: ReferenceOutput, code: str, threshold: float) -> tuple[Zone, ...]:
    probabilities = output.zone_probabilities[code]
    chosen = tuple(z for z, p in probabilities.items() if p >= threshold)
    return chosen or (max(probabilities, key=lambda z: probabilities[z]),)


def _side(zones: tuple[Zone, ...]) -> Side | None:
    if not zones:
        return None
    right = any(z in _RIGHT for z in zones)
    left = any(z not in _RIGHT for z in zones)
    return Side.BILATERAL if right and left else Side.RIGHT if right else Side.LEFT


def severity_of(code: str, regressions: Mapping[str, float]) -> Severity | None:
    """Severity words from the regression heads, on the synthetic lab's scales."""
    if code == "pleural_effusion":
        ml = regressions["effusion_ml"]
        return Severity.SMALL if ml < 500 else Severity.MODERATE if ml < 1000 else Severity.LARGE
    if code == "pneumothorax":
        return Severity.LARGE if regressions["pneumothorax_rim_mm"] >= 20.0 else Severity.SMALL
    if code == "edema":
        return Severity.MILD if regressions["edema_hu"] < 200.0 else Severity.MODERATE
    if code == "cardiomegaly":
        ctr = regressions["ctr"]
        return Severity.MILD if ctr < 0.55 else Severity.MODERATE if ctr < 0.6 else Severity.SEVERE
    return None


def _size(code: str, regressions: Mapping[str, float]) -> float | None:
    name = {"nodule": "nodule_mm", "mass": "mass_mm", "pneumothorax": "pneumothorax_rim_mm"}
    if code not in name:
        return None
    return round(max(1.0, regressions[name[code]]), 1)


EXTENTS: dict[str, str] = {
    "nodule": "nodule_mm",
    "mass": "mass_mm",
    "pneumothorax": "pneumothorax_rim_mm",
    "pleural_effusion": "effusion_ml",
    "consolidation": "consolidation_ml",
    "edema": "edema_hu",
    "cardiomegaly": "ctr",
}
"""The regression head that measures each finding's extent (for comparing two studies)."""


def extents_from_output(output: ReferenceOutput, sidecar: Mapping[str, Any]) -> dict[str, float]:
    """The extent of each reportable finding type, whether or not it is called present."""
    reliable = assessed_findings(output, sidecar)
    return {
        code: float(output.regressions[name])
        for code, name in EXTENTS.items()
        if code in reliable and output.regressions.get(name, 0.0) > 0
    }


def local_from_output(
    output: ReferenceOutput, sidecar: Mapping[str, Any]
) -> dict[str, npt.NDArray[np.float32]]:
    """Each assessed finding type's heatmap (the network's field grid) over its threshold:
    1.0 is where the model would report it (``models.LocalPredictor``)."""
    thresholds: Mapping[str, float] = sidecar["thresholds"]
    reliable = assessed_findings(output, sidecar)
    return {
        code: np.asarray(
            output.heatmaps[FINDINGS.index(code)] / max(thresholds.get(code, 0.5), 1e-6),
            dtype=np.float32,
        )
        for code in FINDINGS
        if code in reliable
    }


def findings_from_output(
    output: ReferenceOutput, sidecar: Mapping[str, Any]
) -> tuple[Finding, ...]:
    """The positive findings of one frontal image, with their probabilities."""
    thresholds: Mapping[str, float] = sidecar["thresholds"]
    zone_threshold = float(sidecar.get("zone_threshold", 0.5))
    reliable = assessed_findings(output, sidecar)
    regressions = output.regressions
    out = []
    for code in FINDINGS:
        if code not in reliable:
            continue
        p = output.probabilities[code]
        if p < thresholds.get(code, 0.5):
            continue
        zones = _zones(output, code, zone_threshold) if code in ZONED else ()
        side = Side.BILATERAL if code == "edema" else _side(zones)
        tip = None
        if code == "endotracheal_tube":
            tip = round(regressions["ett_tip_mm"], 0)
        elif code == "central_venous_catheter":
            tip = round(regressions["cvc_tip_mm"], 0)
        out.append(
            Finding(
                code=code,
                presence=Presence.PRESENT,
                side=side,
                zones=zones,
                size_mm=_size(code, regressions),
                severity=severity_of(code, regressions),
                tip_distance_mm=tip,
                tip_reference="carina" if tip is not None else None,
                probability=round(p, 4),
                source=MODEL_SOURCE,
            )
        )
    return tuple(out)
