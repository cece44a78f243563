"""The ``radloop`` command: one verb per job, ``--json`` for machine output.

Heavy modules are imported inside each command so that ``radloop --help`` stays fast and a
missing optional package only affects the command that needs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from radloop import __version__
from radloop.errors import RadloopError

if TYPE_CHECKING:
    from radloop.report import Finding
    from radloop.study import Study

__all__ = ["main"]


class _Group(click.Group):
    """A click group that turns radloop's typed errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RadloopError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radloop")
def main() -> None:
    """radloop: draft, check, review and monitor chest X-ray reports written by MLLMs.

    radloop is an assistant. Nothing it writes is a diagnosis or final until a qualified
    reader signs it.
    """


def _echo_json(payload: object) -> None:
    click.echo(json.dumps(payload, indent=None, default=str))


# --- ingest ----------------------------------------------------------------------------------


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per study.")
@click.option(
    "--deid",
    "deid_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write de-identified copies (PS3.15 Annex E basic profile) of the DICOM files "
    "into this new folder; the originals are never touched.",
)
@click.option(
    "--salt",
    default=None,
    help="Secret mixed into replacement UIDs when de-identifying (default: a random one).",
)
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also put the studies onto the review workstation's worklist in this data directory "
    "(drafted by `radloop serve` or `radloop worker`).",
)
def ingest(
    path: Path, as_json: bool, deid_dir: Path | None, salt: str | None, data_dir: Path | None
) -> None:
    """Read a study (DICOM, PNG or JPEG file, folder or zip) and print its metadata."""
    from radloop.study import load_studies

    studies = load_studies(path)
    for study in studies:
        summary = study_summary(study)
        if as_json:
            _echo_json(summary)
        else:
            _print_summary(summary)
    if deid_dir is not None:
        _deidentify_all(path, deid_dir, salt)
    if data_dir is not None:
        from radloop.review.cli import ingest_into_store

        stored = ingest_into_store(path, data_dir)
        if as_json:
            _echo_json({"workstation": stored})
        else:
            added, existing = len(stored["added"]), len(stored["existing"])
            click.echo(f"worklist: {added} added, {existing} already there")


def study_summary(study: Study) -> dict[str, Any]:
    """A JSON-ready summary of a study: UIDs, metadata, series and images."""
    from dataclasses import asdict

    meta = asdict(study.metadata)
    return {
        "study_instance_uid": study.study_instance_uid,
        "metadata": meta,
        "series": [
            {
                "series_instance_uid": series.uid,
                "images": [
                    {
                        "source": str(image.source),
                        "rows": int(image.pixels.shape[0]),
                        "columns": int(image.pixels.shape[1]),
                        "pixel_spacing_mm": image.pixel_spacing_mm,
                        "view_position": image.view_position,
                    }
                    for image in series.images
                ],
            }
            for series in study.series
        ],
    }


def _print_summary(summary: dict[str, Any]) -> None:
    click.secho(f"Study {summary['study_instance_uid']}", bold=True)
    for key, value in summary["metadata"].items():
        if value not in (None, "", ()):
            click.echo(f"  {key.replace('_', ' '):<18} {value}")
    for series in summary["series"]:
        click.echo(f"  series {series['series_instance_uid']}")
        for image in series["images"]:
            spacing = image["pixel_spacing_mm"]
            spacing_text = "unknown" if spacing is None else f"{spacing[0]:.3f} x {spacing[1]:.3f}"
            click.echo(
                f"    {Path(image['source']).name}: {image['rows']} x {image['columns']} px, "
                f"spacing {spacing_text} mm, view {image['view_position'] or 'unknown'}"
            )


def _deidentify_all(path: Path, out_dir: Path, salt: str | None) -> None:
    import secrets

    from radloop.study import deidentify, dicom_files

    out_dir.mkdir(parents=True, exist_ok=True)
    key = salt if salt is not None else secrets.token_hex(16)
    for source in dicom_files(path):
        target = deidentify(source, out_dir / source.name, salt=key)
        click.echo(f"de-identified {source} -> {target}")


# --- parse and write -------------------------------------------------------------------------


@main.command()
@click.argument("text", required=False)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the report text from a file instead of the argument.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def parse(text: str | None, file: Path | None, as_json: bool) -> None:
    """Parse report text into structured findings."""
    from radloop.report import parse as parse_report

    if file is not None:
        text = file.read_text(encoding="utf-8")
    if not text:
        raise click.UsageError("give the report text as an argument or with --file")
    findings = parse_report(text)
    if as_json:
        _echo_json([f.to_dict() for f in findings])
    else:
        _print_findings(findings)


def _print_findings(findings: list[Finding]) -> None:
    if not findings:
        click.echo("  (no findings mentioned)")
    for f in findings:
        parts = [f"{f.name}: {f.presence}"]
        if f.side:
            parts.append(f"side={f.side}")
        if f.lobes:
            parts.append("lobes=" + ",".join(lobe.label for lobe in f.lobes))
        if f.zones:
            parts.append("zones=" + ",".join(z.brixia for z in f.zones))
        if f.size_mm:
            parts.append(f"size={f.size_mm:g} mm")
        if f.severity:
            parts.append(f"severity={f.severity}")
        if f.change:
            parts.append(f"change={f.change}")
        if f.tip_distance_mm is not None:
            parts.append(f"tip={f.tip_distance_mm:g} mm from {f.tip_reference}")
        click.echo("  - " + "; ".join(parts))


# --- vocabulary ------------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the vocabulary as JSON.")
def vocabulary(as_json: bool) -> None:
    """List the finding codes with their codes, critical rule and synonyms."""
    from dataclasses import asdict

    from radloop.vocabulary import FINDING_CODES

    if as_json:
        _echo_json([asdict(entry) for entry in FINDING_CODES.values()])
        return
    for entry in FINDING_CODES.values():
        codes = ", ".join(c for c in (entry.radlex, entry.snomed and f"SCT {entry.snomed}") if c)
        critical = "" if entry.critical == "never" else f"  [critical: {entry.critical}]"
        click.echo(f"{entry.code:<28} {entry.name:<30} {codes}{critical}")


# --- demo ------------------------------------------------------------------------------------


@main.command()
def demo() -> None:
    """Ingest the bundled sample study, parse its report, and draft a synthetic study.

    The sample's report is parsed and the reference model drafts the sample beside it; then a
    newly rendered synthetic study is drafted and shown beside the synthetic lab's truth. Each
    draft is checked by the safety layer.
    """
    from radloop.models import load_model
    from radloop.report import parse as parse_report
    from radloop.report import write
    from radloop.study import load_study, sample_report_path, sample_study_path

    click.secho("radloop demo: the bundled sample study (synthetic, not a patient)", bold=True)
    study = load_study(sample_study_path())
    _print_summary(study_summary(study))
    report_text = sample_report_path().read_text(encoding="utf-8")
    click.secho("\nSample report", bold=True)
    click.echo(report_text.strip())
    findings = parse_report(report_text)
    click.secho("\nParsed findings", bold=True)
    _print_findings(findings)
    click.secho("\nThe same findings, written back in standard report language", bold=True)
    click.echo(write(findings))
    click.secho("\nThe sample drafted by the reference model, beside its report above", bold=True)
    model = load_model("builtin")
    _print_checked_draft(study, model)
    _demo_synthetic_draft(model)
    click.secho(
        "\nAssistant output for review by a qualified reader; not a diagnosis.", fg="yellow"
    )


def _print_checked_draft(study: Study, model: Any) -> None:
    """``model``'s draft of ``study``, checked by the safety layer: its text, the claims
    flagged for the reviewer and the triage."""
    from radloop.assist import draft
    from radloop.safety import check, load_verifier

    checked = check(draft(study, model), study, load_verifier("reference"))
    click.echo(checked.text.strip())
    for flag in checked.flags:
        click.secho(f"  flagged for the reviewer: {flag.finding.name}: {flag.verdict}", fg="red")
    click.secho(f"triage: {'URGENT' if checked.triage.urgent else 'routine'}", bold=True)


def _demo_synthetic_draft(model: Any) -> None:
    """Render one study with the synthetic lab, draft it with ``model`` (the reference model),
    check the draft with the safety layer and show it beside the truth."""
    import tempfile

    from radloop.lab.synth.study_writer import make_dataset
    from radloop.models.reference.predictor import reliable_findings
    from radloop.study import load_study

    click.secho("\nA synthetic study (seed 7), drafted by the reference model", bold=True)
    with tempfile.TemporaryDirectory(prefix="radloop-demo-") as scratch:
        try:
            manifest = make_dataset(1, 7, Path(scratch), profile="standard", workers=1)
        except (RadloopError, ImportError) as error:  # the synth extra or its CT is missing
            click.echo(f"(synthetic lab not available: {error})")
            return
        folder = Path(scratch) / manifest["studies"][0]["path"]
        study = load_study(folder / "dicom")
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        _print_checked_draft(study, model)
    click.secho("Truth inserted by the synthetic lab:", bold=True)
    for item in truth["findings"]:
        where = ", ".join(item.get("zones") or []) or item.get("side") or ""
        click.echo(f"  - {item['code']}: {item['presence']} {where}".rstrip())
    sidecar = getattr(model, "sidecar", {})
    unseen = sorted(set(sidecar.get("findings", [])) - reliable_findings(sidecar))
    if unseen:
        click.echo(f"Never reported by this model version (validation AUROC < 0.9): {unseen}")
    notice = getattr(model, "notice", None)
    if isinstance(notice, str):
        click.secho(notice, fg="yellow")


# --- bench -----------------------------------------------------------------------------------


@main.group()
def bench() -> None:
    """Benchmarks (protocols in docs/benchmarks.md); --json prints one JSON object last."""


@bench.command("parser")
@click.option(
    "--reports",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A .tgz of IU X-ray report XML files (../shared/data/iu-xray-reports-dev.tgz).",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="MeSH tag heads → benchmark labels (../shared/benchmarks/iu-mesh-labels.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_parser(reports: Path, labels: Path, as_json: bool) -> None:
    """Parser accuracy and speed on real radiology reports (IU X-ray, MeSH tags)."""
    from radloop.lab.bench.parser import format_parser_benchmark, run_parser_benchmark

    result = run_parser_benchmark(reports, labels)
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(format_parser_benchmark(result))


def _attach_commands() -> None:
    """Commands defined next to the modules they drive (each imports its module lazily)."""
    from radloop.assist.context_cli import context
    from radloop.evaluate.cli import eval_command
    from radloop.lab.bench.evaluate import bench_eval
    from radloop.lab.bench.evidence import bench_evidence
    from radloop.lab.bench.evidence_calibration import bench_evidence_calibration
    from radloop.lab.bench.faults import bench_faults
    from radloop.lab.bench.monitor import bench_monitor
    from radloop.lab.bench.pacs import bench_pacs
    from radloop.lab.bench.realfilm import bench_realfilm
    from radloop.lab.bench.reference import bench_reference
    from radloop.lab.bench.review import bench_review
    from radloop.lab.bench.safety import bench_safety
    from radloop.lab.bench.sim2real import bench_sim2real
    from radloop.lab.monitor_simulation import simulate_command
    from radloop.lab.synth.cli import bench_synth, synth
    from radloop.lab.training.lungfields.cli import train_lungfields_command
    from radloop.lab.training.ood import fit_ood
    from radloop.lab.training.reference.cli import train_reference
    from radloop.lab.training.scope.cli import bench_scope, train_scope
    from radloop.models.cli import models_command, serve_model
    from radloop.monitor.calibrate_cli import calibrate  # --data, and --from-signed reports
    from radloop.monitor.cli import monitor
    from radloop.pacs.cli import pacs
    from radloop.review.cli import audit, jobs, serve, users, worker
    from radloop.review.results_cli import results
    from radloop.safety.assist_cli import ask, compare, draft
    from radloop.safety.cli import scope, verifiers
    from radloop.safety.verifier_cli import verifier

    for command in (
        draft,
        ask,
        compare,
        context,
        serve_model,
        models_command,
        verifiers,
        scope,
        calibrate,
        verifier,
        fit_ood,
        synth,
        train_reference,
    ):
        main.add_command(command)
    bench.add_command(bench_synth, name="synth")
    bench.add_command(bench_reference, name="reference")
    bench.add_command(bench_safety, name="safety")
    bench.add_command(bench_realfilm, name="realfilm")
    bench.add_command(bench_evidence_calibration, name="evidence-calibration")
    monitor.add_command(simulate_command)  # the lab's simulated stream, beside `check` and `report`
    main.add_command(monitor)
    bench.add_command(bench_monitor, name="monitor")
    main.add_command(train_scope)
    bench.add_command(bench_scope, name="scope")
    main.add_command(eval_command, name="eval")
    bench.add_command(bench_eval, name="eval")
    for command in (serve, worker, jobs, users, audit, pacs, results):
        main.add_command(command)
    bench.add_command(bench_review, name="review")
    bench.add_command(bench_faults, name="faults")
    bench.add_command(bench_evidence, name="evidence")
    bench.add_command(bench_pacs, name="pacs")
    bench.add_command(bench_sim2real, name="sim2real")
    main.add_command(train_lungfields_command)


_attach_commands()


def run() -> None:  # pragma: no cover - console entry for `python -m radloop`
    main(prog_name="radloop")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
