"""Train the device network on the synthetic lab and export it (needs torch).

``train_devices(DeviceConfig(), out)`` is the recipe of the shipped ``devices.onnx``. Its
training set is rendered for it (``devices-*.npz`` shards under ``out/data``): each study keeps
the lab's random findings except devices and then gets, in turn, an endotracheal tube, a
central venous catheter, both, or none — so every other finding type appears among the
negatives, and one device is a negative for the other (a tube detector trained without
catheters learns "a line in the mediastinum": validation AUROC 0.77 against catheter-only
studies, 0.996 once they are among the negatives).
Only the frontal image is rendered.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.training import require_torch
from radloop.lab.training.reference.card import refresh_model_card
from radloop.lab.training.reference.data import (
    TRAIN_PROFILES,
    load_dataset,
    render_shards,
    stack_fields,
    worker_anatomy,
)
from radloop.lab.training.reference.train import (
    Recipe,
    export_network,
    fit_one_cycle,
    regression_records,
    training_record,
)
from radloop.models.reference.devices import (
    CELL_STRIDE,
    CELLS,
    CROP,
    CROP_SHAPE,
    DEVICE_REGRESSIONS,
    DEVICES,
    apply_calibration,
    device_crop,
)
from radloop.models.reference.metrics import best_threshold
from radloop.models.reference.spec import FIELD_MM
from radloop.stats import auroc, sigmoid

__all__ = ["DEVICE_SEED", "DEVICE_VERSION", "DeviceConfig", "build_device_dataset",
           "export_device_onnx", "train_devices"]  # fmt: skip

DEVICE_SEED = 20_240_202
DEVICE_VERSION = "0.3.0"
_OUTPUTS = ("presence", "cells", "tips")


@dataclass(frozen=True)
class DeviceConfig(Recipe):
    """The device network's recipe; the defaults reproduce the shipped weights."""

    epochs: int = 7  # with bfloat16 steps, 7 keep the whole recipe under 60 min
    data_seed: int = DEVICE_SEED
    widths: tuple[int, int, int, int] = (12, 16, 24, 32)
    context: int = 32


def _codes(seed: int, index: int) -> list[str]:
    """Study ``index``'s findings: the lab's random draw without devices, then the devices."""
    from radloop.lab.synth.lab import sample_specs

    rng = np.random.default_rng([seed, index, 7])
    base = [s.code for s in sample_specs(seed, index, rng) if s.code not in DEVICES]
    added = ([DEVICES[0]], [DEVICES[1]], list(DEVICES), [])[index % 4]
    return base + added


def _make(job: tuple[int, int, str, str | None]) -> list[dict[str, npt.NDArray[Any]]]:
    from radloop.lab.synth import make_study
    from radloop.lab.synth.variation import profile

    seed, index, site, cache = job
    frontal_only = dataclasses.replace(profile(site), lateral=False)
    study = make_study(worker_anatomy(cache), seed, index, site=frontal_only,
                       codes=_codes(seed, index))  # fmt: skip
    image_truth = study.truth["images"][0]
    rendered = next(iter(study.views.values()))
    spacing = tuple(image_truth["pixel_spacing_mm"])
    by_id = {f["id"]: f for f in study.truth["findings"]}
    presence = np.zeros(len(DEVICES), np.float32)
    cells = np.zeros((len(DEVICES), *CELLS), np.float16)
    tips = np.zeros(len(DEVICES), np.float32)
    tip_mask = np.zeros(len(DEVICES), np.float32)
    for entry in image_truth["findings"]:
        if entry["code"] not in DEVICES:
            continue
        k = DEVICES.index(entry["code"])
        presence[k] = 1.0
        mask = rendered.masks.get(entry["id"])
        if mask is not None and mask.any():
            share = device_crop(mask.astype(np.float32), spacing)
            touched = share.reshape(CELLS[0], CELL_STRIDE, CELLS[1], CELL_STRIDE).max(axis=(1, 3))
            cells[k] = np.maximum(cells[k], (touched > 0.05).astype(np.float16))
        tip = by_id[entry["id"]].get("tip_distance_mm")
        if tip is not None and math.isfinite(tip):
            tips[k], tip_mask[k] = DEVICE_REGRESSIONS[k].encode(float(tip)), 1.0
    crop = device_crop(rendered.exposure.display, spacing).astype(np.float16)
    return [{"crop": crop, "presence": presence, "cells": cells, "tips": tips,
             "tip_mask": tip_mask, "frontal": np.asarray(True)}]  # fmt: skip


def build_device_dataset(
    out: Path, n: int, *, seed: int = DEVICE_SEED, profiles: tuple[str, ...] = TRAIN_PROFILES,
    workers: int | None = None, progress: Any = None,
) -> list[Path]:  # fmt: skip
    """Render the device network's ``n`` training studies into ``devices-*.npz`` shards."""
    return render_shards(
        out, "devices", n, seed=seed, job=lambda i: (seed, i, profiles[i % len(profiles)]),
        make=_make, stack=stack_fields, workers=workers, progress=progress,
    )  # fmt: skip


def _network(config: DeviceConfig) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.MaxPool2d(2),
        )  # fmt: skip

    class DeviceNetwork(nn.Module):
        """High-pass, four conv blocks (stride 16), per-cell logits and tip regression maps."""

        def __init__(self) -> None:
            super().__init__()
            w, c = config.widths, config.context
            self.backbone = nn.Sequential(block(1, w[0]), block(w[0], w[1]), block(w[1], w[2]),
                                          block(w[2], w[3]))  # fmt: skip
            self.cells = nn.Conv2d(w[3], len(DEVICES), 1)
            # Dilated context: a tube's cells see the carina up to ~ 200 px (14 cm) away.
            self.context = nn.Sequential(
                nn.Conv2d(w[3], c, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(c),
                nn.ReLU(True), nn.Conv2d(c, c, 3, padding=4, dilation=4, bias=False),
                nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, len(DEVICES), 1),
            )  # fmt: skip

        def forward(self, x: Any) -> tuple[Any, Any, Any]:
            # Flatten the background (minus a 15-px box mean) and scale per image.
            x = x - functional.avg_pool2d(x, 15, 1, 7, count_include_pad=False)
            x = x - x.mean(dim=(1, 2, 3), keepdim=True)
            x = x / (x.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-6)
            features = self.backbone(x)
            cells = self.cells(features)
            presence = cells.flatten(2).amax(dim=2)
            weights = torch.softmax(cells.detach().flatten(2), dim=2)
            tips = (weights * self.context(features).flatten(2)).sum(dim=2)
            return presence, cells, tips

    return DeviceNetwork()


def _augment(torch: Any, x: Any, cells: Any, generator: Any) -> tuple[Any, Any]:
    """Tone (gamma, contrast, noise), left-right flips and shifts by whole cells (± jitter)."""
    b = x.shape[0]

    def uniform(low: float, high: float) -> Any:
        return torch.rand(b, 1, 1, 1, generator=generator) * (high - low) + low

    x = x.clamp(0.0, 1.0) ** uniform(0.65, 1.5)
    x = (x - 0.5) * uniform(0.8, 1.3) + 0.5
    x = x + torch.randn(x.shape, generator=generator) * uniform(0.0, 0.02)
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    cells = torch.where(flip[:, None, None, None], cells.flip(3), cells)
    dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=generator))
    jy, jx = (int(v) for v in torch.randint(-4, 5, (2,), generator=generator))
    x = torch.roll(x, (dy * CELL_STRIDE + jy, dx * CELL_STRIDE + jx), (2, 3))
    cells = torch.roll(cells, (dy, dx), (2, 3))
    return x, cells


def _losses(
    torch: Any, outputs: Any, batch: dict[str, Any], cells: Any
) -> tuple[Any, dict[str, float]]:
    f = torch.nn.functional
    presence, cell_logits, tips = outputs
    loss_presence = f.binary_cross_entropy_with_logits(presence, batch["presence"])
    weight = torch.tensor(4.0)
    loss_cells = f.binary_cross_entropy_with_logits(cell_logits, cells, pos_weight=weight)
    mask = batch["tip_mask"]
    reg = f.smooth_l1_loss(tips, batch["tips"], reduction="none", beta=0.2)
    loss_tips = (reg * mask).sum() / mask.sum().clamp_min(1.0)
    total = loss_presence + 4.0 * loss_cells + loss_tips
    parts = {"presence": loss_presence, "cells": loss_cells, "tips": loss_tips}
    return total, {k: float(v.detach()) for k, v in parts.items()}


def _predict(torch: Any, model: Any, crops: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    model.eval()
    out: dict[str, list[npt.NDArray[Any]]] = {}
    with torch.no_grad():
        for start in range(0, len(crops), 64):
            x = torch.from_numpy(crops[start : start + 64].astype(np.float32))[:, None]
            for name, value in zip(_OUTPUTS, model(x), strict=True):
                out.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def fit_platt(logits: npt.NDArray[Any], labels: npt.NDArray[Any]) -> tuple[float, float]:
    """Scale and bias of a logistic fit of ``labels`` on ``logits`` (Newton's method, a weak
    ridge so that perfectly separated validation data still gives finite values)."""
    x = np.stack([np.asarray(logits, np.float64), np.ones(len(logits))], axis=1)
    y = np.asarray(labels, np.float64)
    w = np.array([1.0, 0.0])
    ridge = np.diag([1e-2, 1e-4])
    for _ in range(50):
        p = sigmoid(x @ w, limit=30.0)
        gradient = x.T @ (p - y) + ridge @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def presence_calibration(
    logits: npt.NDArray[Any], labels: npt.NDArray[Any]
) -> dict[str, dict[str, float]]:
    """Per device, the Platt scaling of its presence logit fitted on the validation split.

    The presence logit is the maximum over 234 cells trained with positive-weighted cell
    targets, so raw probabilities of device-free studies sit far above zero (catheter: median
    0.35 on held-out studies) although the ranking is near perfect; the safety layer reads
    these numbers as probabilities (0.5 = supported), so they are recalibrated here."""
    out = {}
    for k, code in enumerate(DEVICES):
        scale, bias = fit_platt(logits[:, k], labels[:, k] > 0.5)
        out[code] = {"scale": round(scale, 5), "bias": round(bias, 5)}
    return out


def validate_devices(
    predictions: dict[str, npt.NDArray[Any]], data: dict[str, npt.NDArray[Any]]
) -> dict[str, Any]:
    """AUROC, the F1 threshold and tip-distance MAE (mm) per device."""
    p = sigmoid(predictions["presence"].astype(np.float64), limit=None)
    y = data["presence"] > 0.5
    aurocs = {code: auroc(y[:, k], p[:, k]) for k, code in enumerate(DEVICES)}
    mae = {}
    for k, reg in enumerate(DEVICE_REGRESSIONS):
        m = data["tip_mask"][:, k] > 0
        if m.any():
            err = np.abs(predictions["tips"][m, k] - data["tips"][m, k]) * reg.scale
            mae[reg.name] = round(float(err.mean()), 2)
    return {
        "n_images": len(y),
        "auroc": {k: (round(v, 4) if not math.isnan(v) else None) for k, v in aurocs.items()},
        "regression_mae": mae,
        "thresholds": {
            code: round(best_threshold(y[:, k], p[:, k]), 4) for k, code in enumerate(DEVICES)
        },
    }


def export_device_onnx(model: Any, path: Path) -> None:
    """Write the device network as ONNX (input ``crop``, outputs presence, cells, tips)."""
    export_network(model, path, "crop", CROP_SHAPE, _OUTPUTS)


def train_devices(
    config: DeviceConfig, out: Path, *, data_dir: Path | None = None, log: Any = print
) -> dict[str, Any]:
    """Render the data (if needed), train, validate, export; returns the sidecar written."""
    torch = require_torch("radloop train-reference")
    from tqdm import tqdm

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=config.n_train, unit="study", desc="render devices") as bar:
        shards = build_device_dataset(
            data_dir or out / "data", config.n_train, seed=config.data_seed,
            profiles=config.profiles, workers=config.threads, progress=bar.update,
        )  # fmt: skip
    data_seconds = time.perf_counter() - started
    data = load_dataset(shards)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    n = len(data["crop"])
    val_from = min(round(n * (1.0 - config.val_fraction)), n - 1)  # at least one study
    train_index, val_index = np.arange(val_from), np.arange(val_from, n)
    model = _network(config)
    generator = torch.Generator().manual_seed(config.seed)

    def tensor(key: str, index: npt.NDArray[np.int64]) -> Any:
        return torch.from_numpy(data[key][index].astype(np.float32))

    def loss_of(index: npt.NDArray[np.int64]) -> tuple[Any, dict[str, float]]:
        batch = {k: tensor(k, index) for k in ("presence", "tips", "tip_mask")}
        crops = tensor("crop", index)[:, None]
        x, cells = _augment(torch, crops, tensor("cells", index), generator)
        loss, parts = _losses(torch, model(x), batch, cells)
        return loss, {"cells": parts["cells"]}

    train_started = time.perf_counter()
    step = fit_one_cycle(torch, model, config, train_index, loss_of, "train devices")
    train_seconds = time.perf_counter() - train_started
    val = {k: v[val_index] for k, v in data.items()}
    predictions = _predict(torch, model, val["crop"])
    calibration = presence_calibration(predictions["presence"], val["presence"])
    predictions["presence"] = apply_calibration(predictions["presence"], calibration)
    metrics = validate_devices(predictions, val)
    log(f"device validation: AUROC {metrics['auroc']}, tip MAE {metrics['regression_mae']}")
    export_device_onnx(model, out / "devices.onnx")
    torch.save(model.state_dict(), out / "devices.pt")
    sidecar = {
        "schema": "radloop.devices/v1",
        "version": DEVICE_VERSION,
        "devices": list(DEVICES),
        "input": {
            "name": "crop",
            "shape": list(CROP_SHAPE),
            "field_mm": FIELD_MM,
            "crop_of_field": dict(zip(("top", "bottom", "left", "right"), CROP, strict=True)),
            "normalisation": "display units; the network subtracts a 15-px box mean "
            "and scales per image",
        },
        "regressions": regression_records(DEVICE_REGRESSIONS),
        "presence_calibration": calibration,
        "thresholds": metrics.pop("thresholds"),
        "training": training_record(
            config, len(train_index), len(val_index), step, data_seconds, train_seconds
        ),
        "validation": metrics,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    (out / "devices.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    refresh_model_card(out)
    return sidecar
