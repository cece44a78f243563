"""``radloop train-reference`` (``radloop bench reference`` lives in ``radloop.bench.reference``).

``radloop train-reference --out DIR`` with its defaults is the recipe of the shipped weights.
"""

from __future__ import annotations

import time
from pathlib import Path

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
    out: Path, n_train: int | None, epochs: int | None, seed: int | None, data_dir: Path | None
) -> None:
    """Train radloop's reference model on the synthetic lab and export it to ONNX.

    Renders the training studies (profiles standard, portable, community), trains on 2 CPU
    threads and writes DIR/reference.onnx and DIR/reference.json. Needs
    pip install 'radloop[train,synth]'.
    """  # fmt: skip
    from dataclasses import replace

    from radloop.models.reference.train import TrainConfig
    from radloop.models.reference.train import train_reference as run

    config = TrainConfig()
    if n_train is not None:
        config = replace(config, n_train=n_train)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if seed is not None:
        config = replace(config, seed=seed)
    started = time.perf_counter()
    sidecar = run(config, out, data_dir=data_dir, log=click.echo)
    validation = sidecar["validation"]
    click.echo(
        f"wrote {out / 'reference.onnx'} in {time.perf_counter() - started:.0f} s; validation "
        f"macro AUROC {validation['macro_auroc']}, zone accuracy "
        f"{validation['zone_exact_accuracy']}"
    )
    click.echo(
        f"next: `radloop fit-ood --model {out}` writes the OOD reference the scope guard uses "
        "(the shipped model has one)"
    )
