"""Image truth: masks, boxes, zones, cardiothoracic ratio and sizes measured on the projection.

Zones follow the convention of docs/architecture.md: on a frontal image each lung is split
into thirds of its craniocaudal extent (apex to the lowest point of the lung field), right and
left of the projected spine. The cardiothoracic ratio is the widest transverse heart shadow
over the widest internal thoracic diameter (Danzer 1919), both measured on the projected label
masks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.synth.findings import InsertedFinding
from radloop.lab.synth.phantom import MU_WATER_PER_MM, Phantom, RenderedView
from radloop.models.reference.lungfields import widest_row
from radloop.report.types import Change, Finding, Severity
from radloop.vocabulary import Lobe, Side, VertebralLevel, Zone

__all__ = [
    "SCHEMA",
    "cardiothoracic_ratio",
    "finding_truth",
    "measured_diameter_mm",
    "patient_left",
    "truth_findings",
    "view_truth",
    "zone_map",
]

Bool = npt.NDArray[np.bool_]
I8 = npt.NDArray[np.int8]

SCHEMA = "radloop.lab.synth/truth-v1"
ZONE_SHARE = 0.1  # a zone is listed when it holds at least this share of a mask
_ZONES = list(Zone)


def patient_left(view: RenderedView) -> Bool:
    """Pixels on the patient's left of a frontal image.

    A pixel that only one lung projects onto belongs to that lung's side (the right lower
    lobe's medial recess reaches behind the spine); elsewhere the projected spine divides.
    """
    rows, cols = view.heart_mask.shape
    col = np.arange(cols)[None, :]
    left = np.broadcast_to(col >= view.midline[:, None], (rows, cols)).copy()
    right_lung, left_lung = view.lung_masks["right"], view.lung_masks["left"]
    left[right_lung & ~left_lung] = False
    left[left_lung & ~right_lung] = True
    return left


def zone_map(view: RenderedView) -> I8:
    """Index into ``list(Zone)`` of every pixel of a frontal image (-1 where undefined)."""
    rows, cols = view.heart_mask.shape
    out = np.full((rows, cols), -1, dtype=np.int8)
    right_of_image = patient_left(view)
    for side, offset in (("right", 0), ("left", 3)):
        lung = view.lung_masks.get(side)
        if lung is None or not lung.any():
            continue
        hit = np.flatnonzero(lung.any(axis=1))
        apex, base = int(hit[0]), int(hit[-1])
        third = (base - apex + 1) / 3
        level = np.clip(((np.arange(rows) - apex) // third).astype(int), 0, 2)
        on_side = right_of_image if side == "left" else ~right_of_image
        out[on_side] = (offset + np.broadcast_to(level[:, None], (rows, cols)))[on_side]
    return out


def _zones(mask: Bool, zones: I8) -> tuple[tuple[Zone, ...], dict[str, float]]:
    inside = zones[mask]
    inside = inside[inside >= 0]
    if inside.size == 0:
        return (), {}
    counts = np.bincount(inside, minlength=6) / mask.sum()
    fractions = {_ZONES[i].value: round(float(c), 4) for i, c in enumerate(counts) if c > 0}
    listed = tuple(_ZONES[i] for i, c in enumerate(counts) if c >= ZONE_SHARE)
    return listed, fractions


def cardiothoracic_ratio(view: RenderedView) -> dict[str, float]:
    """Heart and internal thoracic widths (mm on the detector) and their ratio."""
    pixel = view.geometry.pixel_mm
    heart, _, _ = widest_row(view.heart_mask)
    lungs = view.lung_masks["right"] | view.lung_masks["left"]
    thorax, _, _ = widest_row(lungs)
    ratio = heart / thorax if thorax else math.nan
    return {
        "ctr": round(ratio, 4),
        "heart_width_mm": round(heart * pixel, 1),
        "thorax_width_mm": round(thorax * pixel, 1),
    }


def measured_diameter_mm(
    layer: npt.NDArray[np.float32], delta_hu: float, pixel_mm: float, magnification: float
) -> float:
    """A sphere's diameter from its projection: moments of its chord image.

    A sphere of radius r seen at magnification m has ∫chord dA = (4/3)π r³ m² and a largest
    chord of 2r, so r = sqrt(3 ∫chord dA / (2π max chord)) / m, whatever the pixel size.
    """
    chord = layer / (MU_WATER_PER_MM * delta_hu / 1000.0)
    peak = float(chord.max())
    if peak <= 0:
        return 0.0
    moment = float(chord.sum()) * pixel_mm**2
    return 2.0 * math.sqrt(3.0 * moment / (2.0 * math.pi * peak)) / magnification


def view_truth(
    phantom: Phantom, view: RenderedView, mask_files: dict[str, str] | None = None
) -> dict[str, Any]:
    """Truth of one image: per finding its mask, box, zones and measurements."""
    geometry = view.geometry
    zones = zone_map(view) if geometry.view.frontal else None
    out: dict[str, Any] = {
        "view": geometry.view.value,
        "rows": geometry.rows,
        "cols": geometry.cols,
        "pixel_spacing_mm": [geometry.pixel_mm, geometry.pixel_mm],
        "sid_mm": geometry.sid_mm,
        "collimated_field": list(view.exposure.field),
    }
    if geometry.view.frontal:
        out.update(cardiothoracic_ratio(view))
    findings = []
    for finding in phantom.findings:
        mask = view.masks.get(finding.id)
        entry: dict[str, Any] = {"id": finding.id, "code": finding.code}
        if mask is None or not mask.any():
            entry.update({"visible": False, "box": None, "area_px": 0})
            findings.append(entry)
            continue
        r = np.flatnonzero(mask.any(axis=1))
        c = np.flatnonzero(mask.any(axis=0))
        entry.update(
            {
                "visible": True,
                "box": [int(c[0]), int(r[0]), int(c[-1]) + 1, int(r[-1]) + 1],
                "area_px": int(mask.sum()),
            }
        )
        if mask_files and finding.id in mask_files:
            entry["mask"] = mask_files[finding.id]
        if zones is not None and finding.code not in _NO_ZONE:
            listed, fractions = _zones(mask, zones)
            entry["zones"] = [z.value for z in listed]
            entry["zone_fractions"] = fractions
        if finding.centre_mm is not None:
            centre = phantom.deformation.apply_points(np.asarray(finding.centre_mm, np.float32))
            u, v, t = geometry.project(centre)
            entry["centre_px"] = [round(float(u[0]), 2), round(float(v[0]), 2)]
            entry["magnification"] = round(float(t[0]), 4)
            if finding.code in ("nodule", "mass") and finding.id in view.finding_layers:
                sphere = finding.spheres[0]
                entry["measured_diameter_mm"] = round(
                    measured_diameter_mm(
                        view.finding_layers[finding.id], sphere.delta_hu, geometry.pixel_mm,
                        float(t[0]),
                    ), 2,
                )  # fmt: skip
                entry["image_size_mm"] = round(2 * sphere.radius_mm * float(t[0]), 2)
        findings.append(entry)
    out["findings"] = findings
    return out


_NO_ZONE = {"cardiomegaly", "endotracheal_tube", "central_venous_catheter"}


def finding_truth(finding: InsertedFinding, zones: list[str] | None) -> dict[str, Any]:
    """The study-level truth of one finding, in the vocabulary of ``radloop.report``."""
    return {
        "id": finding.id,
        "code": finding.code,
        "presence": "present",
        "side": finding.side.value if finding.side else None,
        "lobes": [lobe.value for lobe in finding.lobes],
        "zones": zones or [],
        "vertebral_level": finding.vertebral_level.value if finding.vertebral_level else None,
        "size_mm": finding.size_mm,
        "severity": finding.severity.value if finding.severity else None,
        "change": None,
        "tip_distance_mm": finding.tip_distance_mm,
        "tip_reference": finding.tip_reference,
        "centre_mm": [round(v, 2) for v in finding.centre_mm] if finding.centre_mm else None,
        "details": finding.details,
    }


def _level(value: str | None) -> VertebralLevel | None:
    return VertebralLevel(value) if value else None


def truth_findings(truth: dict[str, Any]) -> tuple[Finding, ...]:
    """The findings of a ``truth.json`` as ``radloop.report`` findings, for comparison."""
    out = []
    for item in truth.get("findings", []):
        if item.get("presence", "present") != "present":
            continue
        size = item.get("size_mm")
        out.append(
            Finding(
                code=item["code"],
                side=Side(item["side"]) if item.get("side") else None,
                zones=tuple(Zone(z) for z in item.get("zones", [])),
                lobes=tuple(Lobe(lobe) for lobe in item.get("lobes", [])),
                vertebral_level=_level(item.get("vertebral_level")),
                size_mm=float(size) if size else None,
                severity=Severity(item["severity"]) if item.get("severity") else None,
                change=Change(item["change"]) if item.get("change") else None,
                tip_distance_mm=item.get("tip_distance_mm"),
                tip_reference=item.get("tip_reference"),
                source="radloop.lab.synth truth",
            )
        )
    return tuple(out)
