"""How visible is a lab rib fracture? Renders studies with and without one (same streams).

    .venv/bin/python experiments/rib_fracture/visible.py [--design lab|displaced] [--n 8]

Prints, per study, the largest change a fracture makes to the displayed image (0-1 scale)
and the mean change over its truth mask, and writes crops (fracture / none / difference)
to /tmp/rib-visible-*.png.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from PIL import Image

from radloop.models.reference.data import worker_anatomy
from radloop.synth import findings as F
from radloop.synth import make_study
from radloop.synth.regions import regions
from radloop.synth.variation import profile
from radloop.vocabulary import Side


def displaced(canvas: F.Canvas, rng: np.random.Generator) -> F.InsertedFinding | None:
    """A displaced fracture of the posterolateral arc: a 3-6 mm gap across the rib and the
    lateral fragment (40 mm of rib) stepped down by one or two slices (2.5-5 mm)."""
    anatomy = canvas.anatomy
    side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    number = int(rng.integers(4, 10))
    rib = regions(anatomy).rib(side.value, number)
    if rib.size < 20:
        return None
    pts = anatomy.positions(rib)
    midline = regions(anatomy).midline_x
    lateral = np.abs(pts[:, 0] - midline)
    back = pts[:, 1] >= np.percentile(pts[:, 1], 50)  # the posterior half (LPS: +y posterior)
    band = (lateral >= np.percentile(lateral, 55)) & (lateral <= np.percentile(lateral, 80))
    candidates = np.flatnonzero(band & back)
    if candidates.size == 0:
        return None
    at = pts[candidates[int(rng.integers(candidates.size))]]
    gap = float(rng.uniform(3.0, 6.0))
    d = np.linalg.norm(pts - at, axis=1)
    outward = np.abs(pts[:, 0] - midline) > abs(at[0] - midline)
    hu = canvas.hu.ravel()
    broken = rib[d <= gap / 2 + 1.0]
    fragment = rib[(d > gap / 2 + 1.0) & (d < 45.0) & outward]
    step = int(rng.integers(1, 3))
    i, j, k = np.unravel_index(fragment, anatomy.shape)
    keep = k >= step
    moved_to = np.ravel_multi_index((i[keep], j[keep], k[keep] - step), anatomy.shape)
    values = hu[fragment[keep]].copy()
    hu[fragment] = 35.0
    hu[broken] = 35.0
    hu[moved_to] = np.maximum(hu[moved_to], values)
    region = np.unique(np.concatenate([broken, fragment, moved_to])).astype(np.int32)
    canvas.claim(region)
    return F.InsertedFinding(
        code="rib_fracture", side=side,
        vertebral_level=anatomy.vertebral_level(float(at[2])),
        centre_mm=(float(at[0]), float(at[1]), float(at[2])),
        details={"rib": f"{side.value} rib {number}", "rib_number": float(number),
                 "gap_mm": round(gap, 1), "step_mm": step * anatomy.spacing_mm[2]},
        voxels=np.unique(np.concatenate([broken, moved_to])).astype(np.int32),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--design", default="displaced", choices=["lab", "displaced"])
    parser.add_argument("--n", type=int, default=6)
    args = parser.parse_args()
    if args.design == "displaced":
        F._INSERTERS["rib_fracture"] = displaced
    anatomy = worker_anatomy(None)
    site = dataclasses.replace(profile("standard"), lateral=False)
    peaks = []
    for index in range(args.n):
        a = make_study(anatomy, 5, index, site=site, codes=["rib_fracture"])
        b = make_study(anatomy, 5, index, site=site, codes=[])
        va, vb = next(iter(a.views.values())), next(iter(b.views.values()))
        diff = va.exposure.display.astype(float) - vb.exposure.display.astype(float)
        finding = a.truth["findings"][0]
        mask = va.masks[finding["id"]]
        peaks.append(np.abs(diff).max())
        print(index, finding["details"], f"peak {np.abs(diff).max():.3f}",
              f"mean over mask {np.abs(diff[mask]).mean() if mask.any() else 0:.4f}")  # fmt: skip
        rows, cols = np.nonzero(np.abs(diff) > 0.25 * np.abs(diff).max())
        r, c, h = int(rows.mean()), int(cols.mean()), 50
        tiles = [x[max(0, r - h) : r + h, max(0, c - h) : c + h]
                 for x in (va.exposure.display, vb.exposure.display)]  # fmt: skip
        lo, hi = min(t.min() for t in tiles), max(t.max() for t in tiles)
        d = diff[max(0, r - h) : r + h, max(0, c - h) : c + h]
        parts = [(t - lo) / (hi - lo + 1e-9) for t in tiles] + [0.5 + d / (2 * np.abs(d).max())]
        tile = (np.concatenate(parts, axis=1) * 255).astype(np.uint8)
        Image.fromarray(tile).resize((tile.shape[1] * 3, tile.shape[0] * 3)).save(
            f"/tmp/rib-visible-{args.design}-{index}.png"
        )
    print(f"median peak {np.median(peaks):.3f}")


if __name__ == "__main__":
    main()
