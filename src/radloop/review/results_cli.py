"""``radloop results``: a study's report out as FHIR (sent), DICOM SR or HL7 v2 (written).

``radloop results send STUDY_ID`` POSTs the report as a FHIR R4 transaction Bundle to
``RADLOOP_FHIR_BASE_URL`` (credentials from ``RADLOOP_FHIR_TOKEN_FILE`` or the variable named
by ``RADLOOP_FHIR_TOKEN_ENV``, never from the command line). ``radloop results write`` writes
the same report as a file: a TID 2000 SR (``--format sr``, or every version of an amended
report with ``sr-chain``), the FHIR DiagnosticReport or transaction Bundle, or an ORU^R01.
Both are written to the audit trail. Sending the SR to a PACS is ``radloop pacs send``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["results"]

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The workstation's data directory (default: $RADLOOP_DATA_DIR or ./radloop-data).",
)


def _store(data_dir: Path | None) -> Any:
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store

    return open_store(settings_from_env(data_dir))


def _content(store: Any, study_id: str) -> Any:
    from radloop.review.queries import export_content

    with store.sessions() as session:
        try:
            return export_content(session, study_id)
        except KeyError:
            raise click.UsageError(f"no such study: {study_id}") from None


def _audit(store: Any, study_id: str, detail: dict[str, Any]) -> None:
    from radloop.review import audit as audit_trail

    audit_trail.record(store.sessions, "cli", "export", study_id, detail, seal=store.seal)


@click.group()
def results() -> None:
    """Results back to the EHR and RIS: FHIR R4, DICOM SR (TID 2000), HL7 v2 ORU^R01."""


@results.command("send")
@click.argument("study_id")
@_DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
def send(study_id: str, data_dir: Path | None, as_json: bool) -> None:
    """POST the study's report (DiagnosticReport and Observations) to the FHIR server.

    A draft goes as preliminary, a signed report as final, one with addenda as amended;
    sending again updates the same resources. Settings: RADLOOP_FHIR_BASE_URL,
    RADLOOP_FHIR_TOKEN_FILE or RADLOOP_FHIR_TOKEN_ENV, RADLOOP_FHIR_TIMEOUT_S,
    RADLOOP_FHIR_CA_FILE, RADLOOP_FHIR_PATIENT_SYSTEM. Exit 2 on any failure."""
    from radloop.review.fhir_out import FhirError, fhir_settings_from_env, send_report

    settings = fhir_settings_from_env()
    store = _store(data_dir)
    content = _content(store, study_id)
    try:
        answer = send_report(content, settings)
    except FhirError as error:
        _audit(
            store,
            study_id,
            {"format": "fhir-transaction", "to": settings.base_url, "error": str(error)[:300]},
        )
        raise
    _audit(
        store,
        study_id,
        {
            "format": "fhir-transaction",
            "to": settings.base_url,
            "status": content.status.fhir_status,
            "http": answer.status,
        },
    )
    if as_json:
        click.echo(json.dumps({"status": answer.status, "entries": answer.entries}))
    else:
        click.echo(
            f"sent {study_id} ({content.status.fhir_status}) to {settings.base_url}: "
            f"HTTP {answer.status}, {len(answer.entries)} resources"
        )
        for location in answer.locations:
            click.echo(f"  {location}")


@results.command("write")
@click.argument("study_id")
@_DATA_DIR
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sr", "sr-chain", "fhir", "bundle", "hl7"]),
    default="sr",
    show_default=True,
    help="sr: the current version as DICOM SR; sr-chain: every signed version (a folder); "
    "fhir: the DiagnosticReport; bundle: the FHIR transaction Bundle; hl7: ORU^R01.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="The file to write (a folder for sr-chain).",
)
@click.option(
    "--check",
    is_flag=True,
    help="With sr/sr-chain: validate with dciodvfy and exit 1 on any error.",
)
def write(study_id: str, data_dir: Path | None, fmt: str, output: Path, check: bool) -> None:
    """Write the study's report as DICOM SR, FHIR JSON or HL7 v2."""
    store = _store(data_dir)
    written: list[Path] = []
    if fmt in ("sr", "sr-chain"):
        from radloop.review.sr import study_sr

        try:
            documents = study_sr(store, study_id, all_versions=fmt == "sr-chain")
        except KeyError:
            raise click.UsageError(f"no such study: {study_id}") from None
        if fmt == "sr-chain":
            output.mkdir(parents=True, exist_ok=True)
            for document in documents:
                path = output / f"{study_id}-sr-v{document.version}.dcm"
                path.write_bytes(document.data)
                written.append(path)
        else:
            output.write_bytes(documents[-1].data)
            written.append(output)
    else:
        content = _content(store, study_id)
        if fmt == "fhir":
            from radloop.review.export import fhir_diagnostic_report

            output.write_text(json.dumps(fhir_diagnostic_report(content), indent=1))
        elif fmt == "bundle":
            from radloop.review.fhir_out import transaction_bundle

            output.write_text(json.dumps(transaction_bundle(content), indent=1))
        else:
            from radloop.review.hl7_out import oru_r01

            output.write_text(oru_r01(content), newline="")
        written.append(output)
    _audit(store, study_id, {"format": fmt, "files": [p.name for p in written]})
    failed = False
    for path in written:
        click.echo(str(path))
        if check and fmt in ("sr", "sr-chain"):
            from radloop.review.sr import dciodvfy_errors

            errors = dciodvfy_errors(path)
            for line in errors:
                click.echo(f"  dciodvfy: {line}", err=True)
            failed = failed or bool(errors)
    if failed:
        sys.exit(1)
