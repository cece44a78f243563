"""Rib fractures for the lung network (:mod:`.lungs_train`): inserting the lab's healing
fracture into line integrals, and the validation figures.

A site on the lateral arc of a 4th–9th rib is drawn as the lab draws it
(:func:`radloop.lab.synth.findings.fracture_site`) and the lab's own callus is added there
(:func:`~radloop.lab.synth.findings.callus_spheres`: its chord lengths times its attenuation,
exactly as the lab renders it), before the lab's own exposure. The break itself, under 1 % of
the display on the lab's 2 mm grid, is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.models.reference.metrics import best_threshold
from radloop.stats import auroc

__all__ = ["insert_fractures", "validate_ribs"]

F32 = npt.NDArray[np.float32]


def insert_fractures(
    line: F32, phantom: Any, geometry: Any, rng: np.random.Generator, count: int
) -> tuple[F32, list[tuple[float, float, float, float]]]:
    """``line`` with ``count`` healing rib fractures added as the lab draws them, and each
    one's (row, col, callus diameter mm, magnification) on the image."""
    from radloop.lab.synth.findings import callus_spheres, fracture_site
    from radloop.lab.synth.phantom import MU_WATER_PER_MM
    from radloop.lab.synth.projector import sphere_line_integral

    out = np.array(line, dtype=np.float32, copy=True)
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        site = fracture_site(phantom.anatomy, rng)
        if site is None:
            continue
        spheres = callus_spheres(site.positions, site.at, rng)
        for sphere in spheres:
            centre = phantom.deformation.apply_points(np.asarray(sphere.centre, np.float32))
            patch, (r0, c0, r1, c1) = sphere_line_integral(geometry, centre[0], sphere.radius_mm)
            out[r0:r1, c0:c1] += patch * np.float32(MU_WATER_PER_MM * sphere.delta_hu / 1000.0)
        at = phantom.deformation.apply_points(np.asarray(site.at, np.float32).reshape(1, 3))
        u, v, t = geometry.project(at)
        diameter = 2.0 * spheres[0].radius_mm
        placed.append((float(v[0]), float(u[0]), diameter, float(t[0])))
    return out, placed


def validate_ribs(probabilities: npt.NDArray[np.float64], ribs: F32) -> dict[str, Any]:
    """AUROC and the F1 threshold on studies with and without the lab's own fracture."""
    y = np.asarray((ribs[:, :, 2] > 0).any(axis=1), dtype=bool)
    value = auroc(y, probabilities)
    return {
        "n_images": len(y),
        "n_fractures": int(y.sum()),
        "auroc": {"rib_fracture": None if np.isnan(value) else round(float(value), 4)},
        "thresholds": {"rib_fracture": round(best_threshold(y, probabilities), 4)},
    }
