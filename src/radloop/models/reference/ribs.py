"""The rib network: rib fractures read at about 1 mm per pixel from a crop of both lungs.

The lab draws a rib fracture as a break of the rib with the healing callus about it (a
spindle of new bone, 8–14 mm, :func:`radloop.synth.findings.callus_spheres`): the lab's 2 mm
working grid averages a rib's cortex away, so the break alone changes a radiograph by under
1 % of its range, and the callus is what a frontal film shows (``experiments/rib_fracture``).
The whole-image network at 1.6 mm per pixel never learned it (AUROC 0.56); the rib network is
trained like the nodule network, on callus inserted into the lab's line integrals
(:mod:`.ribs_train`).

It reads the nodule network's crop of the detector field — rows 8–84 %, columns 6–94 %
(both lungs and the lateral arcs of the 4th–9th ribs), 272 × 320 pixels, about 1.0 mm per
pixel — and gives a Platt-scaled presence logit (the most fracture-like cell) and stride-8
cells, pasted into the rib fracture heatmap; the fracture's zones come from the heatmap's
peak (:func:`.nodules.nodule_zones`). It reads only images of about 0.86 mm per pixel or
finer (``RIB_NETWORK.min_share``); elsewhere rib fractures are ``unassessed``. This module
needs only numpy.
"""

from __future__ import annotations

from radloop.models.reference.devices import CropNetwork
from radloop.models.reference.nodules import NODULE_NETWORK

__all__ = ["RIB_NETWORK", "ZONE_DIAMETER_MM"]

RIB_NETWORK = CropNetwork(
    name="ribs",
    findings=("rib_fracture",),
    crop=NODULE_NETWORK.crop,
    shape=NODULE_NETWORK.shape,
    stride=NODULE_NETWORK.stride,
    min_share=1.15,
    title="rib network",
)
"""``min_share`` 1.15: the crop's source must hold 1.15× the crop's pixels on each axis, so
the network reads images of about 0.86 mm per pixel or finer at the 360 mm field (the lab's
``standard`` 0.70 mm and ``community`` 0.80 mm profiles, not its ``portable`` 0.94 mm one).
A callus is a 0.05 contrast 8–14 mm across; on the coarse, noisy portable images the network
separated fractured from intact ribs with validation AUROC 0.70 against 0.93 / 0.91 on the
finer profiles (eighth session), so there rib fractures are ``unassessed``, as a bedside film
is a poor rib film."""

ZONE_DIAMETER_MM = 12.0
"""The extent a fracture's zones are read over about the heatmap's peak (a callus's size)."""
