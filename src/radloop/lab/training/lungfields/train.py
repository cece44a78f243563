"""Train the lung-fields network (:mod:`radloop.models.reference.lungfields`) on the lab alone.

``train_lung_fields(LungFieldsConfig(), out)`` is the recipe of the shipped
``lungfields.onnx``:

1. **Render** ``n_train`` lab studies (:mod:`.data`: line integrals and exact visible lung
   fields, heart and opacity; cached).
2. **Randomise** (SyntheX-style, :mod:`radloop.lab.synth.randomize`): every study is exposed
   ``variants`` times, each through a freshly drawn physics and processing profile (dose,
   scatter with and without a grid, heel effect, detector blur and noise, unsharp masking,
   LUT family), then an image-level augmentation (affine, zoom-out onto a padded soft-tissue
   border so the lungs never meet an unnatural frame, markers, wires, occlusions, blur, noise).
   Each variant is resized to the network's square input and histogram-equalised as at run
   time (:func:`~radloop.models.reference.lungfields.equalise`).
3. **Train** a small U-Net (BatchNorm, four scales) with binary cross-entropy plus soft Dice on
   the lung and heart channels and cross-entropy on opacity; AdamW with a one-cycle schedule.
4. **Adapt** (AdaBN, Li et al. 2016): the BatchNorm statistics are recomputed on unlabelled
   real films (``adapt_dir``, a ``folder:`` layout: the recipe uses hannover-dev's patients
   none of whose films carries a lung outline, so no film measured is seen). No label of any
   real film is read.
5. **Self-train** (:mod:`.selftrain`, ``self_train_epochs`` per round, ``self_train_rounds``
   rounds) on the same unlabelled films: the network labels them itself, the lab's opacity is
   inserted into them with exact truth, and it trains further on them mixed with lab
   variants, BatchNorm frozen.
6. **Export** to ONNX (opset 17) with the sidecar ``lungfields.json`` and its validation
   figures on held-out lab studies (another seed); the opacity threshold and the domain
   reference are fitted after the last stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.bench.sim2real_metrics import dice
from radloop.lab.training import require_torch
from radloop.lab.training.lungfields.data import (
    LungFieldSample,
    adaptation_films,
    render_lung_fields,
)
from radloop.models.reference.lungfields import LUNG_FIELDS_ONNX, _resize, equalise
from radloop.models.reference.metrics import best_threshold

__all__ = ["LungFieldsConfig", "adaptation_films", "train_lung_fields"]

F32 = npt.NDArray[np.float32]
CHANNELS = ("right", "left", "heart", "opacity")


@dataclass(frozen=True)
class LungFieldsConfig:
    """The recipe's settings (defaults: the shipped network)."""

    n_train: int = 600
    n_val: int = 60
    variants: int = 4
    input_size: int = 192
    base_channels: int = 12
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 20261207
    data_seed: int = 51
    val_seed: int = 52
    threads: int = 2
    adapt_dir: str | None = None
    adapt_limit: int = 120
    opacity_share: float = 0.5
    """Share of the exposures with multifocal opacity inserted (:func:`insert_patchy`)."""
    confluent_share: float = 0.25
    """Share of those where the patches are confluent (a "white lung")."""
    max_amplitude: float = 2.5
    """The densest inserted opacity, added to the line integral at a patch's centre."""
    self_train_epochs: int = 3
    """Epochs of self-training on the unlabelled adaptation films (:mod:`.selftrain`)."""
    self_train_rounds: int = 1
    """Rounds of it: each round's student is the next round's teacher."""


def insert_patchy(
    line: F32,
    lungs: npt.NDArray[np.bool_],
    rng: np.random.Generator,
    pixel_mm: float,
    *,
    confluent_share: float = 0.25,
    max_amplitude: float = 2.5,
) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Multifocal airspace opacity inserted into a line integral, with its exact mask.

    1-8 smooth patches 15-90 mm across with a mottled texture, placed in the lung fields and
    biased to the lower and peripheral lung, where viral and organising pneumonia lie; in
    ``confluent_share`` of the films they are confluent (a "white lung": 6-8 patches 60-90 mm
    across). Ground glass to dense consolidation with fluid: 200-1000 HU above aerated lung
    over 30-150 mm of ray, i.e. 0.1 to ``max_amplitude`` (2.5) added to the line integral at
    a patch's centre (log-uniform). The
    patch is its smooth profile clipped to the lungs; its mask is where the profile exceeds
    0.3 of its peak. The lung fields stay lung: an opaque lung is still outlined as lung.
    """
    from scipy import ndimage

    rows, cols = np.nonzero(lungs)
    if rows.size == 0:
        return line, np.zeros_like(lungs)
    profile = np.zeros(line.shape, dtype=np.float32)
    centre = cols.mean()
    weights = (rows - rows.min() + 1.0) ** 2 * (np.abs(cols - centre) + 5.0)
    confluent = bool(rng.random() < confluent_share)
    count = int(rng.integers(6, 9)) if confluent else int(rng.integers(1, 9))
    for _ in range(count):
        k = int(rng.choice(rows.size, p=weights / weights.sum()))
        seed = np.zeros(line.shape, dtype=np.float32)
        seed[rows[k], cols[k]] = 1.0
        radius = float(rng.uniform(60.0, 90.0) if confluent else rng.uniform(15.0, 90.0))
        radius /= pixel_mm
        noise = ndimage.gaussian_filter(rng.standard_normal(line.shape), radius / 3)
        blob = ndimage.gaussian_filter(seed, radius)
        blob = blob / max(float(blob.max()), 1e-12) * (1.0 + 0.6 * noise / (noise.std() + 1e-6))
        blob = np.clip(blob, 0.0, 1.0)
        profile = np.maximum(profile, blob.astype(np.float32) * float(rng.uniform(0.3, 1.0)))
    profile *= lungs
    amplitude = float(np.exp(rng.uniform(np.log(0.1), np.log(max_amplitude))))
    out = (line + amplitude * profile).astype(np.float32)
    return out, profile >= 0.3 * max(float(profile.max()), 1e-9)


def warp(
    display: F32, masks: dict[str, npt.NDArray[np.bool_]], rng: np.random.Generator
) -> tuple[F32, dict[str, npt.NDArray[np.bool_]]]:
    """Shape randomisation between bodies: an anisotropic scale (width 0.85-1.2 of height:
    deep and shallow inspiration, AP and PA) and a smooth elastic field (up to 5 % of the
    side), applied to the image and its masks alike (masks by nearest neighbour)."""
    from scipy import ndimage

    shape = display.shape
    rr, cc = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    sx, sy = float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.9, 1.1))
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    fields = []
    for _ in range(2):
        coarse = rng.standard_normal((6, 6))
        field = ndimage.zoom(coarse, (shape[0] / 6, shape[1] / 6), order=3)[: shape[0], : shape[1]]
        fields.append(field / max(float(np.abs(field).max()), 1e-6))
    amount = float(rng.uniform(0.0, 0.05)) * min(shape)
    src_r = cy + (rr - cy) / sy + amount * fields[0]
    src_c = cx + (cc - cx) / sx + amount * fields[1]
    coords = np.stack([src_r, src_c])
    out = ndimage.map_coordinates(display, coords, order=1, mode="nearest").astype(np.float32)
    moved = {
        k: ndimage.map_coordinates(m.astype(np.uint8), coords, order=0, mode="constant") > 0
        for k, m in masks.items()
    }
    return out, moved


MU_BONE_EXTRA = 0.02  # per mm above tissue: cortical bone's excess at the lab's bone gain


def extend_field(
    line: F32, limits: tuple[int, int, int, int], rng: np.random.Generator, pixel_mm: float
) -> F32:
    """The chest beyond the CT's field: neck, shoulders and clavicles above, soft tissue beside.

    The lab's CT begins at the lung apices, so its films stop there; real films show the
    neck, the shoulders and the clavicles above the apices. Rows above the field get an
    elliptical body cross-section (the chest's width at the field's top for 15-60 mm of
    shoulders, narrowing to a neck 90-140 mm wide; the field's top row fades into it over 8-20
    mm), AP depth 110-180 mm of tissue, two
    clavicles (10-16 mm bone strips rising laterally from near the midline, 5-25 mm above the
    field) and the cervical spine (a 25-35 mm bone strip). Columns beside the field continue
    the chest wall's edge and fade to air over 15-60 mm. No lung lies in any of it.
    """
    from radloop.lab.synth.phantom import MU_WATER_PER_MM  # soft tissue as water

    top, c0, _bottom, c1 = limits
    rows, cols = line.shape
    out = line.copy()
    edge = out[min(top, rows - 1)]
    body = np.flatnonzero(edge > 0.5 * max(float(edge.max()), 1e-6))
    if body.size == 0:
        return out
    mid = (body[0] + body[-1]) / 2.0
    chest_half = max((body[-1] - body[0]) / 2.0, 10.0 / pixel_mm)
    shoulders = rng.uniform(15.0, 60.0) / pixel_mm
    taper = rng.uniform(20.0, 50.0) / pixel_mm
    neck_half = rng.uniform(45.0, 70.0) / pixel_mm
    depth = rng.uniform(110.0, 180.0)
    blend = rng.uniform(8.0, 20.0) / pixel_mm
    c = np.arange(cols, dtype=np.float32)
    for r in range(top - 1, -1, -1):
        above = top - r
        if above <= shoulders:
            half = chest_half
        else:
            t = min(1.0, (above - shoulders) / taper)
            half = chest_half + (neck_half - chest_half) * t
        u = (c - mid) / half
        body_row = MU_WATER_PER_MM * depth * np.sqrt(np.clip(1.0 - u * u, 0.0, None))
        w = min(1.0, above / blend)  # the field's top row fades into the shoulders
        out[r] = (1.0 - w) * edge + w * body_row
    if top > 0:
        spine_half = rng.uniform(12.5, 17.5) / pixel_mm
        out[:top, max(0, int(mid - spine_half)) : int(mid + spine_half) + 1] += (
            MU_BONE_EXTRA * rng.uniform(15.0, 30.0)
        )
        rise = rng.uniform(5.0, 25.0) / pixel_mm
        width = rng.uniform(10.0, 16.0) / pixel_mm / 2
        for sign in (-1.0, 1.0):
            start = mid + sign * rng.uniform(10.0, 25.0) / pixel_mm
            for cc in range(cols):
                reach = sign * (cc - start)
                if reach < 0 or reach > chest_half:
                    continue
                centre = top - rise * (reach / chest_half) ** 0.7
                r0, r1 = int(centre - width), int(centre + width) + 1
                out[max(0, r0) : max(0, min(top + int(width), r1)), cc] += MU_BONE_EXTRA * 12.0
    fade = rng.uniform(15.0, 60.0) / pixel_mm
    for cc in range(0, min(c0, cols)):
        out[:, cc] = out[:, c0] * np.exp(-(c0 - cc) / fade)
    for cc in range(max(c1, 0), cols):
        out[:, cc] = out[:, c1 - 1] * np.exp(-(cc - c1 + 1) / fade)
    return out.astype(np.float32)


def _variant(
    args: tuple[LungFieldSample, int, int, int, LungFieldsConfig],
) -> tuple[F32, npt.NDArray[np.uint8]]:
    """One randomised exposure of a sample: (equalised input, uint8 target stack)."""
    from radloop.lab.synth.imaging import expose
    from radloop.lab.synth.projector import View
    from radloop.lab.synth.randomize import random_profile, random_view_augment
    from radloop.lab.synth.variation import PROFILES

    sample, seed, k, size, config = args
    rng = np.random.default_rng([seed, k, int(sample.line.sum() * 1000) % (1 << 31)])
    masks = {c: getattr(sample, c) for c in CHANNELS}
    line = sample.line
    if rng.random() < config.opacity_share:
        line, patches = insert_patchy(
            line,
            sample.right | sample.left,
            rng,
            sample.pixel_mm,
            confluent_share=config.confluent_share,
            max_amplitude=config.max_amplitude,
        )
        masks["opacity"] = masks["opacity"] | patches
    limits = sample.limits
    if rng.random() < 0.8:
        line = extend_field(line, limits, rng, sample.pixel_mm)
        limits = (0, 0, line.shape[0], line.shape[1])
    profile = random_profile(rng, base=PROFILES[sample.profile])
    exposure = expose(line, profile, rng, pixel_mm=sample.pixel_mm, view=View.PA, limits=limits)
    display, masks = random_view_augment(exposure.display, masks, rng)
    if rng.random() < 0.7:
        display, masks = warp(display, masks, rng)
    x = equalise(_resize(display.astype(np.float32), (size, size)))
    y = np.stack(
        [(_resize(masks[c].astype(np.float32), (size, size)) >= 0.5) for c in CHANNELS]
    ).astype(np.uint8)
    return x, y


def make_variants(
    samples: list[LungFieldSample],
    *,
    seed: int,
    variants: int,
    size: int,
    workers: int = 2,
    config: LungFieldsConfig | None = None,
) -> tuple[F32, npt.NDArray[np.uint8]]:
    """``variants`` randomised exposures of each sample, opacity inserted as ``config`` says
    (the recipe's defaults when None)."""
    from radloop.lab.synth._deps import worker_pool

    how = config or LungFieldsConfig()
    jobs = [(s, seed, k, size, how) for s in samples for k in range(variants)]
    with worker_pool(workers) as pool:
        out = pool.map(_variant, jobs, chunksize=16)
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def build_network(base: int = 16) -> Any:
    torch = require_torch("training the lung-fields network")
    from torch import nn

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = [base, base * 2, base * 4, base * 8, base * 8]
            self.down = nn.ModuleList([block(1, c[0])] + [block(c[i], c[i + 1]) for i in range(4)])
            self.up = nn.ModuleList([block(c[i + 1] + c[i], c[i]) for i in range(3, -1, -1)])
            self.head = nn.Conv2d(c[0], len(CHANNELS), 1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x: Any) -> tuple[Any, Any]:
            skips = []
            for i, layer in enumerate(self.down):
                x = layer(x if i == 0 else self.pool(x))
                skips.append(x)
            embedding = x.mean(dim=(2, 3))
            for layer, skip in zip(self.up, reversed(skips[:-1]), strict=True):
                x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
                x = layer(torch.cat([x, skip], dim=1))
            return self.head(x), embedding

    return UNet()


def _loss(torch: Any, logits: Any, target: Any) -> Any:
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    probs = torch.sigmoid(logits[:, :3])
    inter = (probs * target[:, :3]).sum(dim=(2, 3))
    total = probs.sum(dim=(2, 3)) + target[:, :3].sum(dim=(2, 3))
    dice = 1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean()
    return bce + dice


def _forward(net: Any, torch: Any, x: F32) -> tuple[F32, F32]:
    """The network over inputs ``x`` (N, S, S) in batches: probability maps and embeddings."""
    net.eval()
    maps, embeddings = [], []
    with torch.no_grad():
        for i in range(0, len(x), 32):
            logits, embedding = net(torch.from_numpy(x[i : i + 32, None]))
            maps.append(torch.sigmoid(logits).numpy())
            embeddings.append(embedding.numpy())
    return (
        np.concatenate(maps).astype(np.float32),
        np.concatenate(embeddings).astype(np.float32),
    )


def _validate(probs: F32, y: npt.NDArray[np.uint8]) -> dict[str, float]:
    """Mean Dice per channel, and of both lungs, of the maps at 0.5 against the targets."""
    p = probs > 0.5
    out = {}
    for k, name in enumerate(CHANNELS):
        out[f"dice_{name}"] = float(np.mean([dice(p[i, k], y[i, k] > 0) for i in range(len(p))]))
    lungs = [dice(p[i, 0] | p[i, 1], (y[i, 0] | y[i, 1]) > 0) for i in range(len(p))]
    out["dice_lungs"] = float(np.mean(lungs))
    return out


def opacity_threshold(probs: F32, y: npt.NDArray[np.uint8], min_share: float = 0.05) -> float:
    """The side-level opacity threshold of highest F1 on held-out lab variants.

    Per lung side of each variant (its true field): the score is the mean opacity probability
    over the field, the label whether opacity covers at least ``min_share`` of it. Chosen on
    the lab alone, as every setting of the network, by the reference model's own F1 search
    (:func:`radloop.models.reference.metrics.best_threshold`).
    """
    scores, labels = [], []
    for p, t in zip(probs, y, strict=True):
        for k in (0, 1):
            field = t[k] > 0
            if field.sum() < 20:
                continue
            scores.append(float(p[3][field].mean()))
            labels.append(bool((t[3][field] > 0).mean() >= min_share))
    return round(best_threshold(labels, scores), 2)


def _inputs(films: list[F32], size: int) -> F32:
    """Real films as the network's inputs (resized square, equalised), as at run time."""
    if not films:
        return np.zeros((0, size, size), dtype=np.float32)
    return np.stack([equalise(_resize(f, (size, size))) for f in films])


def _adapt(net: Any, torch: Any, x: F32) -> None:
    """AdaBN: BatchNorm running statistics recomputed on unlabelled real films' inputs."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over every batch
    net.train()
    with torch.no_grad():
        for i in range(0, len(x), 16):
            net(torch.from_numpy(x[i : i + 16, None]))
    net.eval()


def _fit_ood(lab: F32, real: F32) -> dict[str, Any]:
    """The domain reference: the embeddings of held-out lab variants and of the unlabelled
    adaptation films (Mahalanobis, Ledoit-Wolf, 99th percentile)."""
    from radloop.models.ood import MahalanobisScorer

    fitted = MahalanobisScorer.fit(np.concatenate([lab, real])).to_dict()
    fitted["fitted_on"] = {"lab_films": len(lab), "unlabelled_real_films": len(real)}
    return fitted


def train_lung_fields(
    config: LungFieldsConfig,
    out: Path,
    *,
    data_dir: Path | None = None,
    init: Path | None = None,
    progress: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Render, randomise, train, adapt, self-train and export; returns the sidecar written.

    With ``init`` (an exported ``lungfields.onnx`` of this recipe, already adapted), the
    first stage's training and adaptation are skipped and the run starts from it.
    """
    torch = require_torch("training the lung-fields network")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out.mkdir(parents=True, exist_ok=True)
    cache = data_dir or out / "data"
    started = time.monotonic()
    samples = render_lung_fields(cache, config.n_train, seed=config.data_seed)
    val = render_lung_fields(cache, config.n_val, seed=config.val_seed)
    rendered = time.monotonic()
    progress(f"rendered {len(samples)} + {len(val)} studies in {rendered - started:.0f} s")
    size = config.input_size
    x, y = make_variants(
        samples, seed=config.seed, variants=config.variants, size=size, config=config
    )
    vx, vy = make_variants(val, seed=config.seed + 1, variants=1, size=size, config=config)
    randomised = time.monotonic()
    progress(f"{len(x)} training variants in {randomised - rendered:.0f} s")
    films: list[F32] = []
    if config.adapt_dir:
        films = adaptation_films(Path(config.adapt_dir), config.adapt_limit)
    real = _inputs(films, size)
    history: list[dict[str, Any]] = []
    if init is None:
        net = build_network(config.base_channels)
        history = _train(net, torch, config, x, y, vx, vy, progress)
        if len(real):
            _adapt(net, torch, real)
            progress(f"BatchNorm statistics adapted on {len(real)} unlabelled films")
    else:
        from radloop.lab.training.lungfields.selftrain import network_from_onnx

        net = network_from_onnx(init, config.base_channels)
        progress(f"started from {init}")
    trained = time.monotonic()
    minutes = {
        "render": round((rendered - started) / 60, 1),
        "randomise": round((randomised - rendered) / 60, 1),
        "train": round((trained - randomised) / 60, 1),
    }
    first = _first_stage(init) if init is not None else {}
    minutes.update(first.get("minutes", {}))  # a first stage run before, in ``init``'s run
    base: dict[str, Any] = {
        "config": asdict(config),
        "history": history or first.get("history", []),
        "adapted_films": len(films),
        "minutes": minutes,
    }
    if init is not None:
        base["initialised_from"] = first["initialised_from"]
    rounds: list[dict[str, Any]] = []
    if config.self_train_epochs and not films:
        progress("no unlabelled real films (--adapt DIR): self-training skipped")
    for k in range(config.self_train_rounds if config.self_train_epochs and films else 0):
        from radloop.lab.training.lungfields.selftrain import SelfTrainConfig, self_train

        how = SelfTrainConfig(epochs=config.self_train_epochs, seed=SelfTrainConfig.seed + k)
        stage = self_train(
            net, films, (x, y), how, size=size, batch_size=config.batch_size, progress=progress
        )
        rounds.append({**stage, "config": asdict(how)})
        if k + 1 < config.self_train_rounds:  # each round's student, kept beside the last
            kept = {**base, "self_training": rounds}
            kept["minutes"] = {**minutes, "self_train": _total(rounds)}
            _export(net, torch, (vx, vy), real, out / f"round{k + 1}", kept)
    if rounds:
        base["self_training"] = rounds
        base["minutes"] = {**minutes, "self_train": _total(rounds)}
    return _export(net, torch, (vx, vy), real, out, base)


def _total(rounds: list[dict[str, Any]]) -> float:
    return round(sum(float(r["minutes"]) for r in rounds), 1)


def _export(
    net: Any,
    torch: Any,
    validation: tuple[F32, npt.NDArray[np.uint8]],
    real: F32,
    out: Path,
    base: dict[str, Any],
) -> dict[str, Any]:
    """Validate on the lab, choose the opacity threshold there, fit the domain reference, and
    write ``out/lungfields.onnx`` with its sidecar (``base`` merged in); returns the sidecar."""
    out.mkdir(parents=True, exist_ok=True)
    vx, vy = validation
    probs, embeddings = _forward(net, torch, vx)
    final = _validate(probs, vy)
    size = int(vx.shape[-1])
    ood = _fit_ood(embeddings, _forward(net, torch, real)[1] if len(real) else embeddings[:0])
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, size, size),),
        str(out / LUNG_FIELDS_ONNX),
        input_names=["image"],
        output_names=["maps", "embedding"],
        opset_version=17,
        dynamo=False,
    )
    sidecar = {
        "version": f"lungfields-{time.strftime('%Y%m%d-%H%M')}",
        "input": {"size": size, "normalisation": "histogram equalisation"},
        "outputs": list(CHANNELS),
        "opacity_threshold": opacity_threshold(probs, vy),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "validation": {k: round(v, 4) for k, v in final.items()},
        "ood": ood,
        "torch": str(torch.__version__),
        **base,
    }
    (out / "lungfields.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def _first_stage(init: Path) -> dict[str, Any]:
    """What the sidecar beside ``init`` says of the first stage (its randomisation and training
    minutes, its history), so that the times recorded are the whole recipe's."""
    beside = init.parent / "lungfields.json"
    first = json.loads(beside.read_text()) if beside.is_file() else {}
    earlier = first.get("minutes", {})
    return {
        "initialised_from": {"path": str(init), "version": first.get("version")},
        "minutes": {k: earlier[k] for k in ("randomise", "train") if k in earlier},
        "history": first.get("history", []),
    }


def _train(
    net: Any,
    torch: Any,
    config: LungFieldsConfig,
    x: F32,
    y: npt.NDArray[np.uint8],
    vx: F32,
    vy: npt.NDArray[np.uint8],
    progress: Callable[[str], Any],
) -> list[dict[str, Any]]:
    """The first stage: the network trained on the lab variants; returns its history."""
    started = time.monotonic()
    steps_per_epoch = len(x) // config.batch_size
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=steps_per_epoch * config.epochs
    )
    order_rng = np.random.default_rng(config.seed)
    history = []
    for epoch in range(config.epochs):
        net.train()
        order = order_rng.permutation(len(x))
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb = torch.from_numpy(x[idx][:, None])
            yb = torch.from_numpy(y[idx].astype(np.float32))
            logits, _ = net(xb)
            loss = _loss(torch, logits, yb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        figures = _validate(_forward(net, torch, vx)[0], vy)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **figures})
        progress(
            f"epoch {epoch + 1}/{config.epochs} loss {np.mean(losses):.3f} "
            f"lab dice {figures['dice_lungs']:.3f} ({time.monotonic() - started:.0f} s)"
        )
    return history
