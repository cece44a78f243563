"""Patch-trained, fully convolutional nodule network on inserted nodules.

python train.py GEN.npz[,GEN2.npz] VAL_DIR[,VAL_DIR2] EPOCHS OUT.pt
VAL_DIR: shards from ../nodule_blobs/render.py (lab nodules, not inserted).
"""
from __future__ import annotations

import glob
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radloop.models.reference.metrics import auroc

STRIDE = 8
P = 64


def conv(i, o, d=1):
    return nn.Sequential(nn.Conv2d(i, o, 3, 1, d, dilation=d, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))


class Prep(nn.Module):
    def forward(self, x):
        x = x - F.avg_pool2d(x, 41, 1, 20, count_include_pad=False)
        s = F.avg_pool2d(x, 3, 1, 1).pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
        return x / (s + 1e-4)


class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(conv(1, 16), conv(16, 16), nn.MaxPool2d(2),
                               conv(16, 32), conv(32, 32), nn.MaxPool2d(2),
                               conv(32, 48), conv(48, 48), nn.MaxPool2d(2),
                               conv(48, 48, 2), conv(48, 48, 2))
        self.head = nn.Conv2d(48, 1, 1)

    def forward(self, x):
        return self.head(self.f(x.clamp(-8, 8)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.prep, self.body = Prep(), Body()

    def forward(self, x):
        c = self.body(self.prep(x))
        return c.flatten(1).amax(1), c


def targets(nods, shape):
    """Cell targets: cells whose centre lies within the nodule's radius (at least the centre cell)."""
    h, w = shape[0] // STRIDE, shape[1] // STRIDE
    t = np.zeros((h, w), np.float32)
    cy = (np.arange(h) + 0.5) * STRIDE - 0.5
    cx = (np.arange(w) + 0.5) * STRIDE - 0.5
    for n in nods:
        if n[2] <= 0:
            continue
        r = max(n[3] / 2, STRIDE * 0.75)
        d2 = (cy[:, None] - n[0]) ** 2 + (cx[None, :] - n[1]) ** 2
        t = np.maximum(t, (d2 <= r * r).astype(np.float32))
    return t


def load_val(dirs):
    from radloop.models.reference.data import load_dataset
    paths = sorted(p for d in dirs for p in glob.glob(d + "/nodules-*.npz"))
    d = load_dataset(paths)
    y = (d["nodules"][:, :, 2] > 0).any(1)
    return d["crop"].astype(np.float32), y, np.abs(d["nodules"][:, :, 2]).max(1), d["nodules"], d["profile"]


def scores(net, crops, bs=32):
    net.eval()
    out, cells = [], []
    with torch.no_grad():
        for i in range(0, len(crops), bs):
            p, c = net(torch.from_numpy(np.asarray(crops[i:i + bs], np.float32))[:, None])
            out.append(p.numpy()); cells.append(c[:, 0].numpy())
    return np.concatenate(out), np.concatenate(cells)


def report(tag, y, s, size):
    by = {}
    for lo, hi in ((0, 10), (10, 15), (15, 30)):
        m = (~y) | ((size >= lo) & (size < hi) & y)
        by[f"{lo}-{hi}"] = round(auroc(y[m], s[m]), 3)
    return f"{tag} {auroc(y, s):.3f} {by}"


def main():
    gens = sys.argv[1].split(",")
    vals = [v.split("+") for v in sys.argv[2].split(",")]
    epochs, out = int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0); torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    parts = [np.load(g) for g in gens]
    crops = np.concatenate([p["crop"] for p in parts])
    m = max(p["nodules"].shape[1] for p in parts)
    nods = np.concatenate([np.pad(p["nodules"], ((0, 0), (0, m - p["nodules"].shape[1]), (0, 0)))
                           for p in parts])
    n = len(crops)
    net = Net()
    with torch.no_grad():
        pre = torch.cat([net.prep(torch.from_numpy(crops[i:i + 64].astype(np.float32))[:, None])
                         for i in range(0, n, 64)])[:, 0].numpy().astype(np.float16)
    H, W = pre.shape[1:]
    tgt = np.stack([targets(nods[i], (H, W)) for i in range(n)])
    valsets = [load_val(v) for v in vals]
    pos_idx = [(i, j) for i in range(n) for j in range(nods.shape[1]) if nods[i, j, 2] > 0]
    neg_crops = np.flatnonzero((nods[:, :, 2] <= 0).all(1))
    print("crops", n, "nodules", len(pos_idx), "negative crops", len(neg_crops), flush=True)
    hard = []
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    per_epoch = len(pos_idx) * 3
    steps = epochs * (per_epoch // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps + 10, pct_start=0.1)
    t0 = time.time()

    def patch_at(i, r, c):
        r0 = int(np.clip(r - P // 2, 0, H - P)) // STRIDE * STRIDE
        c0 = int(np.clip(c - P // 2, 0, W - P)) // STRIDE * STRIDE
        return (i, r0, c0)

    for ep in range(epochs):
        net.train()
        jobs = []
        for k in rng.permutation(len(pos_idx)):
            i, j = pos_idx[k]
            r, c = nods[i, j, :2] + rng.uniform(-20, 20, 2)
            jobs.append(patch_at(i, r, c))
        for _ in range(len(pos_idx)):
            i = int(rng.integers(n))
            jobs.append(patch_at(i, rng.uniform(0, H), rng.uniform(0, W)))
        for _ in range(len(pos_idx)):
            if hard and rng.random() < 0.7:
                jobs.append(hard[int(rng.integers(len(hard)))])
            else:
                i = int(neg_crops[int(rng.integers(len(neg_crops)))])
                jobs.append(patch_at(i, rng.uniform(0, H), rng.uniform(0, W)))
        order = rng.permutation(len(jobs))
        tot = 0.0
        for b in range(len(jobs) // 64):
            sel = [jobs[q] for q in order[b * 64:(b + 1) * 64]]
            x = np.stack([pre[i, r:r + P, c:c + P] for i, r, c in sel]).astype(np.float32)
            t = np.stack([tgt[i, r // STRIDE:(r + P) // STRIDE, c // STRIDE:(c + P) // STRIDE] for i, r, c in sel])
            x = torch.from_numpy(x)[:, None]; t = torch.from_numpy(t)[:, None]
            flip = torch.rand(len(sel)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            t = torch.where(flip[:, None, None, None], t.flip(3), t)
            logits = net.body(x)
            loss = F.binary_cross_entropy_with_logits(logits, t, pos_weight=torch.tensor(3.0))
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
            tot += loss.item()
        # hard negatives: the most nodule-like cell of 400 nodule-free crops
        net.eval()
        pick = rng.choice(neg_crops, size=min(400, len(neg_crops)), replace=False)
        with torch.no_grad():
            cl = torch.cat([net.body(torch.from_numpy(pre[pick[q:q + 32]].astype(np.float32))[:, None])
                            for q in range(0, len(pick), 32)])[:, 0].numpy()
        hard = hard[-2000:]
        for q, i in enumerate(pick):
            r, c = np.unravel_index(int(np.argmax(cl[q])), cl[q].shape)
            hard.append(patch_at(int(i), r * STRIDE + 4 + rng.uniform(-12, 12), c * STRIDE + 4 + rng.uniform(-12, 12)))
        msg = [f"epoch {ep + 1} loss {tot / max(1, len(jobs) // 64):.4f}"]
        for (vc, vy, vs, _, _), v in zip(valsets, vals):
            s, _ = scores(net, vc)
            msg.append(report(v[0].split('/')[-1], vy, s, vs))
        print(" | ".join(msg), f"{time.time() - t0:.0f}s", flush=True)
        torch.save(net.state_dict(), out)


if __name__ == "__main__":
    main()
