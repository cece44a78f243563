"""Self-training of the lung-fields network on unlabelled real films (a noisy student).

The recipe's second stage (``radloop train-lungfields --self-train-epochs N``), after the
network has been trained on the lab and adapted (:mod:`.train`). No real label is read:

1. **Teacher.** The adapted network reads each unlabelled real film (hannover-dev's patients
   none of whose films carries an outline) twice, as it is and mirrored (right and left
   swapped back), and the two readings are averaged. Each lung field and the heart is one
   region with its holes filled (the run-time rule). A pixel whose averaged probability lies
   within ``band`` of 0.5 is left out of the loss unless the region rule decided it.
2. **Inserted opacity with exact truth.** In ``lesion_share`` of the real copies, the lab's
   multifocal lesion model (:func:`.train.insert_patchy`) is added inside the teacher's lung
   fields in the log domain: a processed film's grey level is close to a log of exposure, so
   added attenuation ``a`` turns a grey level ``g`` (bright = dense) into
   ``1 - (1 - g) · exp(-LOG_GAIN · a)``, which keeps it in [0, 1] and whitens dense lung
   towards soft tissue. The inserted patches are opacity; where the teacher was confidently
   clear (< ``clear``) and nothing was inserted is not; the film's own opacity, which no label
   gives, is left out of the loss.
3. **Student.** The adapted network, its BatchNorm statistics frozen (they are the real films'
   from AdaBN), is trained further on the real copies, each under fresh view augmentation and
   shape warps, mixed with as many lab variants (the lab's exact targets keep what it learnt
   there), by a loss that skips what is left out.

Then the opacity threshold and the domain reference are refitted exactly as in stage one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.training import require_torch
from radloop.models.reference.lungfields import _resize, equalise, fields_of

__all__ = [
    "IGNORE",
    "LOG_GAIN",
    "SelfTrainConfig",
    "insert_into_film",
    "network_from_onnx",
    "pseudo_targets",
    "self_train",
]

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]

IGNORE = 255
"""A target value the loss skips."""
LOG_GAIN = 0.6
"""Grey-level attenuation per unit of added line integral in a processed film (see above)."""
WORK_SIZE = 256
"""Real films are augmented at this size, then resized to the network's input."""


@dataclass(frozen=True)
class SelfTrainConfig:
    """The second stage's settings (defaults: the shipped network)."""

    epochs: int = 3
    copies: int = 12
    """Augmented copies of each real film per epoch."""
    learning_rate: float = 5e-4
    band: float = 0.25
    """Teacher probabilities within this of 0.5 are left out of the loss."""
    clear: float = 0.05
    """Teacher opacity below this, where nothing was inserted, is a negative."""
    lesion_share: float = 0.5
    seed: int = 20261208


def network_from_onnx(path: Path, base: int) -> Any:
    """The recipe's U-Net holding an exported network's weights.

    The export folds each BatchNorm into its convolution; the folded weight goes to the
    convolution and the folded bias to an identity BatchNorm (mean 0, variance 1 − eps, scale
    1), so the module computes what the ONNX file does (tested) and can be trained further
    with its statistics frozen. Convolutions are matched in the order they run.
    """
    import onnx
    from onnx import numpy_helper

    torch = require_torch("self-training the lung-fields network")
    from radloop.lab.training.lungfields.train import build_network

    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    net = build_network(base)
    pairs: list[tuple[Any, Any]] = []
    modules = list(net.modules())
    for k, module in enumerate(modules):
        if isinstance(module, torch.nn.Conv2d):
            following = modules[k + 1] if k + 1 < len(modules) else None
            norm = following if isinstance(following, torch.nn.BatchNorm2d) else None
            pairs.append((module, norm))
    if len(pairs) != len(convs):
        raise ValueError(f"expected {len(pairs)} convolutions in {path}, found {len(convs)}")
    with torch.no_grad():
        for (conv, norm), node in zip(pairs, convs, strict=True):
            weight = torch.from_numpy(weights[node.input[1]].copy())
            bias = torch.from_numpy(weights[node.input[2]].copy())
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(
                    f"expected a weight of {tuple(conv.weight.shape)}, got {tuple(weight.shape)}"
                )
            conv.weight.copy_(weight)
            if norm is None:
                conv.bias.copy_(bias)
                continue
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
    net.eval()
    return net


def pseudo_targets(probs: F32, band: float) -> U8:
    """Targets (right, left, heart; IGNORE where unsure) from one film's averaged maps."""
    out = np.full((3, *probs.shape[1:]), IGNORE, dtype=np.uint8)
    for k, field in enumerate(fields_of(probs)):
        sure = (np.abs(probs[k] - 0.5) >= band) | (field != (probs[k] >= 0.5))
        out[k][sure] = field[sure]
    return out


def _teacher(net: Any, torch: Any, inputs: F32) -> F32:
    """The network's maps on ``inputs`` averaged with its mirrored reading."""
    from radloop.lab.training.lungfields.train import _forward

    plain = _forward(net, torch, inputs)[0]
    mirrored = _forward(net, torch, np.ascontiguousarray(inputs[:, :, ::-1]))[0][..., ::-1]
    mirrored = mirrored[:, [1, 0, 2, 3]]  # the mirrored film's right lung is the film's left
    out: F32 = ((plain + mirrored) / 2.0).astype(np.float32)
    return out


def insert_into_film(
    film: F32, lungs: Bool, rng: np.random.Generator, pixel_mm: float
) -> tuple[F32, Bool]:
    """The lab's multifocal opacity added to a real film's grey levels (log domain)."""
    from radloop.lab.training.lungfields.train import insert_patchy

    zero = np.zeros(film.shape, dtype=np.float32)
    added, mask = insert_patchy(zero, lungs, rng, pixel_mm)
    out = 1.0 - (1.0 - np.clip(film, 0.0, 1.0)) * np.exp(-LOG_GAIN * added)
    return out.astype(np.float32), mask


def _real_variant(args: tuple[F32, F32, int, int, int, SelfTrainConfig]) -> tuple[F32, U8]:
    """One augmented copy of a real film with its targets (uint8, IGNORE where unknown)."""
    from radloop.lab.synth.randomize import random_view_augment
    from radloop.lab.training.lungfields.train import warp

    film, probs, seed, k, size, config = args
    rng = np.random.default_rng([seed, k, int(film.sum() * 1000) % (1 << 31)])
    targets = pseudo_targets(probs, config.band)
    lungs = (targets[0] == 1) | (targets[1] == 1)
    inserted = np.zeros(film.shape, dtype=bool)
    if rng.random() < config.lesion_share and lungs.any():
        columns = np.flatnonzero(lungs.any(axis=0))
        pixel_mm = 280.0 / max(int(columns[-1] - columns[0] + 1), 1)  # chest ~280 mm wide
        film, inserted = insert_into_film(film, lungs, rng, pixel_mm)
    masks: dict[str, Bool] = {}
    for k_, name in enumerate(("right", "left", "heart")):
        masks[name] = targets[k_] == 1
        masks[name + "_known"] = targets[k_] != IGNORE
    masks["opacity"] = inserted
    masks["opacity_known"] = inserted | (probs[3] < config.clear)
    masks["film"] = np.ones(film.shape, dtype=bool)
    display, masks = random_view_augment(film, masks, rng)
    if rng.random() < 0.7:
        display, masks = warp(display, masks, rng)
    x = equalise(_resize(display.astype(np.float32), (size, size)))
    y = np.full((4, size, size), IGNORE, dtype=np.uint8)
    padded = _resize((~masks["film"]).astype(np.float32), (size, size)) >= 0.999
    for k_, name in enumerate(("right", "left", "heart", "opacity")):
        value = _resize(masks[name].astype(np.float32), (size, size)) >= 0.5
        known = _resize(masks[name + "_known"].astype(np.float32), (size, size)) >= 0.999
        known |= padded  # the border the augmentation added holds nothing
        y[k_][known] = value[known]
    return x, y


def real_variants(
    films: list[F32], probs: F32, *, seed: int, copies: int, size: int, config: SelfTrainConfig
) -> tuple[F32, U8]:
    """``copies`` augmented copies of each real film (at WORK_SIZE) with their targets."""
    from radloop.lab.synth._deps import worker_pool

    jobs: list[tuple[F32, F32, int, int, int, SelfTrainConfig]] = []
    for film, p in zip(films, probs, strict=True):
        work = _resize(film, (WORK_SIZE, WORK_SIZE))
        maps = np.stack([_resize(m, (WORK_SIZE, WORK_SIZE)) for m in p])
        jobs.extend((work, maps, seed, k, size, config) for k in range(copies))
    with worker_pool(2) as pool:
        out = pool.map(_real_variant, jobs, chunksize=8)
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def masked_loss(torch: Any, logits: Any, target: Any) -> Any:
    """Binary cross-entropy plus soft Dice (lungs, heart) over the pixels not IGNOREd."""
    known = (target != IGNORE).float()
    value = torch.where(target == IGNORE, torch.zeros_like(target), target).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none")
    bce = (bce * known).sum() / known.sum().clamp(min=1.0)
    probs = torch.sigmoid(logits[:, :3]) * known[:, :3]
    truth = value[:, :3] * known[:, :3]
    inter = (probs * truth).sum(dim=(2, 3))
    total = probs.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))
    return bce + 1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean()


def self_train(
    net: Any,
    films: list[F32],
    lab: tuple[F32, U8],
    config: SelfTrainConfig,
    *,
    size: int,
    batch_size: int = 16,
    progress: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Train ``net`` further on ``films`` (pseudo-labelled) mixed with the ``lab`` variants.

    BatchNorm stays in evaluation mode throughout (its statistics are the real films'). Each
    epoch draws fresh copies of every film and as many lab variants. Returns what was done.
    """
    from radloop.lab.training.lungfields.train import _inputs

    torch = require_torch("self-training the lung-fields network")
    if not films:
        raise ValueError("self-training needs unlabelled real films (--adapt DIR), got none")
    started = time.monotonic()
    inputs = _inputs(films, size)
    probs = _teacher(net, torch, inputs)
    lab_x, lab_y = lab
    per_epoch = len(films) * config.copies
    optimiser = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=1e-4,
    )
    steps = (2 * per_epoch // batch_size) * config.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=max(steps, 1)
    )
    rng = np.random.default_rng(config.seed)
    history = []
    for epoch in range(config.epochs):
        rx, ry = real_variants(
            films, probs, seed=config.seed + epoch, copies=config.copies, size=size, config=config
        )
        pick = rng.choice(len(lab_x), size=min(per_epoch, len(lab_x)), replace=False)
        x = np.concatenate([rx, lab_x[pick]])
        y = np.concatenate([ry, lab_y[pick]])
        order = rng.permutation(len(x))
        net.eval()  # BatchNorm frozen; gradients still flow
        losses = []
        for step in range(len(x) // batch_size):
            idx = order[step * batch_size : (step + 1) * batch_size]
            logits, _ = net(torch.from_numpy(x[idx][:, None]))
            loss = masked_loss(torch, logits, torch.from_numpy(y[idx].astype(np.float32)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if schedule.last_epoch + 1 < max(steps, 1):
                schedule.step()
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "samples": len(x)})
        progress(
            f"self-training epoch {epoch + 1}/{config.epochs} loss {np.mean(losses):.3f} "
            f"on {len(rx)} real copies + {len(pick)} lab variants "
            f"({time.monotonic() - started:.0f} s)"
        )
    return {
        "films": len(films),
        "history": history,
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
