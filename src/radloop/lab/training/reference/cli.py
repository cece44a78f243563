"""``radloop train-reference`` (``radloop bench reference``: ``radloop.lab.bench.reference``).

``radloop train-reference --out DIR`` with its defaults is the recipe of the shipped weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["train_reference"]


@click.command("train-reference")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for reference.onnx, reference.json and the rendered data (DIR/data).",
)
@click.option(
    "--part",
    type=click.Choice(["all", "main", "devices", "lungs"]),
    default="all",
    show_default=True,
    help="Which network to train: the whole-image one (main), the device or lung crop "
    "network, or all three.",
)
@click.option(
    "--n-train",
    type=int,
    default=None,
    help="Synthetic studies to render and train on (default: the shipped recipe's).",
)
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the recipe's).")
@click.option("--seed", type=int, default=None, help="Seed of initialisation and batch order.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to cache the rendered training set (default DIR/data).",
)
def train_reference(
    out: Path,
    part: str,
    n_train: int | None,
    epochs: int | None,
    seed: int | None,
    data_dir: Path | None,
) -> None:
    """Train radloop's reference model on the synthetic lab and export it to ONNX.

    Three networks, each rendering its own training studies (profiles standard, portable,
    community) and training on 2 CPU threads: the whole-image network (DIR/reference.onnx,
    reference.json), the device network that reads tubes and lines from a full-resolution
    crop of the mediastinum (DIR/devices.onnx, devices.json), and the lung network that
    reads nodules and rib fractures from both lungs at about 1 mm per pixel, trained on
    nodules and healing rib fractures inserted into the lab's images (DIR/lungs.onnx,
    lungs.json). --n-train, --epochs and --seed change the recipe of the part trained (of the
    whole-image network with --part all). Needs pip install 'radloop[train,synth]'. The whole
    recipe takes about 40-50 min on 2 cores of a CPU with native bfloat16 (AVX-512 BF16 or
    AMX); elsewhere it trains in float32, about 1.5 h, and its weights differ from the
    shipped ones (another CPU's kernels also give weights that are not byte-identical but of
    the same quality: docs/benchmarks.md).
    """  # fmt: skip
    from dataclasses import replace

    from radloop.lab.training.reference.devices_train import DeviceConfig, train_devices
    from radloop.lab.training.reference.lungs_train import LungConfig, train_lungs
    from radloop.lab.training.reference.train import TrainConfig
    from radloop.lab.training.reference.train import train_reference as run

    given = (("n_train", n_train), ("epochs", epochs), ("seed", seed))
    overrides: dict[str, Any] = {k: v for k, v in given if v is not None}
    started = time.perf_counter()
    if part in ("all", "main"):
        sidecar = run(replace(TrainConfig(), **overrides), out, data_dir=data_dir, log=click.echo)
        validation = sidecar["validation"]
        click.echo(
            f"wrote {out / 'reference.onnx'} in {time.perf_counter() - started:.0f} s; "
            f"validation macro AUROC {validation['macro_auroc']}, zone accuracy "
            f"{validation['zone_exact_accuracy']}"
        )
    # The crop networks: each part's recipe, trainer, file and what its validation reports.
    crops: tuple[tuple[str, Any, Any, Callable[[dict[str, Any]], str]], ...] = (
        ("devices", DeviceConfig, train_devices,
         lambda v: f"AUROC {v['auroc']}, tip MAE (mm) {v['regression_mae']}"),
        ("lungs", LungConfig, train_lungs,
         lambda v: f"AUROC {v['auroc']} (nodules by size {v['auroc_by_size']['nodule']})"),
    )  # fmt: skip
    for name, recipe, trainer, summary in crops:
        if part not in ("all", name):
            continue
        config = replace(recipe(), **overrides) if part == name else recipe()
        validation = trainer(config, out, data_dir=data_dir, log=click.echo)["validation"]
        click.echo(
            f"wrote {out / (name + '.onnx')} after {time.perf_counter() - started:.0f} s; "
            f"validation {summary(validation)}"
        )
    if part in ("all", "main"):
        click.echo(
            f"next: `radloop fit-ood --model {out}` writes the OOD reference the scope guard "
            "uses (the shipped model has one)"
        )
