"""Base renders for nodule insertion: each study's line integral without nodules, its lungs,
the exposure settings, so nodules can be added analytically and the image exposed again.

python base.py N SEED OUTDIR [PROFILE...]
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from radloop.models.reference.data import render_shards, worker_anatomy


def make(job):
    from radloop.synth import make_study
    from radloop.synth.lab import sample_specs
    from radloop.synth.phantom import _ct_field
    from radloop.synth.variation import profile

    seed, index, site, cache = job
    rng = np.random.default_rng([seed, index, 7])
    codes = [s.code for s in sample_specs(seed, index, rng) if s.code != "nodule"]
    study = make_study(worker_anatomy(cache), seed, index,
                       site=dataclasses.replace(profile(site), lateral=False), codes=codes)
    view = next(iter(study.views.values()))
    g = view.geometry
    anatomy = study.phantom.anatomy
    centre = study.phantom.deformation.apply_points(np.asarray(anatomy.lung_centre, np.float32))
    lungs = np.zeros(view.line_integral.shape, bool)
    for m in view.lung_masks.values():
        lungs |= m
    size = g.rows
    pad = lambda a, v: np.pad(a, ((0, 512 - a.shape[0]), (0, 512 - a.shape[1])), constant_values=v)
    masses = [f for f in study.truth["images"][0]["findings"] if f["code"] == "mass" and f.get("visible")]
    return [{"line": pad(view.line_integral.astype(np.float16), 0), "lungs": pad(lungs, False),
             "size": np.int32(size), "pixel_mm": np.float32(g.pixel_mm),
             "mag": np.float32(g.magnification_at(np.asarray(centre).reshape(3))),
             "limits": np.asarray(_ct_field(study.phantom, g), np.int32),
             "view": np.asarray(g.view.value), "site": np.asarray(site),
             "mass": np.asarray(len(masses) > 0), "frontal": np.asarray(True)}]


def stack(samples):
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


if __name__ == "__main__":
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    profiles = tuple(sys.argv[4:]) or ("standard", "portable", "community")
    t = time.time()
    render_shards(out, "base", n, seed=seed, job=lambda i: (seed, i, profiles[i % len(profiles)]),
                  make=make, stack=stack, workers=2)
    print("rendered", n, "in", round(time.time() - t), "s")
