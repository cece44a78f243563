"""``radloop monitor check|simulate|report``: drift alerts for schedulers, a simulated stream,
and the dashboard written to a folder."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

from radloop.errors import InputError, MissingExtraError

__all__ = ["monitor"]


@click.group()
def monitor() -> None:
    """Agreement of drafts with signed reports, by subgroup and over time; drift alerts."""


def _source_options(function: Any) -> Any:
    function = click.option(
        "--database-url",
        default=None,
        help="Read signed cases from the review workstation's database (SQLAlchemy URL).",
    )(function)
    return click.option(
        "--cases",
        "cases_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Read signed cases from a JSONL file (one SignedCase.to_dict() per line).",
    )(function)


def _drift_options(function: Any) -> Any:
    for name, kind, default, text in reversed(
        (
            ("--reference-size", int, 400, "Cases in the reference window (the first ones)."),
            ("--window-size", int, 100, "Cases per tested window."),
            ("--step", int, 50, "Cases between the starts of consecutive windows."),
            ("--alpha", float, 0.001, "Family-wise error per window (Bonferroni over tests)."),
            ("--persistence", int, 2, "Consecutive alarming windows that raise an alert."),
            ("--f1-threshold", float, 0.7, "F1 under which a case is significantly revised."),
        )
    ):
        function = click.option(name, type=kind, default=default, show_default=True,
                                 help=text)(function)  # fmt: skip
    function = click.option(
        "--ece-threshold",
        type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
        default=0.05,
        show_default=True,
        help="ECE of the drafts' probabilities (per finding type, on newly signed cases) past "
        "which a calibration alert is raised.",
    )(function)
    return click.option(
        "--reference-until",
        default=None,
        help="Use the cases received before this ISO-8601 time as the reference instead of "
        "the first --reference-size ones.",
    )(function)


def _load_cases(cases_file: Path | None, database_url: str | None) -> list[Any]:
    from radloop.monitor.cases import SignedCase, read_cases

    if (cases_file is None) == (database_url is None):
        raise click.UsageError("give exactly one of --cases FILE.jsonl or --database-url URL")
    if cases_file is not None:
        return list(read_cases(cases_file))
    try:
        from radloop.review.store import signed_cases  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise MissingExtraError(
            "radloop.review", "review", f"Reading signed cases from a database ({error})"
        ) from None
    from sqlalchemy import create_engine

    engine = create_engine(str(database_url))
    try:
        return [SignedCase.from_dict(r, source="database") for r in signed_cases(engine)]
    finally:
        engine.dispose()


def _settings(options: dict[str, Any]) -> Any:
    from radloop.monitor.analysis import MonitorSettings
    from radloop.monitor.drift import DriftConfig

    until = options.get("reference_until")
    reference_until = None
    if until:
        try:
            reference_until = datetime.datetime.fromisoformat(str(until))
        except ValueError:
            raise InputError("--reference-until as an ISO-8601 time", repr(until)) from None
        if reference_until.tzinfo is None:
            reference_until = reference_until.replace(tzinfo=datetime.UTC)
    try:
        drift = DriftConfig(
            reference_until=reference_until,
            reference_size=options["reference_size"],
            window_size=options["window_size"],
            step=options["step"],
            alpha=options["alpha"],
            persistence=options["persistence"],
        )
    except ValueError as error:
        raise InputError("valid drift settings", str(error)) from None
    from radloop.monitor.calibration import CalibrationConfig

    calibration = CalibrationConfig(threshold=options["ece_threshold"])
    return MonitorSettings(f1_threshold=options["f1_threshold"], drift=drift,
                           calibration=calibration)  # fmt: skip


@monitor.command("check")
@_source_options
@_drift_options
@click.option("--json", "as_json", is_flag=True, help="Print the drift report as one JSON object.")
def check(cases_file: Path | None, database_url: str | None, as_json: bool, **options: Any
          ) -> None:  # fmt: skip
    """Test for drift and calibration drift and print the alerts; exit code 1 while an alert
    is active."""
    from radloop.monitor.aggregate import CaseTable
    from radloop.monitor.calibration import calibration_over_time
    from radloop.monitor.drift import detect_drift

    settings = _settings(options)
    cases = _load_cases(cases_file, database_url)
    table = CaseTable.build(cases, f1_threshold=settings.f1_threshold)
    report = detect_drift(table, settings.drift)
    calibration = calibration_over_time(cases, settings.calibration)
    if as_json:
        click.echo(
            json.dumps(
                report.to_dict()
                | {"windows": len(report.windows), "calibration": calibration.to_dict()}
            )
        )
    else:
        click.echo(f"{len(cases)} signed cases; reference: the first {report.reference[1]}; "
                   f"{len(report.windows)} windows tested")  # fmt: skip
        for alert in report.alerts:
            click.secho(("ALERT " if alert.active else "ended ") + alert.message,
                        fg="red" if alert.active else None)  # fmt: skip
        for calibration_alert in calibration.alerts:
            click.secho(("ALERT " if calibration_alert.active else "ended ")
                        + calibration_alert.message,
                        fg="red" if calibration_alert.active else None)  # fmt: skip
        if not report.alerts and not calibration.alerts:
            click.echo("no drift alert")
    if report.active or calibration.active:
        raise click.exceptions.Exit(1)


@monitor.command("report")
@_source_options
@_drift_options
@click.option(
    "--window-days",
    type=int,
    default=7,
    show_default=True,
    help="Length of the agreement time windows in days.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write dashboard.html, data.json and the CSV tables into.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def report(cases_file: Path | None, database_url: str | None, window_days: int, out: Path,
           as_json: bool, **options: Any) -> None:  # fmt: skip
    """Write the monitoring dashboard (HTML), its data (JSON) and CSV tables to a folder."""
    from dataclasses import replace

    from radloop.monitor.analysis import CSV_TABLES, analyse, csv_table
    from radloop.monitor.page import render_dashboard

    if window_days < 1:
        raise InputError("--window-days of at least 1", str(window_days))
    settings = replace(_settings(options), window_days=window_days)
    analysis = analyse(_load_cases(cases_file, database_url), settings)
    out.mkdir(parents=True, exist_ok=True)
    data = analysis.to_dict()
    (out / "data.json").write_text(json.dumps(data, default=str), encoding="utf-8")
    for table in CSV_TABLES:
        (out / f"{table}.csv").write_text(csv_table(analysis, table), encoding="utf-8")
    (out / "dashboard.html").write_text(render_dashboard(analysis, export_base=None),
                                        encoding="utf-8")  # fmt: skip
    if as_json:
        click.echo(json.dumps({"out": str(out), "summary": data["summary"]["overall"],
                               "active_alerts": data["drift"]["active_alerts"]}))  # fmt: skip
    else:
        click.echo(f"wrote {out / 'dashboard.html'} ({analysis.summary.n} cases, "
                   f"{len(analysis.drift.active)} active alerts)")  # fmt: skip
        overall = analysis.summary.overall
        if overall is not None and overall.claims.get("not_checked"):
            click.secho(f"  {overall.claims['not_checked']} of {overall.n_claims} draft claims "
                        "were not checked (no evidence valid for the film)",
                        fg="yellow")  # fmt: skip
