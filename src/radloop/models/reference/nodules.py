"""Where a lung lesion read on a crop lies: its lung zones (:func:`nodule_zones`).

The whole-image network's zone heads cannot place a nodule or a rib fracture they do not see,
so the lung network's findings (:mod:`.lungs`) get their zones from where they are on the
image: a nodule from where the caliper found it, a fracture about its heatmap's peak. The
lab's zones are thirds of each lung's height, and ``LUNG_ROWS`` are the median apex and base
of each lung as fractions of the field's height over 150 lab studies of the training profiles
(seed 4711; standard deviation about 0.025, 9 mm), the midline the field's centre (0.497).
"""

from __future__ import annotations

import numpy as np

from radloop.models.reference.spec import FIELD_MM
from radloop.vocabulary import Zone

__all__ = ["LUNG_ROWS", "nodule_zones"]

LUNG_ROWS: dict[str, tuple[float, float]] = {"right": (0.125, 0.900), "left": (0.082, 0.822)}
MIDLINE = 0.497
ZONE_SHARE = 0.1  # as the lab's truth: a zone is listed when it holds this share of the lesion


def nodule_zones(
    centre_rc: tuple[float, float],
    diameter_mm: float,
    image_shape: tuple[int, int],
    spacing_mm: tuple[float, float],
    field_mm: float = FIELD_MM,
) -> tuple[Zone, ...]:
    """The zones a nodule of ``diameter_mm`` centred at ``centre_rc`` (image pixels) lies in:
    those holding at least ``ZONE_SHARE`` of its disc, on the lab's framing (frontal view,
    the patient's right on the image's left)."""
    field = (field_mm / spacing_mm[0], field_mm / spacing_mm[1])
    offset = ((image_shape[0] - field[0]) / 2, (image_shape[1] - field[1]) / 2)
    row = (centre_rc[0] - offset[0]) / field[0]
    col = (centre_rc[1] - offset[1]) / field[1]
    radius = diameter_mm / 2 / field_mm
    grid = np.linspace(-1.0, 1.0, 21)
    dy, dx = np.meshgrid(grid, grid, indexing="ij")
    inside = dy**2 + dx**2 <= 1.0
    rows, cols = row + radius * dy[inside], col + radius * dx[inside]
    zones = list(Zone)
    counts = np.zeros(len(zones))
    for side, offset_index, on_side in (("right", 0, cols < MIDLINE), ("left", 3, cols >= MIDLINE)):
        apex, base = LUNG_ROWS[side]
        level = np.clip(np.floor((rows[on_side] - apex) / ((base - apex) / 3)), 0, 2).astype(int)
        np.add.at(counts, offset_index + level, 1.0)
    share = counts / max(counts.sum(), 1.0)
    return tuple(z for z, s in zip(zones, share, strict=True) if s >= ZONE_SHARE)
