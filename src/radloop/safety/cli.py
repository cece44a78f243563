"""``radloop scope`` and ``radloop calibrate``: the safety layer from a shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from radloop.safety.calibration import OMISSION_FALSE_ALARM, OMISSION_RECALL

__all__ = ["calibrate", "scope", "verifiers"]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
@click.option(
    "--ood/--no-ood",
    default=True,
    show_default=True,
    help="Score each frontal image's distance from the reference model's training data "
    "(flagged when far; needs the model's OOD reference, which the shipped model has).",
)
def scope(paths: tuple[Path, ...], as_json: bool, ood: bool) -> None:
    """Say whether each image is in radloop's intended use (adult frontal chest radiographs).

    Exit status 0 when every image is accepted or flagged, 1 when any is refused.
    """
    from radloop.safety.scope import assess_study, ood_inputs
    from radloop.study import load_studies

    scorer, verifier = _ood_scorer() if ood else (None, None)
    refused = False
    for path in paths:
        for study in load_studies(path):
            options = {}
            if scorer is not None and verifier is not None:
                options = ood_inputs(study, verifier.verify(study), scorer)
            for decision in assess_study(study, **options):
                refused = refused or decision.refused
                if as_json:
                    click.echo(json.dumps(decision.to_dict()))
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


def _ood_scorer() -> tuple[Any, Any]:
    """(scorer, verifier) of the shipped reference model, or (None, None) without one."""
    from radloop.errors import RadloopError
    from radloop.safety.verifiers import ReferenceVerifier

    try:
        verifier = ReferenceVerifier()
    except RadloopError:
        return None, None
    scorer = verifier.ood_scorer()
    return (scorer, verifier) if scorer is not None else (None, None)


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
@click.option(
    "--omission-false-alarm",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=OMISSION_FALSE_ALARM,
    show_default=True,
    help="Share of correctly denied critical findings allowed to raise a possible omission "
    "(sets each critical finding's omission threshold).",
)
@click.option(
    "--omission-recall",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=OMISSION_RECALL,
    show_default=True,
    help="Share of labelled present critical findings the omission threshold must still "
    "reach; within the false-alarm limit, the threshold rises as far as this allows.",
)
@click.option(
    "--domain",
    default="synthetic-lab",
    show_default=True,
    help="The domain of the labelled claims (synthetic-lab, or real-frontal for a site's "
    "own signed films): certainty words are written from this calibrator only there.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def calibrate(
    data: Path,
    out: Path,
    plot: Path | None,
    holdout: float,
    seed: int,
    omission_false_alarm: float,
    omission_recall: float,
    domain: str,
    as_json: bool,
) -> None:
    """Fit temperature and isotonic calibrators on labelled claims; report ECE and Brier.

    Also fits, per critical finding with enough labelled denials, the verifier probability
    from which a denied or unmentioned finding is a possible omission.
    """
    from radloop.safety.calibration import fit_calibrator, read_labelled_claims
    from radloop.safety.reliability import save_reliability_diagram

    result = fit_calibrator(
        read_labelled_claims(data),
        holdout=holdout,
        seed=seed,
        omission_false_alarm=omission_false_alarm,
        omission_recall=omission_recall,
        domain=domain,
    )
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
        "omission_thresholds": result.calibrator.omission_thresholds,
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"fitted on {result.n_fit} claims, measured on {result.n_test} held-out claims")
    for name, m in result.metrics.items():
        label = "before" if name == "identity" else name
        click.echo(f"  {label:12} ECE {m['ece']:.4f}  Brier {m['brier']:.4f}")
    for code, threshold in result.calibrator.omission_thresholds.items():
        click.echo(f"  possible omission of {code} from verifier probability {threshold:.4f}")
    click.echo(f"chose {result.calibrator.method}; wrote {out} and {plot}")


@click.command("verifiers")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verifiers(as_json: bool) -> None:
    """List the verifiers with the domain each was validated on.

    A verifier speaks only inside its validated domain and only about the finding types it
    was validated for; everywhere else a claim is not checked. The ``table`` verifier
    declares its domain in its file and the ``onnx`` verifier in its sidecar
    (``"competence"``).
    """
    from radloop.errors import RadloopError
    from radloop.models.cli import competence_lines
    from radloop.models.competence import Competence
    from radloop.safety.verifiers import available_verifiers, describe_verifier, load_verifier

    rows: list[dict[str, Any]] = []
    for name in available_verifiers():
        try:
            description = describe_verifier(name)
            declared_in = {"table": "the table's file", "onnx": "the model's sidecar"}
            competence: dict[str, Any] | None = (
                Competence(name, note=f'declared in {declared_in[name]} ("competence")').to_dict()
                if name in declared_in
                else getattr(load_verifier(name), "competence", Competence(name)).to_dict()
            )
        except (RadloopError, ImportError, TypeError) as error:
            description, competence = f"(not available: {error})", None
        rows.append({"name": name, "description": description, "competence": competence})
    if as_json:
        click.echo(json.dumps({"verifiers": rows}))
        return
    for row in rows:
        click.secho(f"{row['name']}: {row['description']}", bold=True)
        if row["competence"] is not None:
            loaded = Competence.from_dict(row["competence"], owner=row["name"])
            click.echo("\n".join(competence_lines(loaded)))
