"""Training crops with nodules inserted analytically into base line integrals, then exposed.

python gen.py BASE_DIR OUT.npz VARIANTS_PER_BASE SEED
"""
from __future__ import annotations

import dataclasses
import glob
import sys
import time
from multiprocessing import Pool

import numpy as np

CROP = (0.08, 0.84, 0.06, 0.94)
SHAPE = (272, 320)
MAXN = 3
MU = 0.019
_BASE = None


def crop_box(n):
    return round(CROP[0] * n), round(CROP[1] * n), round(CROP[2] * n), round(CROP[3] * n)


def crop(img):
    from PIL import Image as PILImage
    r0, r1, c0, c1 = crop_box(img.shape[0])
    im = PILImage.fromarray(np.ascontiguousarray(img[r0:r1, c0:c1], np.float32), mode="F")
    return np.asarray(im.resize((SHAPE[1], SHAPE[0]), PILImage.Resampling.BOX), np.float32)


def sphere(shape, cy, cx, r_mm, mag, pixel_mm, ss=4):
    """Chord length (mm) through a sphere of radius r_mm whose projection centre is (cy, cx)."""
    R = r_mm * mag / pixel_mm
    y0, y1 = max(0, int(cy - R - 2)), min(shape[0], int(cy + R + 3))
    x0, x1 = max(0, int(cx - R - 2)), min(shape[1], int(cx + R + 3))
    off = (np.arange(ss) + 0.5) / ss - 0.5
    yy = (np.arange(y0, y1)[:, None] + off[None, :]).reshape(-1)
    xx = (np.arange(x0, x1)[:, None] + off[None, :]).reshape(-1)
    d2 = ((yy[:, None] - cy) ** 2 + (xx[None, :] - cx) ** 2) * (pixel_mm / mag) ** 2
    chord = 2 * np.sqrt(np.maximum(r_mm**2 - d2, 0))
    chord = chord.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    out = np.zeros(shape, np.float32)
    out[y0:y1, x0:x1] = chord
    return out


def job(args):
    from scipy import ndimage as ndi

    from radloop.synth.imaging import expose
    from radloop.synth.projector import View
    from radloop.synth.variation import profile

    i, k, seed = args
    b = _BASE
    n = int(b["size"][i])
    line = b["line"][i][:n, :n].astype(np.float32)
    lungs = b["lungs"][i][:n, :n]
    depth = ndi.distance_transform_edt(lungs)
    px, mag = float(b["pixel_mm"][i]), float(b["mag"][i])
    site = dataclasses.replace(profile(str(b["site"][i])), lateral=False)
    rng = np.random.default_rng([seed, i, k])
    count = int(rng.choice([0, 1, 2], p=[0.5, 0.38, 0.12]))
    add = np.zeros_like(line)
    nods = np.zeros((MAXN, 4), np.float32)
    r0, r1, c0, c1 = crop_box(n)
    sy, sx = SHAPE[0] / (r1 - r0), SHAPE[1] / (c1 - c0)
    for j in range(count):
        d_mm = float(rng.uniform(6.0, 26.0))
        m = mag * float(rng.uniform(0.96, 1.04))
        R = d_mm / 2 * m / px
        flat = depth.ravel()
        ok = np.flatnonzero(flat >= max(R * 0.6, 2.0))
        if ok.size == 0:
            continue
        w = flat[ok] / flat[ok].sum()  # deeper lung is thicker: more volume to hold a nodule
        p = ok[int(rng.choice(ok.size, p=w))]
        cy, cx = divmod(int(p), n)
        cy += float(rng.uniform(-0.5, 0.5)); cx += float(rng.uniform(-0.5, 0.5))
        surround = float(rng.uniform(-880.0, -700.0))
        add += sphere(line.shape, cy, cx, d_mm / 2, m, px) * np.float32(MU * (35.0 - surround) / 1000.0)
        nods[j] = ((cy - r0 + 0.5) * sy - 0.5, (cx - c0 + 0.5) * sx - 0.5, d_mm, 2 * R * (sy + sx) / 2)
    exp = expose(line + add, site, rng, pixel_mm=px, view=View(str(b["view"][i])),
                 limits=tuple(int(v) for v in b["limits"][i]))
    return crop(exp.display).astype(np.float16), nods, bool(b["mass"][i]), str(b["site"][i])


def init(paths):
    global _BASE
    parts = [np.load(p) for p in paths]
    _BASE = {k: np.concatenate([q[k] for q in parts]) for k in parts[0].files}


if __name__ == "__main__":
    base_dir, out, k, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    paths = sorted(glob.glob(base_dir + "/base-*.npz"))
    init(paths)
    nb = len(_BASE["size"])
    jobs = [(i, v, seed) for v in range(k) for i in range(nb)]
    t = time.time()
    with Pool(2, initializer=init, initargs=(paths,)) as pool:
        res = pool.map(job, jobs, chunksize=8)
    np.savez(out, crop=np.stack([r[0] for r in res]), nodules=np.stack([r[1] for r in res]),
             mass=np.asarray([r[2] for r in res]), site=np.asarray([r[3] for r in res]),
             base=np.asarray([j[0] for j in jobs]))
    print("generated", len(res), "in", round(time.time() - t), "s")
