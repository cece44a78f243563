"""``radloop draft``, ``ask`` and ``compare``: the assist tasks from a shell, checked.

Each runs the scope guard and the safety check by default (``radloop.safety``): a refused
study is not drafted, and every claim is shown verified, contradicted, unsupported or not
checked, with the reason. ``--no-check`` is the way out, and the output then says "unchecked".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from radloop.assist.sampling import sampling_options

__all__ = ["ask", "compare", "draft"]

F = TypeVar("F", bound=Callable[..., Any])

_FOOTER = "Assistant output for review by a qualified reader; not a diagnosis."


def _notice(model: object) -> str | None:
    """What a model says about itself wherever it speaks (the reference model: trained only on
    synthetic radiographs)."""
    notice = getattr(model, "notice", None)
    return notice if isinstance(notice, str) else None


def _footer(model_id: str, notice: str | None, *, blank_line: bool = False) -> None:
    lead = "\n" if blank_line else ""
    click.secho(f"{lead}{_FOOTER} Model: {model_id}.", fg="yellow")
    if notice:
        click.secho(notice, fg="yellow")


UNCHECKED = "UNCHECKED: the scope guard and the safety check were not run (--no-check)."


def _model_options(command: F) -> F:
    command = click.option(
        "--no-check", "no_check", is_flag=True,
        help="Skip the scope guard and the safety check (the output then says unchecked).",
    )(command)  # fmt: skip
    command = click.option(
        "--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A calibration file (radloop calibrate): certainty words and calibrated "
        "probabilities on studies of its domain.",
    )(command)  # fmt: skip
    command = click.option(
        "--verifier", "verifier_name", default="reference", show_default=True,
        help="The verifier the claims are checked against (radloop verifiers lists them).",
    )(command)  # fmt: skip
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object (with the raw output)."
    )(command)
    command = click.option(
        "--option", "options", multiple=True, metavar="KEY=VALUE",
        help="A backend option, repeatable (base_url=..., model=..., timeout_s=60).",
    )(command)  # fmt: skip
    command = click.option(
        "--model", "model_name", default="builtin", show_default=True,
        help="Model backend: builtin, openai, transformers, mock or an entry point; "
        "'openai/NAME' and 'transformers/DIR' also set the model.",
    )(command)  # fmt: skip
    return command


def _load(model_name: str, options: tuple[str, ...]) -> Any:
    from radloop.models import load_model, parse_options

    return load_model(model_name, **parse_options(options))


def _study(path: Path, indication: str | None = None) -> Any:
    from radloop.study import load_study

    study = load_study(path)
    if indication:
        context = replace(study.context, indication=indication,
                          indication_source="given on the command line")  # fmt: skip
        study = replace(study, context=context)
    return study


def _warn(warnings: tuple[object, ...]) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


def _verifier(name: str) -> Any:
    from radloop.safety import ReadOnce, load_verifier

    return ReadOnce(load_verifier(name))


def _guard(study: Any, verifier: Any, as_json: bool) -> Any:
    """The study's scope decision; a refused study ends the command (exit status 1)."""
    from radloop.safety.scope import guard_study

    decision = guard_study(study, verifier)
    if decision is not None and decision.refused:
        if as_json:
            click.echo(json.dumps({"refused": True, "scope": decision.to_dict()}, default=str))
        else:
            click.secho("Refused: the study is outside radloop's intended use.", fg="red")
            for reason in decision.reasons:
                click.echo(f"  - {reason.code}: {reason.text}")
        raise SystemExit(1)
    return decision


_STATE_COLOUR = {"verified": "green", "contradicted": "red", "unsupported": "red"}


def _print_states(checks: Any) -> None:
    from radloop.safety.answers import state
    from radloop.safety.readings import claim_readings

    for check in checks:
        label = state(check)
        if check.index is None:
            label = "possible omission"
        probability = check.numbers.p_claim
        number = f" (verifier {probability:.2f})" if probability is not None else ""
        click.secho(
            f"  [{label}] {check.finding.name}, {check.finding.presence.value}{number}",
            fg=_STATE_COLOUR.get(label, "red" if check.possible_omission else "yellow"),
        )
        for reason in check.reasons[:2]:
            click.echo(f"      {reason}")
        readings = claim_readings(check.numbers, check.finding)
        if readings:
            click.echo("      " + " · ".join(readings))


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--prior", type=click.Path(exists=True, path_type=Path),
              help="A prior study to compare with.")  # fmt: skip
@_model_options
@click.option("--indication", default=None, help="Reason for the exam (overrides the study's).")
@click.option("--history", default=None, help="Clinical history to give the model.")
@click.option("--context", "context_bundles", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A FHIR Bundle (JSON) of the patient's lab values and active conditions, "
              "repeatable; Bundles lying beside PATH are read too.")  # fmt: skip
@click.option("--context-csv", type=click.Path(exists=True, path_type=Path), default=None,
              help="Per-film lab values in the hannover-dev layout (metadata.csv or its "
              "folder): PATH's row goes into the context, dated relative to the film.")  # fmt: skip
@click.option("--context-chars", type=click.IntRange(min=100), default=2000, show_default=True,
              help="The characters the clinical context items may take in the prompt.")  # fmt: skip
@click.option("--output", type=click.Choice(["auto", "json", "text"]), default="auto",
              show_default=True,
              help="Ask for JSON findings (json), a sectioned text report (text), or JSON where "
              "the backend supports structured output (auto).")  # fmt: skip
@sampling_options(
    ask_back_help="Ask the model closed questions about each claim (P(yes), P(side))."
)
def draft(
    path: Path,
    prior: Path | None,
    model_name: str,
    options: tuple[str, ...],
    as_json: bool,
    indication: str | None,
    history: str | None,
    context_bundles: tuple[Path, ...],
    context_csv: Path | None,
    context_chars: int,
    output: str,
    verifier_name: str,
    calibration: Path | None,
    no_check: bool,
    samples: int,
    sample_temperature: float,
    ask_back: bool,
) -> None:
    """Draft a report of a study with a model, checked by the safety layer (for review, not a
    diagnosis). Exit status 1 when the study is refused or the draft failed."""
    from radloop.assist import Sampling
    from radloop.assist import draft as draft_report
    from radloop.assist.context_cli import context_for_path
    from radloop.models import VisionLanguageModel
    from radloop.safety.askback import ask_back as ask

    study, notes = context_for_path(_study(path, indication), path, bundles=context_bundles,
                                    context_csv=context_csv)  # fmt: skip
    _warn(tuple(f"clinical context: {note}" for note in notes))
    prior_study = _study(prior) if prior is not None else None
    verifier = None if no_check else _verifier(verifier_name)
    decision = None if verifier is None else _guard(study, verifier, as_json)
    with _load(model_name, options) as model:
        notice = _notice(model)
        sampling = Sampling(samples, sample_temperature)
        logprobs = bool(getattr(model, "supports_logprobs", False))
        result = draft_report(study, model, prior=prior_study, history=history, output=output,
                              sampling=sampling, logprobs=logprobs,
                              context_chars=context_chars)  # fmt: skip
        asked = None
        if ask_back and verifier is not None and isinstance(model, VisionLanguageModel):
            asked = ask(result, study, model, samples=samples, temperature=sample_temperature)
    if verifier is None:
        if as_json:
            click.echo(json.dumps(result.to_dict() | {"checked": False}, default=str))
        else:
            _warn(result.warnings)
            click.secho(UNCHECKED, fg="red", bold=True)
            click.echo(result.text)
            _footer(result.model_id, notice, blank_line=True)
        raise SystemExit(1 if result.failed else 0)
    from radloop.safety import Calibrator, check

    calibrator = Calibrator.load(calibration) if calibration is not None else None
    checked = check(result, study, verifier, calibrator, scope=decision, prior=prior_study,
                    asked=asked)  # fmt: skip
    if as_json:
        # The draft's keys (findings as the schema's objects), the checked text, and the
        # check's own keys; the checked findings, with probability and verdict, beside them.
        drafted = result.to_dict()
        payload = drafted | checked.to_dict() | {"findings": drafted["findings"], "checked": True}
        payload["checked_findings"] = checked.to_dict()["findings"]
        click.echo(json.dumps(payload, default=str))
        raise SystemExit(1 if result.failed else 0)
    _warn(result.warnings)
    if checked.banner:
        click.secho(checked.banner, fg="red", bold=True)
    click.echo(checked.text)
    if checked.checks:
        calibrated = "calibrated" if checked.calibrated else "uncalibrated"
        click.secho(f"Claims, checked against {checked.verifier} ({calibrated}):", bold=True)
        _print_states(checked.checks)
    urgent = "URGENT: " + "; ".join(checked.triage.reasons) if checked.triage.urgent else "routine"
    click.secho(f"triage: {urgent}", bold=True)
    _footer(result.model_id, notice, blank_line=True)
    raise SystemExit(1 if result.failed else 0)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("question")
@_model_options
@click.option("--history", default=None, help="Clinical history to give the model.")
def ask(
    path: Path,
    question: str,
    model_name: str,
    options: tuple[str, ...],
    as_json: bool,
    history: str | None,
    verifier_name: str,
    calibration: Path | None,
    no_check: bool,
) -> None:
    """Ask a question about a study: yes/no, which side, where, how large, tube position.
    The finding the answer rests on is checked by the safety layer."""
    from radloop.assist import ask as ask_question

    del calibration  # an answer states no certainty phrase of radloop's
    study = _study(path)
    verifier = None if no_check else _verifier(verifier_name)
    if verifier is not None:
        _guard(study, verifier, as_json)
    with _load(model_name, options) as model:
        notice = _notice(model)
        result = ask_question(study, question, model, history=history)
    if verifier is None:
        if as_json:
            click.echo(json.dumps(result.to_dict() | {"checked": False}, default=str))
            return
        _warn(result.warnings)
        click.secho(UNCHECKED, fg="red", bold=True)
        click.echo(result.text)
        _footer(result.model_id, notice)
        return
    from radloop.safety import check_answer

    checked = check_answer(result, study, verifier)
    if as_json:
        click.echo(json.dumps(checked.to_dict(), default=str))
        return
    _warn(result.warnings)
    click.echo(result.text)
    if result.finding is not None:
        click.echo(f"(rests on: {result.finding.name}, {result.finding.presence.value})")
    if checked.check is not None:
        click.secho(f"Checked against {checked.verifier}:", bold=True)
        _print_states([checked.check])
    else:
        click.secho("[not checked] the answer rests on no finding to check", fg="yellow")
    _footer(result.model_id, notice)


@click.command()
@click.argument("current", type=click.Path(exists=True, path_type=Path))
@click.argument("prior", type=click.Path(exists=True, path_type=Path))
@_model_options
def compare(
    current: Path,
    prior: Path,
    model_name: str,
    options: tuple[str, ...],
    as_json: bool,
    verifier_name: str,
    calibration: Path | None,
    no_check: bool,
) -> None:
    """Compare a current study with a prior one: what is new, larger, smaller or resolved.
    Each change is checked against the verifier's readings of both studies."""
    from radloop.assist import compare as compare_studies

    del calibration
    now, before = _study(current), _study(prior)
    verifier = None if no_check else _verifier(verifier_name)
    if verifier is not None:
        _guard(now, verifier, as_json)
        _guard(before, verifier, as_json)
    with _load(model_name, options) as model:
        notice = _notice(model)
        result = compare_studies(now, before, model)
    checked = None
    if verifier is not None:
        from radloop.safety import check_comparison

        checked = check_comparison(result, now, before, verifier)
    if as_json:
        payload = checked.to_dict() if checked is not None else result.to_dict()
        click.echo(json.dumps(payload | {"checked": checked is not None}, default=str))
        return
    _warn(result.warnings)
    if checked is None:
        click.secho(UNCHECKED, fg="red", bold=True)
    if not result.changes:
        click.echo("No interval change reported.")
    from radloop.safety.answers import state

    checks = checked.checks if checked is not None else (None,) * len(result.changes)
    for change, claim in zip(result.changes, checks, strict=True):
        side = f"{change.side.value} " if change.side else ""
        details = f" ({change.details})" if change.details else ""
        label = ""
        if claim is not None:
            why = f": {claim.reasons[0]}" if claim.reasons else ""
            label = f"  [{state(claim)}{why}]"
        click.echo(f"- {side}{change.name}: {change.direction.value}{details}{label}")
    _footer(result.model_id, notice)
