"""``radloop train-lungfields``: the lung-fields network's recipe (``radloop bench sim2real``)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

__all__ = ["train_lungfields_command"]


@click.command("train-lungfields")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for lungfields.onnx, lungfields.json and the rendered data (DIR/data).",
)
@click.option(
    "--adapt",
    "adapt_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder: layout of UNLABELLED real films whose BatchNorm statistics the network "
    "adopts (AdaBN); only films of patients without any lung outline are read. The shipped "
    "network used ../shared/data/hannover-dev.",
)
@click.option("--n-train", type=int, default=None, help="Lab studies to render and train on.")
@click.option("--epochs", type=int, default=None, help="Training epochs.")
@click.option("--seed", type=int, default=None, help="Seed of initialisation, variants and order.")
@click.option(
    "--opacity-share",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of the exposures with multifocal opacity inserted (default 0.5).",
)
@click.option(
    "--confluent-share",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of those whose patches are confluent, a white lung (default 0.25).",
)
@click.option(
    "--max-amplitude",
    type=click.FloatRange(min=0.1, min_open=True),
    default=None,
    help="The densest inserted opacity, added to the line integral (default 2.5).",
)
@click.option(
    "--self-train-epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Epochs of self-training on the --adapt films after adaptation: the adapted network "
    "labels them itself, lab opacity is inserted into them, and it trains further "
    "(default 3; 0 skips it).",
)
@click.option(
    "--self-train-rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Rounds of self-training: each round's network labels the films for the next; "
    "every round but the last is written to DIR/roundK (default 1).",
)
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from this recipe's exported lungfields.onnx (already adapted): the first "
    "stage's training and adaptation are skipped.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to cache the rendered lab studies (default DIR/data).",
)
def train_lungfields_command(
    out: Path,
    adapt_dir: Path | None,
    n_train: int | None,
    epochs: int | None,
    seed: int | None,
    opacity_share: float | None,
    confluent_share: float | None,
    max_amplitude: float | None,
    self_train_epochs: int | None,
    self_train_rounds: int | None,
    init: Path | None,
    data_dir: Path | None,
) -> None:
    """Train the lung-fields network (lungs, heart, opacity) on the synthetic lab alone.

    Renders lab studies with exact lung fields, exposes each several times through
    randomised physics and processing (SyntheX-style domain randomisation), trains a small
    U-Net on 2 CPU threads, adapts it to the --adapt films and self-trains it on them, and
    exports DIR/lungfields.onnx with DIR/lungfields.json. No real label is read. Needs
    pip install 'radloop[train,synth]'; about 52 min on 2 cores (docs/benchmarks.md). Copy
    both files into a model folder, or pass --model-dir to `radloop bench sim2real`.
    """
    from radloop.lab.training.lungfields.train import LungFieldsConfig, train_lung_fields

    given = (
        ("n_train", n_train),
        ("epochs", epochs),
        ("seed", seed),
        ("opacity_share", opacity_share),
        ("confluent_share", confluent_share),
        ("max_amplitude", max_amplitude),
        ("self_train_epochs", self_train_epochs),
        ("self_train_rounds", self_train_rounds),
    )
    overrides: dict[str, Any] = {k: v for k, v in given if v is not None}
    if adapt_dir is not None:
        overrides["adapt_dir"] = str(adapt_dir)
    started = time.perf_counter()
    sidecar = train_lung_fields(
        replace(LungFieldsConfig(), **overrides),
        out,
        data_dir=data_dir,
        init=init,
        progress=click.echo,
    )
    figures = sidecar["validation"]
    click.echo(
        f"wrote {out / 'lungfields.onnx'} in {time.perf_counter() - started:.0f} s; lab "
        f"validation Dice lungs {figures['dice_lungs']:.3f}, heart {figures['dice_heart']:.3f}, "
        f"opacity {figures['dice_opacity']:.3f}"
    )
