"""``radloop eval``: the pre-deployment report for any model over any labelled dataset."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from radloop.assist.sampling import sampling_options

__all__ = ["eval_command"]


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=what)
        out[key.strip()] = val.strip()
    return out


def _default_out(model: str, data: str) -> Path:
    kind, _, path = data.partition(":")
    tail = Path(path).name or path
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{model}_{kind}-{tail}")
    return Path("radloop-eval") / safe


def _progress_factory() -> Callable[[str, int, int], Callable[[int], None]]:
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}  # type: ignore[type-arg]

    def make(stage: str, done: int, total: int) -> Callable[[int], None]:
        for other in bars.values():
            other.close()  # one stage at a time
        label = {"render": "render held-out split", "ood": "OOD reference", "cases": "cases"}.get(
            stage, stage
        )
        bar = tqdm(total=total or None, initial=done, desc=label, unit="study", leave=True)
        bars[stage] = bar

        def advance(k: int) -> None:
            bar.update(k)

        return advance

    return make


@click.command("eval")
@click.option(
    "--model",
    "model",
    required=True,
    help="Model backend (builtin, openai/NAME, transformers, mock, ...).",
)
@click.option(
    "--data",
    "data",
    required=True,
    help="Dataset KIND:PATH: synth:test, synth:DIR, folder:DIR, mimic:DIR, chexpert:DIR.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default radloop-eval/MODEL_KIND-NAME); an unfinished run in it resumes.",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=None,
    help="synth:test only: studies in the held-out split (default 120).",
)
@click.option(
    "--profiles",
    default=None,
    help="synth:test only: site profiles, comma-separated (default enhanced).",
)
@click.option(
    "--data-option",
    "data_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Dataset option (csv=, layout=, image_column=, uncertain=, split=, ...).",
)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Backend option (base_url=, model=, ...).",
)
@click.option(
    "--verifier",
    default="reference",
    show_default=True,
    help="Safety-layer verifier; 'none' to skip the safety layer.",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Calibrator JSON from `radloop calibrate` (default: none).",
)
@click.option(
    "--ood",
    default="reference",
    show_default=True,
    help="OOD reference: 'reference' (fitted once on training-profile studies), a "
    "scorer JSON file, or 'none'.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the held-out split and OOD reference are kept (default ~/.cache/radloop/eval).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Cases in flight at once (raise it for remote servers).",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the intervals.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--compare",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Another run folder to set side by side (e.g. synthetic vs real).",
)
@sampling_options(
    ask_back_help="Ask the drafting model closed questions about each claim (P(yes), P(side))."
)
@click.option(
    "--ask-back-model",
    default=None,
    help="Put the closed questions to this model instead of the drafting model "
    "(a backend name, as --model).",
)
@click.option(
    "--ask-back-option",
    "ask_back_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Backend option of --ask-back-model (base_url=, model=, ...).",
)
@click.option(
    "--second-opinion",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A classifier's ONNX sidecar (from `radloop verifier import`): its probability of "
    "each claim, inside its validated domain, as one more source.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def eval_command(
    model: str,
    data: str,
    out: Path | None,
    n: int | None,
    profiles: str | None,
    data_options: tuple[str, ...],
    model_options: tuple[str, ...],
    verifier: str,
    calibration: Path | None,
    ood: str,
    cache_dir: Path | None,
    concurrency: int,
    resamples: int,
    seed: int,
    compare: Path | None,
    samples: int,
    sample_temperature: float,
    ask_back: bool,
    ask_back_model: str | None,
    ask_back_options: tuple[str, ...],
    second_opinion: Path | None,
    as_json: bool,
) -> None:
    """Evaluate a model on a labelled dataset: accuracy, calibration, hallucinations,
    spatial accuracy, rare and subtle findings, subgroups and sites, with 95 % intervals.

    Writes OUT/report.html (self-contained) and OUT/metrics.json; predictions are cached per
    case under OUT/cache, so an interrupted run resumes. Figures are given for the model
    alone and with the safety layer applied as in production.
    """
    from radloop.evaluate.pipeline import evaluate

    options: dict[str, object] = dict(_pairs(data_options, "--data-option"))
    if n is not None:
        options["n"] = n
    if profiles is not None:
        options["profiles"] = profiles
    target = out or _default_out(model, data)
    outcome = evaluate(
        model,
        data,
        target,
        model_options=_pairs(model_options, "--model-option"),
        data_options=options,
        verifier_name=None if verifier == "none" else verifier,
        calibration=calibration,
        ood=ood,
        cache_dir=cache_dir,
        concurrency=concurrency,
        resamples=resamples,
        seed=seed,
        compare=compare,
        progress=None if as_json else _progress_factory(),
        samples=samples,
        sample_temperature=sample_temperature,
        ask_back=ask_back,
        second_opinion=second_opinion,
        ask_back_model=ask_back_model,
        ask_back_options=_pairs(ask_back_options, "--ask-back-option"),
    )
    table = outcome.table
    summary = {
        "out": str(outcome.out),
        "html": str(outcome.html_path),
        "json": str(outcome.json_path),
        "n_cases": table["n_cases"],
        "n_labelled": table["n_labelled"],
        "draft": {k: v["value"] for k, v in table["summary"]["draft"].items()},
        "safety": {k: v["value"] for k, v in table["summary"]["safety"].items()},
        "zones": {c: z["auroc"]["value"] for c, z in table["zones"].items()},
        "claim_checks": _checks_summary(table),
        "cost": table.get("cost", {}).get("per_study", {}),
    }
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    click.echo(f"{table['n_cases']} cases ({table['n_labelled']} labelled) → {outcome.html_path}")
    if table["n_errors"]:
        click.secho(
            f"  {table['n_errors']} case(s) failed and are left out; first: {table['first_error']}",
            fg="red",
        )
    problems = table["scope"].get("unavailable")
    if problems:
        click.secho(
            f"  scope guard did not run on {problems} case(s): "
            f"{table['scope'].get('unavailable_reason')}",
            fg="yellow",
        )
    for key in (
        "macro_auroc",
        "sensitivity",
        "specificity",
        "ece",
        "hallucination_rate",
        "critical_miss_rate",
    ):
        d, s = table["summary"]["draft"][key], table["summary"]["safety"][key]
        click.echo(f"  {key:22s} draft {_short(d)}   with safety {_short(s)}")
    for code, z in table["zones"].items():
        click.echo(f"  zone AUROC {code:15s} {_short(z['auroc'])}")
    from radloop.evaluate.arrays import VERDICTS

    checks = _checks_summary(table)
    if checks["claims"]:
        counts = ", ".join(f"{v} {checks[v]}" for v in VERDICTS)
        click.echo(f"  claims with safety: {counts} (of {checks['claims']})")
    if checks["not_checked"]:
        click.secho(
            f"  {checks['not_checked']} claim(s) not checked: no evidence valid for the film; "
            "they reach the reader as the model wrote them, never as supported",
            fg="yellow",
        )
    if checks["drafts_failed"] or checks["drafts_abstained"]:
        click.secho(
            f"  drafts failed {checks['drafts_failed']}, abstained {checks['drafts_abstained']}",
            fg="yellow",
        )
    click.secho("Assistant evaluation for a qualified team; not a diagnosis.", fg="yellow")


def _checks_summary(table: Mapping[str, Any]) -> dict[str, int]:
    """The claim-check counts of a scored run: per verdict, and failed or abstained drafts."""
    from radloop.evaluate.arrays import VERDICTS

    block = table.get("claim_checks") or {}
    verdicts = block.get("verdicts", {})
    drafts = block.get("drafts", {})
    return {
        "claims": int(block.get("claims", 0)),
        **{v: int(verdicts.get(v, {}).get("n", 0)) for v in VERDICTS},
        "drafts_failed": int(drafts.get("failed", 0)),
        "drafts_abstained": int(drafts.get("abstained", 0)),
    }


def _short(entry: dict[str, object]) -> str:
    value, low, high = entry.get("value"), entry.get("low"), entry.get("high")
    if not isinstance(value, float):
        return "–"
    if isinstance(low, float) and isinstance(high, float):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}"
