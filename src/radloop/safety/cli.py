"""``radloop scope`` and ``radloop calibrate``: the safety layer from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["calibrate", "scope"]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
def scope(paths: tuple[Path, ...], as_json: bool) -> None:
    """Say whether each image is in radloop's intended use (adult frontal chest radiographs).

    Exit status 0 when every image is accepted or flagged, 1 when any is refused.
    """
    from radloop.safety.scope import assess_study
    from radloop.study import load_studies

    refused = False
    for path in paths:
        for study in load_studies(path):
            for decision in assess_study(study):
                refused = refused or decision.refused
                if as_json:
                    click.echo(json.dumps(decision.to_json()))
                    continue
                colour = {"accepted": "green", "flagged": "yellow", "refused": "red"}
                click.secho(
                    f"{decision.outcome.value:8} {decision.source}",
                    fg=colour[decision.outcome.value],
                )
                for reason in decision.reasons:
                    click.echo(f"         - {reason.code}: {reason.text}")
    if refused:
        raise SystemExit(1)


@click.command()
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Labelled claims: a .csv or .jsonl file, or a folder of them (format in docs/safety.md).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The calibration JSON file to write.",
)
@click.option(
    "--plot",
    "plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Reliability diagram PNG (default: next to --out, .png).",
)
@click.option(
    "--holdout",
    default=0.3,
    show_default=True,
    help="Share of studies held out to measure calibration.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the study split.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def calibrate(
    data: Path, out: Path, plot: Path | None, holdout: float, seed: int, as_json: bool
) -> None:
    """Fit temperature and isotonic calibrators on labelled claims; report ECE and Brier."""
    from radloop.safety.calibration import fit_calibrator, read_labelled_claims
    from radloop.safety.reliability import save_reliability_diagram

    result = fit_calibrator(read_labelled_claims(data), holdout=holdout, seed=seed)
    result.calibrator.save(out)
    plot = plot or out.with_suffix(".png")
    present = [int(v) for v in result.test_present]
    curves = [
        (name, candidate.presence_probabilities(result.test_signals), present)
        for name, candidate in result.candidates.items()
        if name in ("identity", result.calibrator.method)
    ]
    save_reliability_diagram(
        plot, [("before" if n == "identity" else f"after ({n})", p, y) for n, p, y in curves]
    )
    summary = {
        "out": str(out),
        "plot": str(plot),
        "method": result.calibrator.method,
        "n_fit": result.n_fit,
        "n_test": result.n_test,
        "held_out": result.metrics,
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"fitted on {result.n_fit} claims, measured on {result.n_test} held-out claims")
    for name, m in result.metrics.items():
        label = "before" if name == "identity" else name
        click.echo(f"  {label:12} ECE {m['ece']:.4f}  Brier {m['brier']:.4f}")
    click.echo(f"chose {result.calibrator.method}; wrote {out} and {plot}")
