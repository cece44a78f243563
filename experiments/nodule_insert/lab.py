"""Render frontal studies for the nodule detector: lung crop + nodule centres and sizes.

python lab.py N SEED OUTDIR [PROFILE]
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from radloop.models.reference.data import render_shards, worker_anatomy
from radloop.models.reference.preprocess import field_crop

CROP = (0.08, 0.84, 0.06, 0.94)
SHAPE = (272, 320)
MAXN = 2


def crop(pixels, spacing):
    from PIL import Image as PILImage

    field = field_crop(np.asarray(pixels, np.float32), spacing)
    h, w = field.shape
    r0, r1, c0, c1 = round(CROP[0] * h), round(CROP[1] * h), round(CROP[2] * w), round(CROP[3] * w)
    im = PILImage.fromarray(np.ascontiguousarray(field[r0:r1, c0:c1]), mode="F")
    return np.asarray(im.resize((SHAPE[1], SHAPE[0]), PILImage.Resampling.BOX), np.float32)


def make(job):
    from radloop.synth import make_study
    from radloop.synth.lab import sample_specs
    from radloop.synth.variation import profile

    seed, index, site, cache = job
    rng = np.random.default_rng([seed, index, 7])
    codes = [s.code for s in sample_specs(seed, index, rng) if s.code != "nodule"]
    if index % 2 == 0:
        codes.append("nodule")
    study = make_study(worker_anatomy(cache), seed, index,
                       site=dataclasses.replace(profile(site), lateral=False), codes=codes)
    truth = study.truth["images"][0]
    view = next(iter(study.views.values()))
    spacing = tuple(truth["pixel_spacing_mm"])
    nods = np.zeros((MAXN, 4), np.float32)  # row, col (crop px), diameter mm, diameter px
    k = 0
    for entry in truth["findings"]:
        if entry["code"] not in ("nodule", "mass") or not entry.get("visible"):
            continue
        mask = view.masks[entry["id"]].astype(np.float32)
        m = crop(mask, spacing)
        if m.sum() <= 0 or k >= MAXN:
            continue
        rr, cc = np.nonzero(m > 0.5)
        if rr.size == 0:
            continue
        size = next(f.get("size_mm") for f in study.truth["findings"] if f["id"] == entry["id"])
        sign = 1.0 if entry["code"] == "nodule" else -1.0
        nods[k] = (rr.mean(), cc.mean(), sign * float(size), 2 * np.sqrt((m > 0.5).sum() / np.pi))
        k += 1
    lungs = np.zeros(view.line_integral.shape, np.float32)
    for mask in view.lung_masks.values():
        lungs = np.maximum(lungs, mask.astype(np.float32))
    return [{"crop": crop(view.exposure.display, spacing).astype(np.float16),
             "lungs": (crop(lungs, spacing) > 0.5),
             "nodules": nods, "frontal": np.asarray(True),
             "profile": np.asarray(site)}]


def stack(samples):
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


if __name__ == "__main__":
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    profiles = (sys.argv[4],) if len(sys.argv) > 4 else ("standard", "portable", "community")
    t = time.time()
    render_shards(out, "nodules", n, seed=seed, job=lambda i: (seed, i, profiles[i % len(profiles)]),
                  make=make, stack=stack, workers=2)
    print("rendered", n, "in", round(time.time() - t), "s")
