"""Results out of the workstation: the SR download for studies whose headers leave attributes
out, the SR chain of a signed then amended report over HTTP, and ``radloop results``."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.uid import generate_uid
from reviewkit import Seeded, write_sample_copy
from test_review_export_fhir import FhirServer

from radloop.review.sr import dciodvfy_errors, dciodvfy_path

needs_dciodvfy = pytest.mark.skipif(
    dciodvfy_path() is None,
    reason="dciodvfy is not installed (Debian package dicom3tools; .ci/run installs it)",
)


def _no_errors(tmp_path: Path, data: bytes, name: str) -> None:
    if dciodvfy_path() is None:
        return
    path = tmp_path / name
    path.write_bytes(data)
    assert dciodvfy_errors(path) == []


def _sign(client: Any, study: str) -> None:
    for item in client.get(f"/api/studies/{study}").json()["items"]:
        if item["flagged"]:
            client.post(
                f"/api/studies/{study}/findings/{item['key']}", json={"decision": "accepted"}
            )
    signed = client.post(f"/api/studies/{study}/sign")
    assert signed.status_code == 200, signed.text


def test_sr_download_of_a_study_without_type_2_attributes_is_not_a_500(
    store: Any, seeded: Seeded, client_for: Any, tmp_path: Path
) -> None:
    """Headers without PatientBirthDate (and other Type 2 attributes) export as SR."""
    from radloop.review.ingest import ingest_path

    source = write_sample_copy(
        tmp_path / "bare", uid=generate_uid(), patient="BARE-1", date=datetime.date(2024, 3, 3)
    )
    ds = pydicom.dcmread(source)
    for keyword in ("PatientBirthDate", "PatientSex", "StudyTime", "ReferringPhysicianName",
                    "AccessionNumber", "StudyID", "PatientAge"):  # fmt: skip
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(source)
    study = ingest_path(store, source.parent).added[0]
    rad = client_for("rad")
    response = rad.get(f"/api/studies/{study}/export/sr")  # queued: not drafted yet
    assert response.status_code == 200, response.text[:300]
    sr = pydicom.dcmread(io.BytesIO(response.content))
    assert sr.PatientBirthDate == "" and sr.PatientID == "BARE-1"
    assert sr.CompletionFlag == "PARTIAL"
    _no_errors(tmp_path, response.content, "bare.dcm")
    assert rad.get(f"/api/studies/{study}/export/fhir").status_code == 200


def test_signed_then_amended_report_exports_a_chain_of_sr(
    seeded: Seeded, client_for: Any, tmp_path: Path
) -> None:
    rad = client_for("rad")
    study = seeded.ids["flagged"]
    _sign(rad, study)
    first = rad.get(f"/api/studies/{study}/export/sr")
    assert first.status_code == 200
    signed = pydicom.dcmread(io.BytesIO(first.content))
    assert (signed.CompletionFlag, signed.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(signed.VerifyingObserverSequence[0].VerifyingObserverName) == "Rad^^^Dr"
    # The same SR again: same instance (a PACS keeps one copy).
    again = pydicom.dcmread(io.BytesIO(rad.get(f"/api/studies/{study}/export/sr").content))
    assert again.SOPInstanceUID == signed.SOPInstanceUID
    added = rad.post(f"/api/studies/{study}/addenda", json={"text": "Chest tube advised."})
    assert added.status_code == 200, added.text
    second = rad.get(f"/api/studies/{study}/export/sr")
    amended = pydicom.dcmread(io.BytesIO(second.content))
    assert amended.SOPInstanceUID != signed.SOPInstanceUID
    assert (amended.StudyInstanceUID, amended.SeriesInstanceUID) == (
        signed.StudyInstanceUID,
        signed.SeriesInstanceUID,
    )
    predecessor = amended.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == signed.SOPInstanceUID
    assert len(amended.VerifyingObserverSequence) == 2
    _no_errors(tmp_path, first.content, "signed.dcm")
    _no_errors(tmp_path, second.content, "amended.dcm")
    assert rad.get(f"/api/studies/{study}/export/fhir").json()["status"] == "amended"


def _cli_env(store: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = store.settings
    if settings.database_url:
        monkeypatch.setenv("RADLOOP_DATABASE_URL", settings.database_url)
    if settings.db_schema:
        monkeypatch.setenv("RADLOOP_DB_SCHEMA", settings.db_schema)
    return Path(settings.data_dir)


def test_results_write_gives_sr_fhir_and_hl7(
    store: Any, seeded: Seeded, client_for: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.review.hl7_out import parse_oru
    from radloop.review.results_cli import results

    rad = client_for("rad")
    study = seeded.ids["unchecked"]
    _sign(rad, study)
    assert rad.post(f"/api/studies/{study}/addenda", json={"text": "No change."}).status_code == 200
    data_dir = _cli_env(store, monkeypatch)
    runner = CliRunner()
    base = ["--data-dir", str(data_dir)]
    check = ["--check"] if dciodvfy_path() is not None else []
    chain = runner.invoke(
        results, ["write", study, *base, "--format", "sr-chain", "-o", str(tmp_path / "c"), *check]
    )
    assert chain.exit_code == 0, chain.output
    written = sorted((tmp_path / "c").glob("*.dcm"))
    assert [p.name for p in written] == [f"{study}-sr-v1.dcm", f"{study}-sr-v2.dcm"]
    versions = [pydicom.dcmread(p) for p in written]
    assert "PredecessorDocumentsSequence" in versions[1]
    for fmt, name in (("fhir", "r.json"), ("bundle", "b.json"), ("hl7", "m.hl7")):
        done = runner.invoke(
            results, ["write", study, *base, "--format", fmt, "-o", str(tmp_path / name)]
        )
        assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "amended"
    assert json.loads((tmp_path / "b.json").read_text())["type"] == "transaction"
    oru = parse_oru((tmp_path / "m.hl7").read_text())
    assert oru.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.obr.obr_25.to_er7() == "C"
    missing = runner.invoke(results, ["write", "nosuch", *base, "-o", str(tmp_path / "x.dcm")])
    assert missing.exit_code == 2 and "no such study" in missing.output


def test_results_send_posts_to_the_configured_fhir_server(
    store: Any, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.review.results_cli import results

    data_dir = _cli_env(store, monkeypatch)
    token = tmp_path / "token"
    token.write_text("file-token\n")
    monkeypatch.setenv("RADLOOP_FHIR_TOKEN_FILE", str(token))
    study = seeded.ids["routine"]
    with FhirServer() as server:
        monkeypatch.setenv("RADLOOP_FHIR_BASE_URL", server.url)
        sent = CliRunner().invoke(results, ["send", study, "--data-dir", str(data_dir), "--json"])
        assert sent.exit_code == 0, sent.output
        [request] = server.received
        assert {k.lower(): v for k, v in request["headers"].items()}["authorization"] == (
            "Bearer file-token"
        )
        report = request["body"]["entry"][0]["resource"]
        assert report["resourceType"] == "DiagnosticReport" and report["status"] == "preliminary"
        assert json.loads(sent.output)["status"] == 200
        server.reply = lambda _body: (500, b"down", 0.0)
        failed = CliRunner().invoke(results, ["send", study, "--data-dir", str(data_dir)])
        assert failed.exit_code != 0
        assert "HTTP 500" in str(failed.exception) or "HTTP 500" in failed.output
