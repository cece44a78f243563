"""Nodule lung-crop experiment (sixth session): can a small network on a 1 mm/px crop of both
lungs, trained on the cells a nodule's mask touches, find the lab's nodules?

python run.py render N SEED OUTDIR [PROFILE]   # frontal studies, half of them with a nodule
python run.py train TRAIN_DIR VAL_DIR EPOCHS   # writes /tmp/nodule_net.pt, prints AUROC
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from radloop.models.reference.data import load_dataset, render_shards, worker_anatomy
from radloop.models.reference.preprocess import field_crop

CROP = (0.08, 0.84, 0.06, 0.94)  # top, bottom, left, right (fractions of the 360 mm field)
SHAPE = (272, 320)  # ~1.0 mm per pixel
STRIDE = 8
CELLS = (SHAPE[0] // STRIDE, SHAPE[1] // STRIDE)


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
    cells = np.zeros(CELLS, np.float16)
    present = 0.0
    sizes = []
    for entry in truth["findings"]:
        if entry["code"] != "nodule":
            continue
        present = 1.0
        mask = view.masks.get(entry["id"])
        if mask is not None and mask.any():
            share = crop(mask.astype(np.float32), spacing)
            touched = share.reshape(CELLS[0], STRIDE, CELLS[1], STRIDE).max(axis=(1, 3))
            cells = np.maximum(cells, (touched > 0.05).astype(np.float16))
    for f in study.truth["findings"]:
        if f["code"] == "nodule":
            sizes.append(f.get("size_mm") or 0.0)
    return [{"crop": crop(view.exposure.display, spacing).astype(np.float16),
             "presence": np.float32(present), "cells": cells,
             "size": np.float32(max(sizes) if sizes else 0.0), "frontal": np.asarray(True)}]


def stack(samples):
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


def network():
    import torch
    from torch import nn
    from torch.nn import functional

    def conv(i, o, s=1):
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(conv(1, 16, 2), conv(16, 16), nn.MaxPool2d(2),
                                      conv(16, 32), conv(32, 32), nn.MaxPool2d(2),
                                      conv(32, 48), conv(48, 48))
            self.cells = nn.Conv2d(48, 1, 1)

        def forward(self, x):
            x = x - functional.avg_pool2d(x, 41, 1, 20, count_include_pad=False)
            x = x - x.mean(dim=(1, 2, 3), keepdim=True)
            x = x / (x.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-6)
            cells = self.cells(self.body(x))
            return cells.flatten(1).amax(dim=1), cells

    return Net()


def auroc(y, s):
    from radloop.models.reference.metrics import auroc as a
    return a(y, s)


def train(train_dir, val_dir, epochs):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(2)
    tr = load_dataset(sorted(Path(train_dir).glob("nodules-*.npz")))
    va = load_dataset(sorted(Path(val_dir).glob("nodules-*.npz")))
    net = network()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    spe = len(tr["crop"]) // 32
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=spe * epochs, pct_start=0.15)
    rng = np.random.default_rng(0)
    f = torch.nn.functional
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        order = rng.permutation(len(tr["crop"]))
        for k in range(spe):
            idx = order[k * 32:(k + 1) * 32]
            x = torch.from_numpy(tr["crop"][idx].astype(np.float32))[:, None]
            c = torch.from_numpy(tr["cells"][idx].astype(np.float32))[:, None]
            y = torch.from_numpy(tr["presence"][idx])
            b = len(idx)
            g = torch.rand(b, 1, 1, 1) * 0.85 + 0.65
            x = x.clamp(0, 1) ** g
            x = x + torch.randn(x.shape) * torch.rand(b, 1, 1, 1) * 0.02
            flip = torch.rand(b) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            c = torch.where(flip[:, None, None, None], c.flip(3), c)
            p, cells = net(x)
            loss = f.binary_cross_entropy_with_logits(p, y) + 4 * f.binary_cross_entropy_with_logits(
                cells, c, pos_weight=torch.tensor(8.0))
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        net.eval()
        with torch.no_grad():
            pv = torch.cat([net(torch.from_numpy(va["crop"][i:i + 64].astype(np.float32))[:, None])[0]
                            for i in range(0, len(va["crop"]), 64)]).numpy()
            pt = torch.cat([net(torch.from_numpy(tr["crop"][i:i + 64].astype(np.float32))[:, None])[0]
                            for i in range(0, 320, 64)]).numpy()
        yv = va["presence"] > 0.5
        by = {}
        for lo, hi in ((0, 10), (10, 15), (15, 99)):
            m = (~yv) | ((va["size"] >= lo) & (va["size"] < hi))
            by[f"{lo}-{hi}"] = round(auroc(yv[m], pv[m]), 3)
        print(f"epoch {ep + 1} loss {loss.item():.3f} train {auroc(tr['presence'][:320] > .5, pt):.3f} "
              f"val {auroc(yv, pv):.3f} by size {by} {time.time() - t0:.0f}s", flush=True)
    torch.save(net.state_dict(), "/tmp/nodule_net.pt")


if __name__ == "__main__":
    if sys.argv[1] == "render":
        n, seed, out = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
        profiles = (sys.argv[5],) if len(sys.argv) > 5 else ("standard", "portable", "community")
        t = time.time()
        render_shards(out, "nodules", n, seed=seed, job=lambda i: (seed, i, profiles[i % len(profiles)]),
                      make=make, stack=stack, workers=2)
        print("rendered", n, "in", round(time.time() - t), "s")
    else:
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]))
