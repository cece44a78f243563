"""The nodule network: lung nodules read at about 1 mm per pixel from a crop of both lungs.

The whole-image network sees the chest at 1.6 mm per pixel and never learned the lab's
nodules (validation AUROC 0.59); a crop network trained like the device network on about
1200 lab studies with nodules did not either (0.63, sixth session): the lab's anatomy is full
of nodule-sized blobs (vessels, rib crossings) of the same contrast, and a thousand nodules
are too few examples to learn the difference. The nodule network is trained on nodules
*inserted* into the lab's line integrals instead — a sphere's chord length times its
attenuation, added before the lab's exposure, scatter, blur, noise and tone curve — so every
training image holds new nodules of known place and size on a new background, at the cost
of one exposure (:mod:`.nodules_train`).

It reads a fixed crop of the detector field — rows 8–84 %, columns 6–94 % (both lungs), 272 ×
320 pixels, about 1.0 mm per pixel at the 360 mm field — and gives

- ``presence`` (B, 1) logit: the most nodule-like cell (maximum over cells), Platt-scaled by
  the sidecar's ``presence_calibration`` (fitted on lab studies with the lab's own nodules);
- ``cells``    (B, 1, 34, 40) logits on the crop's stride-8 grid, pasted into the main
  heatmap: the caliper (:mod:`.caliper`) measures the nodule about its peak.

It reads only images of about 1.1 mm per pixel or finer (``min_share`` 0.9: its coarsest
training profile is 0.94 mm); elsewhere nodules are ``unassessed``. This module needs only
numpy; :class:`~.devices.CropRuntime` runs ``nodules.onnx``.

The whole-image network's zone heads cannot place a nodule they do not see, so a nodule's
zones come from where the caliper found it (:func:`nodule_zones`): the lab's zones are thirds
of each lung's height, and ``LUNG_ROWS`` are the median apex and base of each lung as
fractions of the field's height over 150 lab studies of the training profiles (seed 4711;
standard deviation about 0.025, 9 mm), the midline the field's centre (0.497).
"""

from __future__ import annotations

import numpy as np

from radloop.models.reference.devices import CropNetwork
from radloop.models.reference.spec import FIELD_MM
from radloop.vocabulary import Zone

__all__ = ["LUNG_ROWS", "NODULE_NETWORK", "nodule_zones"]

LUNG_ROWS: dict[str, tuple[float, float]] = {"right": (0.125, 0.900), "left": (0.082, 0.822)}
MIDLINE = 0.497
ZONE_SHARE = 0.1  # as the lab's truth: a zone is listed when it holds this share of the lesion

NODULE_NETWORK = CropNetwork(
    name="nodules",
    findings=("nodule",),
    crop=(0.08, 0.84, 0.06, 0.94),
    shape=(272, 320),
    stride=8,
    min_share=0.9,
    title="nodule network",
)


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
