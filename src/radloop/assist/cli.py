"""``radloop draft``, ``radloop ask`` and ``radloop compare``: the assist tasks from a shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

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


def _model_options(command: F) -> F:
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
        study = replace(study, context=replace(study.context, indication=indication))
    return study


def _warn(warnings: tuple[object, ...]) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--prior", type=click.Path(exists=True, path_type=Path),
              help="A prior study to compare with.")  # fmt: skip
@_model_options
@click.option("--indication", default=None, help="Reason for the exam (overrides the study's).")
@click.option("--history", default=None, help="Clinical history to give the model.")
@click.option("--output", type=click.Choice(["auto", "json", "text"]), default="auto",
              show_default=True,
              help="Ask for JSON findings (json), a sectioned text report (text), or JSON where "
              "the backend supports structured output (auto).")  # fmt: skip
def draft(
    path: Path,
    prior: Path | None,
    model_name: str,
    options: tuple[str, ...],
    as_json: bool,
    indication: str | None,
    history: str | None,
    output: str,
) -> None:
    """Draft a report of a study with a model (for review, not a diagnosis)."""
    from radloop.assist import draft as draft_report

    study = _study(path, indication)
    prior_study = _study(prior) if prior is not None else None
    with _load(model_name, options) as model:
        notice = _notice(model)
        result = draft_report(study, model, prior=prior_study, history=history, output=output)
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
        return
    _warn(result.warnings)
    click.echo(result.text)
    _footer(result.model_id, notice, blank_line=True)


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
) -> None:
    """Ask a question about a study: yes/no, which side, where, how large, tube position."""
    from radloop.assist import ask as ask_question

    study = _study(path)
    with _load(model_name, options) as model:
        notice = _notice(model)
        result = ask_question(study, question, model, history=history)
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
        return
    _warn(result.warnings)
    click.echo(result.text)
    if result.finding is not None:
        click.echo(f"(rests on: {result.finding.name}, {result.finding.presence.value})")
    _footer(result.model_id, notice)


@click.command()
@click.argument("current", type=click.Path(exists=True, path_type=Path))
@click.argument("prior", type=click.Path(exists=True, path_type=Path))
@_model_options
def compare(
    current: Path, prior: Path, model_name: str, options: tuple[str, ...], as_json: bool
) -> None:
    """Compare a current study with a prior one: what is new, larger, smaller or resolved."""
    from radloop.assist import compare as compare_studies

    with _load(model_name, options) as model:
        notice = _notice(model)
        result = compare_studies(_study(current), _study(prior), model)
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
        return
    _warn(result.warnings)
    if not result.changes:
        click.echo("No interval change reported.")
    for change in result.changes:
        side = f"{change.side.value} " if change.side else ""
        details = f" ({change.details})" if change.details else ""
        click.echo(f"- {side}{change.name}: {change.direction.value}{details}")
    _footer(result.model_id, notice)
