"""The lung network: lung nodules and rib fractures read in one pass over a crop of both lungs.

The whole-image network sees the chest at 1.6 mm per pixel and never learned the lab's
nodules (validation AUROC 0.59) or its rib fractures (0.56). Nodules: a crop network trained
on about 1,200 lab studies with nodules does not learn them either (0.63) — the lab's anatomy
is full of nodule-sized blobs (vessels, rib crossings) of the same contrast — but trained on
nodules *inserted* into the lab's line integrals (a sphere's chord length times its
attenuation, added before the lab's exposure, scatter, blur, noise and tone curve) it does
(0.91). Rib fractures: the lab draws each with its healing callus (a spindle of new bone
8–14 mm across on the lateral arc of a 4th–9th rib; the break alone is under 1 % of the
display on the lab's 2 mm grid), and a crop network trained on inserted calluses learns it.
The lung network is that one design with two output channels, trained on lab studies into
which both are inserted (:mod:`radloop.lab.training.reference.lungs_train`): one pass per
image instead of two (each about 60 ms on 2 cores), one set of renders, and a callus and a
nodule told apart by the same network on the same backgrounds.

It reads a fixed crop of the detector field — rows 8–84 %, columns 6–94 % (both lungs and the
lateral arcs of the ribs), 272 × 320 pixels, about 1.0 mm per pixel at the 360 mm field — and
gives

- ``presence`` (B, 2) logits (nodule, rib fracture): each channel's most object-like cell,
  Platt-scaled per finding by the sidecar's ``presence_calibration`` (fitted on lab studies
  with the lab's own nodules and fractures);
- ``cells``    (B, 2, 34, 40) logits on the crop's stride-8 grid, pasted into the heatmaps:
  the caliper (:mod:`.caliper`) measures a nodule about its peak, and a fracture's zones are
  read about its peak over ``ZONE_DIAMETER_MM`` (:func:`.nodules.nodule_zones`).

Nodules are read on images of about 1.1 mm per pixel or finer (``min_share`` 0.9: the coarsest
training profile, ``portable``, is 0.94 mm). Rib fractures need more (``finding_min_share``
1.15: about 0.86 mm per pixel or finer, the lab's ``standard`` 0.70 mm and ``community``
0.80 mm, not ``portable``): a callus is a 0.05 contrast 8–14 mm across, and on the coarse,
noisy portable images a rib-fracture crop network separates fractured from intact ribs with
validation AUROC 0.70 against 0.93 / 0.91 on the finer profiles — as a bedside film
is a poor rib film. Elsewhere they are ``unassessed``. This module needs only numpy;
:class:`~.devices.CropRuntime` runs ``lungs.onnx``.
"""

from __future__ import annotations

from radloop.models.reference.devices import CropNetwork

__all__ = ["LUNG_NETWORK", "RIB_MIN_SHARE", "ZONE_DIAMETER_MM"]

RIB_MIN_SHARE = 1.15
"""The crop's source must hold this many times the crop's pixels on each axis for rib
fractures to be read (about 0.86 mm per pixel or finer at the 360 mm field)."""

LUNG_NETWORK = CropNetwork(
    name="lungs",
    findings=("nodule", "rib_fracture"),
    crop=(0.08, 0.84, 0.06, 0.94),
    shape=(272, 320),
    stride=8,
    min_share=0.9,
    title="lung network",
    finding_min_share=(("rib_fracture", RIB_MIN_SHARE),),
)

ZONE_DIAMETER_MM = 12.0
"""The extent a fracture's zones are read over about the heatmap's peak (a callus's size)."""
