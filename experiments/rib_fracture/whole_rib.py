"""The contrast of a whole rib in the lab: remove the right 6th rib, measure the display change.

    .venv/bin/python experiments/rib_fracture/whole_rib.py
"""

from __future__ import annotations

import dataclasses

import numpy as np

from radloop.models.reference.data import worker_anatomy
from radloop.synth import findings as F
from radloop.synth import make_study
from radloop.synth.regions import regions
from radloop.synth.variation import profile


def no_rib(canvas: F.Canvas, rng: np.random.Generator) -> F.InsertedFinding:
    rib = regions(canvas.anatomy).rib("right", 6)
    hu = canvas.hu.ravel()
    print("rib HU p10/50/90", np.percentile(hu[rib], [10, 50, 90]).round(0), "voxels", rib.size)
    hu[rib] = 35.0
    canvas.claim(rib)
    return F.InsertedFinding(code="rib_fracture", voxels=rib.astype(np.int32))


def main() -> None:
    F._INSERTERS["rib_fracture"] = no_rib
    anatomy = worker_anatomy(None)
    site = dataclasses.replace(profile("standard"), lateral=False)
    a = make_study(anatomy, 5, 0, site=site, codes=["rib_fracture"])
    b = make_study(anatomy, 5, 0, site=site, codes=[])
    va, vb = next(iter(a.views.values())), next(iter(b.views.values()))
    diff = np.abs(va.exposure.display - vb.exposure.display)
    print(f"whole right 6th rib removed: peak {diff.max():.3f}, "
          f"90th percentile of the changed pixels {np.percentile(diff[diff > 0.002], 90):.3f}")


if __name__ == "__main__":
    main()
