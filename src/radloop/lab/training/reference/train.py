"""Train the reference network on the synthetic lab and export it to ONNX (needs torch).

``train_reference(TrainConfig(), out)`` is the recipe of the shipped weights: it renders the
training set (``data.build_dataset``) into ``out/data`` unless already there, trains with fixed
seeds on ``threads`` CPU threads, chooses per-finding thresholds on a validation split (the
last ``val_fraction`` of the studies), and writes ``reference.onnx``, ``reference.json`` and
the torch weights ``reference.pt``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.training import require_torch
from radloop.lab.training.reference.card import render_model_card
from radloop.lab.training.reference.data import (
    TRAIN_PROFILES,
    TRAIN_SEED,
    build_dataset,
    load_dataset,
)
from radloop.models.reference.metrics import auroc, best_threshold
from radloop.models.reference.spec import (
    FIELD_MM,
    FINDINGS,
    HEATMAP_SIZE,
    INPUT_SIZE,
    REGRESSIONS,
    VIEWS,
    ZONED,
    ZONES,
)
from radloop.stats import sigmoid

__all__ = [
    "MODEL_VERSION",
    "Recipe",
    "TrainConfig",
    "export_network",
    "export_onnx",
    "fit_one_cycle",
    "train_reference",
]

MODEL_VERSION = "0.2.0"
ONNX_OPSET = 17


@dataclass(frozen=True)
class Recipe:
    """What every reference network's recipe has: data, schedule, seeds, threads
    (``fit_one_cycle`` and ``training_record`` read these)."""

    n_train: int = 3000
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    val_fraction: float = 0.1
    threads: int = 2
    data_seed: int = TRAIN_SEED
    profiles: tuple[str, ...] = TRAIN_PROFILES
    max_steps: int | None = None  # stop early (tests); None trains every epoch
    # Forward passes and losses in bfloat16 autocast (1.4-1.9 times as fast on a CPU with
    # AVX-512 BF16); "float32" trains in full precision.
    precision: str = "bfloat16"


@dataclass(frozen=True)
class TrainConfig(Recipe):
    """The whole-image network's recipe; the defaults reproduce the shipped weights (at
    224 px; a 320 px step costs about twice as much)."""

    epochs: int = 16  # with bfloat16 steps, 16 keep the whole recipe under 60 min
    widths: tuple[int, int, int, int, int] = (16, 32, 48, 96, 160)
    blocks: tuple[int, int, int, int] = (1, 2, 2, 1)
    extra: dict[str, Any] = field(default_factory=dict)


def _torch() -> Any:
    return require_torch("radloop train-reference")


def _augment(torch: Any, images: Any, generator: Any) -> Any:
    """Site-like variation: gamma, edge enhancement, noise; then per-image standardisation."""
    b = images.shape[0]

    def uniform(low: float, high: float) -> Any:
        return torch.rand(b, 1, 1, 1, generator=generator) * (high - low) + low

    x = images.clamp(0.0, 1.0) ** uniform(0.65, 1.5)
    blur = torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    x = x + uniform(0.0, 1.5) * (x - blur)
    slope = uniform(0.8, 1.3)
    x = (x - 0.5) * slope + 0.5
    x = x + torch.randn(x.shape, generator=generator) * uniform(0.0, 0.02)
    return _standardise(torch, x)


def _standardise(torch: Any, x: Any) -> Any:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mean) / std


def _losses(torch: Any, outputs: Any, batch: dict[str, Any]) -> Any:
    f = torch.nn.functional
    presence, zones, heatmaps, regression, view, _ = outputs
    frontal = batch["frontal"].float()
    nf = max(float(frontal.sum()), 1.0)
    loss_presence = (
        f.binary_cross_entropy_with_logits(presence, batch["presence"], reduction="none").mean(1)
        * frontal
    ).sum() / nf
    heat = f.binary_cross_entropy_with_logits(
        heatmaps, batch["heatmaps"], reduction="none",
        pos_weight=torch.tensor(4.0),
    ).mean(dim=(2, 3))  # fmt: skip
    loss_heat = (heat.mean(1) * frontal).sum() / nf
    zoned = torch.tensor([c in ZONED for c in FINDINGS], dtype=torch.float32)
    zone_mask = (batch["presence"] * zoned[None, :] * frontal[:, None])[:, :, None]
    zone_loss = f.binary_cross_entropy_with_logits(zones, batch["zones"], reduction="none")
    loss_zones = (zone_loss * zone_mask).sum() / zone_mask.sum().clamp_min(1.0) / len(ZONES)
    reg_mask = batch["regression_mask"]
    reg = f.smooth_l1_loss(regression, batch["regression"], reduction="none", beta=0.5)
    loss_reg = (reg * reg_mask).sum() / reg_mask.sum().clamp_min(1.0)
    loss_view = f.cross_entropy(view, batch["view"])
    total = loss_presence + 10.0 * loss_heat + loss_zones + loss_reg + 0.2 * loss_view
    parts = {"presence": loss_presence, "heat": loss_heat, "zones": loss_zones,
             "regression": loss_reg, "view": loss_view}  # fmt: skip
    return total, {k: float(v.detach()) for k, v in parts.items()}


def _batch(torch: Any, data: dict[str, npt.NDArray[Any]], index: npt.NDArray[np.int64]) -> Any:
    return {
        "image": torch.from_numpy(data["image"][index].astype(np.float32))[:, None],
        "presence": torch.from_numpy(data["presence"][index]),
        "zones": torch.from_numpy(data["zones"][index]),
        "heatmaps": torch.from_numpy(data["heatmaps"][index].astype(np.float32)),
        "regression": torch.from_numpy(data["regression"][index]),
        "regression_mask": torch.from_numpy(data["regression_mask"][index]),
        "view": torch.from_numpy(data["view"][index]),
        "frontal": torch.from_numpy(data["frontal"][index]),
    }


def _predict(
    torch: Any, model: Any, data: dict[str, npt.NDArray[Any]], index: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[Any]]:
    model.eval()
    out: dict[str, list[npt.NDArray[Any]]] = {}
    names = ("presence", "zones", "heatmaps", "regression", "view", "embedding")
    with torch.no_grad():
        for start in range(0, len(index), 64):
            part = index[start : start + 64]
            x = _standardise(
                torch, torch.from_numpy(data["image"][part].astype(np.float32))[:, None]
            )
            for name, value in zip(names, model(x), strict=True):
                if name != "heatmaps":
                    out.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _sigmoid(x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return np.asarray(sigmoid(x, limit=None), dtype=np.float64)


def validate(
    predictions: dict[str, npt.NDArray[Any]], data: dict[str, npt.NDArray[Any]],
    index: npt.NDArray[np.int64],
) -> dict[str, Any]:  # fmt: skip
    """Validation metrics and the per-finding thresholds chosen on them."""
    frontal = data["frontal"][index]
    views = data["view"][index]
    view_accuracy = float((predictions["view"].argmax(1) == views).mean())
    p = _sigmoid(predictions["presence"][frontal])
    y = data["presence"][index][frontal] > 0.5
    aurocs = {code: auroc(y[:, k], p[:, k]) for k, code in enumerate(FINDINGS)}
    thresholds = {code: best_threshold(y[:, k], p[:, k]) for k, code in enumerate(FINDINGS)}
    zone_p = _sigmoid(predictions["zones"][frontal]) >= 0.5
    zone_y = data["zones"][index][frontal] > 0.5
    hits = [bool((zone_p[i, k] == zone_y[i, k]).all())
            for k, code in enumerate(FINDINGS) if code in ZONED
            for i in np.flatnonzero(y[:, k])]  # fmt: skip
    reg_mask = data["regression_mask"][index][frontal] > 0
    reg_true = data["regression"][index][frontal]
    reg_pred = predictions["regression"][frontal]
    mae = {}
    for j, reg in enumerate(REGRESSIONS):
        m = reg_mask[:, j]
        if m.any():
            err = np.abs(reg_pred[m, j] - reg_true[m, j]) * reg.scale
            mae[reg.name] = round(float(err.mean()), 4)
    finite = [v for v in aurocs.values() if not math.isnan(v)]
    return {
        "n_images": len(index),
        "n_frontal": int(frontal.sum()),
        "macro_auroc": round(float(np.mean(finite)), 4) if finite else None,
        "auroc": {k: (round(v, 4) if not math.isnan(v) else None) for k, v in aurocs.items()},
        "zone_exact_accuracy": round(float(np.mean(hits)), 4) if hits else None,
        "regression_mae": mae,
        "view_accuracy": round(view_accuracy, 4),
        "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
    }


def export_onnx(model: Any, path: Path) -> None:
    """Write the network as ONNX (TorchScript exporter, opset 17, dynamic batch)."""
    from radloop.lab.training.reference.network import OUTPUTS

    export_network(model, path, "image", (INPUT_SIZE, INPUT_SIZE), OUTPUTS)


def export_network(
    model: Any, path: Path, input_name: str, shape: tuple[int, int], outputs: tuple[str, ...]
) -> None:
    """Write a one-channel image network as ONNX (TorchScript exporter, opset 17, dynamic
    batch), atomically."""
    torch = _torch()
    model.eval()
    dummy = torch.zeros(1, 1, *shape)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model, (dummy,), str(tmp), input_names=[input_name], output_names=list(outputs),
        dynamic_axes={input_name: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
        opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True,
    )  # fmt: skip
    tmp.replace(path)


def _float_outputs(module: Any, inputs: Any, outputs: Any) -> Any:
    if isinstance(outputs, tuple):
        return tuple(o.float() for o in outputs)
    return outputs.float()


def bf16_supported(torch: Any) -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the build
        return False


def precision_used(torch: Any, config: Recipe) -> str:
    """What ``config.precision`` becomes on this CPU: float32 without native bfloat16."""
    if config.precision not in ("bfloat16", "float32"):
        raise ValueError(f"precision: expected 'bfloat16' or 'float32', got {config.precision!r}")
    return config.precision if config.precision == "float32" or bf16_supported(torch) else "float32"


@contextlib.contextmanager
def training_precision(
    torch: Any, model: Any, config: Recipe, forward: Any = None, log: Any = print
) -> Iterator[Callable[[], Any]]:
    """Prepare ``model`` for training at ``config.precision`` and yield a factory of the
    context its forward passes and losses run in.

    ``bfloat16``: autocast (convolutions and matrix products in bfloat16; weights, optimiser
    state, BatchNorm statistics and the losses stay float32: ``forward``'s outputs, the model
    by default, are cast back). Not the channels-last layout: with torch 2.13's CPU build it
    corrupts the heap in the whole-image network's backward pass. ``float32``, or a CPU
    without native bfloat16 (then said through ``log``): nothing changes."""
    if precision_used(torch, config) == "float32":
        if config.precision == "bfloat16":
            log("this CPU has no native bfloat16 kernels (AVX-512 BF16 or AMX): training in "
                "float32, slower (the whole recipe about 1.5 h on 2 cores instead of 40-50 min), "
                "and the weights will differ from the shipped ones")  # fmt: skip
        yield contextlib.nullcontext
        return
    handle = (forward or model).register_forward_hook(_float_outputs)
    try:
        yield lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    finally:
        handle.remove()


def one_cycle(
    torch: Any, model: Any, config: Recipe, total_steps: int, *, warmup: float
) -> Callable[[Any], None]:
    """AdamW on a one-cycle schedule of ``total_steps`` (``config``'s rate and weight decay,
    ``warmup`` the rising share); returns ``update(loss)``: backward pass and one step."""
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=max(total_steps, 2), pct_start=warmup
    )

    def update(loss: Any) -> None:
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()

    return update


def fit_one_cycle(
    torch: Any,
    model: Any,
    config: Recipe,
    train_index: npt.NDArray[np.int64],
    loss_of: Any,
    desc: str,
) -> int:
    """Train ``model`` with AdamW on a one-cycle schedule over shuffled batches of
    ``train_index`` (``config``'s schedule and seed); ``loss_of(index)`` returns the batch's
    loss and a dict of parts for the progress bar. Returns the number of steps taken."""
    from tqdm import tqdm

    rng = np.random.default_rng(config.seed)
    steps_per_epoch = max(1, len(train_index) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    update = one_cycle(torch, model, config, total_steps, warmup=0.15)
    step = 0
    with (
        training_precision(torch, model, config) as precision,
        tqdm(total=total_steps, unit="step", desc=desc) as bar,
    ):
        while step < total_steps:
            order = rng.permutation(train_index)
            for start in range(0, steps_per_epoch * config.batch_size, config.batch_size):
                if step >= total_steps:
                    break
                model.train()
                with precision():
                    loss, parts = loss_of(order[start : start + config.batch_size])
                update(loss)
                step += 1
                bar.update(1)
                shown = {"loss": float(loss.detach()), **parts}
                bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
    return step


def train_reference(
    config: TrainConfig,
    out: Path,
    *,
    data_dir: Path | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Render the data (if needed), train, validate, export; returns the sidecar written."""
    torch = _torch()
    from tqdm import tqdm

    from radloop.lab.training.reference.network import NetworkConfig, ReferenceNetwork

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or out / "data"
    with tqdm(total=config.n_train, unit="study", desc="render") as bar:

        def advance(k: int) -> None:
            bar.update(k)

        shards = build_dataset(
            data_dir, config.n_train, seed=config.data_seed, profiles=config.profiles,
            workers=config.threads, progress=advance,
        )  # fmt: skip
    data_seconds = time.perf_counter() - started
    data = load_dataset(shards)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    n_studies = int(data["study"].max()) + 1
    val_from = round(n_studies * (1.0 - config.val_fraction))
    train_index = np.flatnonzero(data["study"] < val_from)
    val_index = np.flatnonzero(data["study"] >= val_from)
    model = ReferenceNetwork(
        NetworkConfig(widths=config.widths, blocks=config.blocks, input_size=INPUT_SIZE)
    )
    generator = torch.Generator().manual_seed(config.seed)

    def loss_of(index: npt.NDArray[np.int64]) -> tuple[Any, dict[str, float]]:
        batch = _batch(torch, data, index)
        loss, parts = _losses(torch, model(_augment(torch, batch["image"], generator)), batch)
        return loss, {"heat": parts["heat"]}

    train_started = time.perf_counter()
    step = fit_one_cycle(torch, model, config, train_index, loss_of, "train")
    train_seconds = time.perf_counter() - train_started
    metrics = validate(_predict(torch, model, data, val_index), data, val_index)
    log(f"validation: macro AUROC {metrics['macro_auroc']}, zones {metrics['zone_exact_accuracy']}")
    export_onnx(model, out / "reference.onnx")
    torch.save(model.state_dict(), out / "reference.pt")
    sidecar = {
        "schema": "radloop.reference/v1",
        "version": MODEL_VERSION,
        "input": {
            "size": INPUT_SIZE,
            "field_mm": FIELD_MM,
            "normalisation": "per-image z-score",
            "channels": 1,
        },
        "heatmap_size": HEATMAP_SIZE,
        "findings": list(FINDINGS),
        "zones": [z.value for z in ZONES],
        "zoned_findings": list(ZONED),
        "views": list(VIEWS),
        "regressions": regression_records(REGRESSIONS),
        "thresholds": metrics.pop("thresholds"),
        "zone_threshold": 0.5,
        "training": training_record(
            config, len(train_index), len(val_index), step, data_seconds, train_seconds
        ),
        "validation": metrics,
    }
    sidecar["parameters"] = int(sum(p.numel() for p in model.parameters()))
    (out / "reference.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(render_model_card(sidecar, out / "reference.onnx"))
    return sidecar


def regression_records(regressions: Any) -> list[dict[str, Any]]:
    """The sidecar's description of regression targets (name, finding, encoding)."""
    return [
        {"name": r.name, "finding": r.finding, "offset": r.offset, "scale": r.scale}
        for r in regressions
    ]


def training_record(
    config: Recipe, n_images: int, n_val: int, steps: int, data_seconds: float, train_seconds: float
) -> dict[str, Any]:
    """The sidecar's ``training`` entry: the recipe (a dataclass) and what the run took."""
    return {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "n_images": n_images,
        "n_val_images": n_val,
        "steps": steps,
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "torch": str(_torch().__version__),
        "precision": precision_used(_torch(), config),  # what the run used
    }
