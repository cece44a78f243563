"""Nodule insertion and the crop networks' patch training (the lung network, :mod:`.lungs_train`).

**Inserting nodules** (:func:`insert_nodules`): a nodule of 6–26 mm (the lab's range) is added
to a lab study's line integral as a sphere's chord length times its attenuation above lung, at
a place in the projected lungs drawn in proportion to lung depth, before the lab's own
exposure (scatter, blur, noise, auto-ranging, tone curve, collimation). A new exposure costs a
fraction of a rendering, so a network sees thousands of nodules on new backgrounds; a crop
network trained on the lab's own 1,200 nodules alone does not learn them.

**Training** (:func:`_fit`) is on 64 × 64 patches of the preprocessed crop (the network is
fully convolutional): per epoch one patch about each object, as many random patches, and as
many object-free ones, most of them at the most object-like cell of an object-free crop under
the current weights (hard negatives). Cell targets are the stride-8 cells within an object's
radius (at least 0.75 cells).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.training.reference.data import TRAIN_PROFILES
from radloop.lab.training.reference.train import (
    Recipe,
    export_network,
    one_cycle,
    training_precision,
    training_record,
)
from radloop.models.reference.devices import CropNetwork
from radloop.models.reference.lungs import LUNG_NETWORK
from radloop.models.reference.metrics import best_threshold
from radloop.models.reference.spec import FIELD_MM
from radloop.stats import auroc

__all__ = [
    "MAX_NODULES",
    "CropRecipe",
    "export_crop_network",
    "insert_nodules",
    "lab_entries",
    "validate_nodules",
]

MAX_NODULES = 3
_NODULE_HU = 35.0  # the lab's nodules are soft tissue (synth.findings)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class CropRecipe(Recipe):
    """What the insertion-trained crop networks' recipes share (nodules, ribs): data with
    ``variants`` exposures per study, patch training with hard negatives, the widths."""

    variants: int = 5  # exposures with inserted objects per study
    n_val: int = 300  # lab studies for validation and calibration
    batch_size: int = 64
    learning_rate: float = 2e-3
    profiles: tuple[str, ...] = TRAIN_PROFILES
    widths: tuple[int, int, int] = (16, 32, 48)
    patch: int = 64
    hard_per_epoch: int = 400


# --- data ------------------------------------------------------------------------------------


def _sphere_chords(
    shape: tuple[int, int], centre: tuple[float, float], radius_mm: float, scale: float
) -> F32:
    """Chord length (mm) through a ball of ``radius_mm`` along each pixel's ray, its
    projection centred at ``centre`` (row, col); ``scale`` is mm in the patient per pixel.
    Four-by-four supersampled, so the rim is anti-aliased like the lab's own spheres."""
    cy, cx = centre
    reach = radius_mm / scale
    y0, y1 = max(0, int(cy - reach - 2)), min(shape[0], int(cy + reach + 3))
    x0, x1 = max(0, int(cx - reach - 2)), min(shape[1], int(cx + reach + 3))
    out = np.zeros(shape, np.float32)
    if y1 <= y0 or x1 <= x0:
        return out
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    yy = (np.arange(y0, y1)[:, None] + sub[None, :]).reshape(-1)
    xx = (np.arange(x0, x1)[:, None] + sub[None, :]).reshape(-1)
    d2 = ((yy[:, None] - cy) ** 2 + (xx[None, :] - cx) ** 2) * scale**2
    chord = 2.0 * np.sqrt(np.maximum(radius_mm**2 - d2, 0.0))
    out[y0:y1, x0:x1] = chord.reshape(y1 - y0, 4, x1 - x0, 4).mean(axis=(1, 3))
    return out


def insert_nodules(
    line: F32,
    lungs: npt.NDArray[np.bool_],
    pixel_mm: float,
    magnification: float,
    rng: np.random.Generator,
    count: int,
) -> tuple[F32, list[tuple[float, float, float]]]:
    """``line`` with ``count`` nodules added, and each one's (row, col, diameter mm).

    A nodule of diameter 6–26 mm replaces lung (−880 to −700 HU) with soft tissue: its line
    integral is the chord length times the attenuation difference. Its centre is drawn in
    the projected ``lungs`` with probability proportional to the distance from the lung's
    edge (thicker lung holds more nodules) and at least 0.6 radii inside it."""
    from radloop.lab.synth import _deps
    from radloop.lab.synth.phantom import MU_WATER_PER_MM

    depth = _deps.ndimage().distance_transform_edt(lungs).ravel()
    out = np.array(line, dtype=np.float32, copy=True)
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        diameter = float(rng.uniform(6.0, 26.0))
        mag = magnification * float(rng.uniform(0.96, 1.04))
        reach = diameter / 2 * mag / pixel_mm
        ok = np.flatnonzero(depth >= max(0.6 * reach, 2.0))
        if ok.size == 0:
            continue
        flat = int(ok[int(rng.choice(ok.size, p=depth[ok] / depth[ok].sum()))])
        row, col = divmod(flat, line.shape[1])
        centre = (row + float(rng.uniform(-0.5, 0.5)), col + float(rng.uniform(-0.5, 0.5)))
        surround = float(rng.uniform(-880.0, -700.0))
        mu = MU_WATER_PER_MM * (_NODULE_HU - surround) / 1000.0
        out += _sphere_chords(line.shape, centre, diameter / 2, pixel_mm / mag) * np.float32(mu)
        placed.append((centre[0], centre[1], diameter))
    return out, placed


def _to_crop(
    row: float, col: float, size: int, network: CropNetwork = LUNG_NETWORK
) -> tuple[float, float, float]:
    """A field pixel (row, col) in crop pixels, and the crop's pixels per field pixel."""
    r0, r1, c0, c1 = network.box((size, size))
    sy, sx = network.shape[0] / (r1 - r0), network.shape[1] / (c1 - c0)
    return (row - r0 + 0.5) * sy - 0.5, (col - c0 + 0.5) * sx - 0.5, (sy + sx) / 2


def _nodule_rows(entries: list[tuple[float, float, float, float]]) -> F32:
    """(MAX_NODULES, 4) rows of (row, col, diameter mm, diameter in crop px); zero rows pad."""
    rows = np.zeros((MAX_NODULES, 4), np.float32)
    for k, entry in enumerate(entries[:MAX_NODULES]):
        rows[k] = entry
    return rows


def lab_entries(
    study: Any, code: str, network: CropNetwork, sizes: dict[str, float]
) -> list[tuple[float, float, float, float]]:
    """(row, col, size mm, diameter px) in the crop of each visible ``code`` of a lab study's
    frontal image, from its truth mask; ``sizes`` gives each finding's size by id."""
    truth = study.truth["images"][0]
    view = next(iter(study.views.values()))
    spacing = tuple(truth["pixel_spacing_mm"])
    entries = []
    for entry in truth["findings"]:
        if entry["code"] != code or not entry.get("visible"):
            continue
        mask = network.read(view.masks[entry["id"]].astype(np.float32), spacing) > 0.5
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        diameter_px = 2.0 * float(np.sqrt(mask.sum() / np.pi))
        entries.append((float(rows.mean()), float(cols.mean()), sizes[entry["id"]], diameter_px))
    return entries


# --- network ---------------------------------------------------------------------------------


def export_crop_network(
    torch: Any,
    model: Any,
    config: CropRecipe,
    network: CropNetwork,
    out: Path,
    version: str,
    calibration: dict[str, Any],
    metrics: dict[str, Any],
    n_images: int,
    n_val: int,
    timing: tuple[int, float, float],
) -> dict[str, Any]:
    """Write ``{network}.onnx``, its PyTorch weights and its sidecar (the crop network
    schema); ``metrics`` holds the validation figures and ``thresholds``; ``timing`` is
    (steps, data seconds, training seconds)."""
    export_network(model, out / network.onnx, "crop", network.shape, network.outputs)
    torch.save(model.state_dict(), out / f"{network.name}.pt")
    steps, data_seconds, train_seconds = timing
    sidecar = {
        "schema": "radloop.crop-network/v1",
        "version": version,
        "findings": list(network.findings),
        "input": {
            "name": "crop",
            "shape": list(network.shape),
            "field_mm": FIELD_MM,
            "crop_of_field": dict(
                zip(("top", "bottom", "left", "right"), network.crop, strict=True)
            ),
            "normalisation": "display units; the network subtracts a 41-px box mean "
            "and scales per image",
        },
        "presence_calibration": calibration,
        "thresholds": metrics.pop("thresholds"),
        "training": training_record(config, n_images, n_val, steps, data_seconds, train_seconds),
        "validation": metrics,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    (out / network.sidecar).write_text(json.dumps(sidecar, indent=1) + "\n")
    return sidecar


def _network(config: CropRecipe, outputs: int = 1) -> Any:
    """The crop networks' design (nodules, ribs, lungs), ``config.widths`` channels wide,
    with ``outputs`` cell maps (one per finding type)."""
    from torch import nn
    from torch.nn import functional

    w1, w2, w3 = config.widths

    def conv(cin: int, cout: int, dilation: int = 1) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class Prep(nn.Module):
        """The crop minus its 41-pixel box mean (separable), over its smoothed RMS."""

        def forward(self, x: Any) -> Any:
            mean = functional.avg_pool2d(x, (41, 1), 1, (20, 0), count_include_pad=False)
            mean = functional.avg_pool2d(mean, (1, 41), 1, (0, 20), count_include_pad=False)
            x = x - mean
            rms = functional.avg_pool2d(x, 3, 1, 1).pow(2).mean(dim=(1, 2, 3), keepdim=True)
            return x / (rms.sqrt() + 1e-4)

    class Body(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                conv(1, w1),
                conv(w1, w1),
                nn.MaxPool2d(2),
                conv(w1, w2),
                conv(w2, w2),
                nn.MaxPool2d(2),
                conv(w2, w3),
                conv(w3, w3),
                nn.MaxPool2d(2),
                conv(w3, w3, 2),
                conv(w3, w3, 2),
            )
            self.head = nn.Conv2d(w3, outputs, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.features(x.clamp(-8.0, 8.0)))

    class NoduleNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prep, self.body = Prep(), Body()

        def forward(self, x: Any) -> tuple[Any, Any]:
            cells = self.body(self.prep(x))
            return cells.flatten(2).amax(dim=2), cells

    return NoduleNet()


def _targets(nodules: F32, network: CropNetwork = LUNG_NETWORK) -> F32:
    """Cell targets of one crop: cells whose centre lies within a nodule's radius (at least
    0.75 cells, so the cell holding a small nodule's centre is always a target)."""
    rows, cols = network.cells
    stride = network.stride
    cy = (np.arange(rows) + 0.5) * stride - 0.5
    cx = (np.arange(cols) + 0.5) * stride - 0.5
    out = np.zeros((rows, cols), np.float32)
    for row, col, diameter, diameter_px in nodules:
        if diameter <= 0:
            continue
        radius = max(diameter_px / 2, 0.75 * stride)
        inside = (cy[:, None] - row) ** 2 + (cx[None, :] - col) ** 2 <= radius**2
        out = np.maximum(out, inside.astype(np.float32))
    return out


def _predict(torch: Any, model: Any, crops: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Presence logits (N, findings) of ``crops``."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(crops), 32):
            x = torch.from_numpy(crops[start : start + 32].astype(np.float32))[:, None]
            out.append(model(x)[0].numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 1))


def _fit(
    torch: Any,
    model: Any,
    config: CropRecipe,
    crops: npt.NDArray[Any],
    objects: F32 | Sequence[F32],
    network: CropNetwork = LUNG_NETWORK,
) -> int:
    """Patch training with hard negatives (see the module's docstring); returns the steps.

    ``objects``: per finding type of ``network`` (one array for a one-finding network), the
    (N, MAX_NODULES, 4) rows of each crop's objects. Patches are centred on objects of every
    type; hard negatives come from crops free of all of them, where any channel peaks."""
    from tqdm import tqdm

    functional = torch.nn.functional
    rng = np.random.default_rng(config.seed)
    stride, size = network.stride, config.patch
    with torch.no_grad():
        pre = np.concatenate(
            [
                model.prep(torch.from_numpy(crops[i : i + 64].astype(np.float32))[:, None])[:, 0]
                .numpy()
                .astype(np.float16)
                for i in range(0, len(crops), 64)
            ]
        )
    height, width = pre.shape[1:]
    kinds = [objects] if isinstance(objects, np.ndarray) else list(objects)
    targets = np.stack(
        [np.stack([_targets(kind[i], network) for kind in kinds]) for i in range(len(crops))]
    )
    # (crop, (row, col)) of every object of every type.
    positives = [
        (int(i), kind[i, j, :2]) for kind in kinds for i, j in np.argwhere(kind[:, :, 2] > 0)
    ]
    clear = np.flatnonzero(np.all([(kind[:, :, 2] <= 0).all(axis=1) for kind in kinds], axis=0))
    if not positives or clear.size == 0:
        raise ValueError(
            f"expected crops with and without {' or '.join(network.findings)}, got "
            f"{len(positives)} objects and {clear.size} crops free of them"
        )

    def at(i: int, row: float, col: float) -> tuple[int, int, int]:
        r0 = int(np.clip(row - size // 2, 0, height - size)) // stride * stride
        c0 = int(np.clip(col - size // 2, 0, width - size)) // stride * stride
        return int(i), r0, c0

    per_epoch = max(1, 3 * len(positives) // config.batch_size)
    total = max(2, per_epoch * config.epochs)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    update = one_cycle(torch, model, config, total, warmup=0.1)
    hard: list[tuple[int, int, int]] = []
    step = 0
    with (
        training_precision(torch, model, config, forward=model.body) as precision,
        tqdm(total=total, unit="step", desc=f"train {network.name}") as bar,
    ):
        while step < total:
            jobs = [
                at(i, *(rc + rng.uniform(-20, 20, 2)))
                for i, rc in (positives[k] for k in rng.permutation(len(positives)))
            ]
            for _ in positives:
                jobs.append(
                    at(int(rng.integers(len(crops))), rng.uniform(0, height), rng.uniform(0, width))
                )
            for _ in positives:
                if hard and rng.random() < 0.7:
                    jobs.append(hard[int(rng.integers(len(hard)))])
                else:
                    jobs.append(
                        at(
                            int(clear[int(rng.integers(clear.size))]),
                            rng.uniform(0, height),
                            rng.uniform(0, width),
                        )
                    )
            order = rng.permutation(len(jobs))
            model.train()
            batch = min(config.batch_size, len(jobs))
            for start in range(0, len(jobs) - batch + 1, batch):
                if step >= total:
                    break
                chosen = [jobs[q] for q in order[start : start + batch]]
                x = torch.from_numpy(
                    np.stack([pre[i, r : r + size, c : c + size] for i, r, c in chosen]).astype(
                        np.float32
                    )
                )[:, None]
                cell = size // stride
                t = torch.from_numpy(
                    np.stack(
                        [
                            targets[
                                i,
                                :,
                                r // stride : r // stride + cell,
                                c // stride : c // stride + cell,
                            ]
                            for i, r, c in chosen
                        ]
                    )
                )
                flip = torch.from_numpy(rng.random(len(chosen)) < 0.5)[:, None, None, None]
                x, t = torch.where(flip, x.flip(3), x), torch.where(flip, t.flip(3), t)
                with precision():
                    loss = functional.binary_cross_entropy_with_logits(
                        model.body(x), t, pos_weight=torch.tensor(3.0)
                    )
                update(loss)
                step += 1
                bar.update(1)
                bar.set_postfix({"loss": f"{float(loss.detach()):.4f}"})
            # Hard negatives: the most object-like place (any channel) of some clear crops.
            model.eval()
            pick = rng.choice(clear, size=min(config.hard_per_epoch, clear.size), replace=False)
            with torch.no_grad(), precision():
                cells = np.concatenate(
                    [
                        model.body(
                            torch.from_numpy(pre[pick[q : q + 32]].astype(np.float32))[:, None]
                        )
                        .amax(dim=1)
                        .numpy()
                        for q in range(0, len(pick), 32)
                    ]
                )
            hard = hard[-2000:]
            for q, i in enumerate(pick):
                r, c = np.unravel_index(int(np.argmax(cells[q])), cells[q].shape)
                jitter = rng.uniform(-12, 12, 2)
                hard.append(at(int(i), r * stride + 4 + jitter[0], c * stride + 4 + jitter[1]))
    return step


def validate_nodules(probabilities: npt.NDArray[np.float64], nodules: F32) -> dict[str, Any]:
    """AUROC (all, and by diameter < 10, 10–15, ≥ 15 mm) and the F1 threshold."""
    y = np.asarray((nodules[:, :, 2] > 0).any(axis=1), dtype=bool)
    size = nodules[:, :, 2].max(axis=1)
    by_size = {}
    for low, high in ((0, 10), (10, 15), (15, 100)):
        keep = ~y | ((size >= low) & (size < high))
        value = auroc(y[keep], probabilities[keep])
        by_size[f"{low}-{high} mm"] = None if np.isnan(value) else round(float(value), 4)
    value = auroc(y, probabilities)
    return {
        "n_images": len(y),
        "n_nodules": int(y.sum()),
        "auroc": {"nodule": None if np.isnan(value) else round(float(value), 4)},
        "auroc_by_size": by_size,
        "thresholds": {"nodule": round(best_threshold(y, probabilities), 4)},
    }
