"""Signed reports back to the PACS: DICOM SR stored in Orthanc by STOW-RS, by hand
(``radloop pacs send``) or on signing (an outbox row in the signature's transaction)."""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pacskit import draft, draft_and_sign, login, reader, sample_instance
from pydicom.uid import generate_uid
from sqlalchemy import select

from radloop.cli import main

SINCE = datetime.date(2024, 1, 1)


def _pulled(orthanc: Any, config: Any, store: Any) -> tuple[str, str]:
    """One study put into Orthanc and pulled: (Study Instance UID, worklist id)."""
    from radloop.pacs.poll import poll_once

    uid = generate_uid()
    orthanc.upload(sample_instance(uid, patient="SEND"))
    result = poll_once(store, config, since=SINCE)
    assert result.fetched == [uid], result
    return uid, result.added[0]


def _srs_in_orthanc(config: Any, study_uid: str) -> list[Any]:
    """The SR instances Orthanc holds for the study (QIDO-RS, then WADO-RS)."""
    from radloop.pacs.web import make_client

    web = make_client(config)
    found = web.client.search_for_instances(
        study_uid, search_filters={"Modality": "SR"}, get_remaining=True
    )
    return [
        web.client.retrieve_instance(
            study_uid,
            item["0020000E"]["Value"][0],
            item["00080018"]["Value"][0],
            media_types=(("application/dicom", "*"),),
        )
        for item in found
    ]


def _dciodvfy_errors(ds: Any, folder: Path) -> list[str]:
    import subprocess

    import pydicom

    path = folder / f"{ds.SOPInstanceUID}.dcm"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    path.write_bytes(buffer.getvalue())
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def _cli(store: Any, config_env: dict[str, str], *args: str) -> Any:
    clean = {k: None for k in os.environ if k.startswith("RADLOOP_")}
    return CliRunner().invoke(
        main, ["pacs", *args, "--data-dir", str(store.data_dir)], env={**clean, **config_env}
    )


def test_pacs_send_stores_the_signed_report_as_sr_in_orthanc(
    orthanc: Any, pacs_config: Any, store: Any, tmp_path: Path
) -> None:
    from radloop.pacs.poll import poll_once

    uid, study_id = _pulled(orthanc, pacs_config, store)
    draft_and_sign(store, study_id)
    sent = _cli(store, orthanc.pacs_env(), "send", study_id)
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith(f"sent the report of {study_id} as SR ")
    srs = _srs_in_orthanc(pacs_config, uid)
    assert len(srs) == 1
    sr = srs[0]
    assert str(sr.SOPInstanceUID) in sent.output
    assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(sr.StudyInstanceUID) == uid
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(sr, tmp_path) == []
    # Sent again by hand: the same version is the same instance, and the PACS keeps one.
    assert _cli(store, orthanc.pacs_env(), "send", study_id).exit_code == 0
    assert [str(s.SOPInstanceUID) for s in _srs_in_orthanc(pacs_config, uid)] == [
        str(sr.SOPInstanceUID)
    ]
    # The SR now in the study does not make the study new to a poll.
    again = poll_once(store, pacs_config, since=SINCE)
    assert again.fetched == [] and again.skipped == 1


def test_a_draft_never_leaves(orthanc: Any, pacs_config: Any, store: Any) -> None:
    from radloop.pacs.send import NotSignedError, send_report

    uid, study_id = _pulled(orthanc, pacs_config, store)
    draft(store, study_id)
    with pytest.raises(NotSignedError, match="a signed report"):
        send_report(store, pacs_config, study_id)
    refused = _cli(store, orthanc.pacs_env(), "send", study_id)
    assert refused.exit_code == 2 and "expected a signed report" in refused.output
    assert _srs_in_orthanc(pacs_config, uid) == []


def _outbox(store: Any) -> list[Any]:
    from radloop.pacs.tables import PacsOutbox

    with store.sessions() as session:
        return list(session.execute(select(PacsOutbox).order_by(PacsOutbox.id)).scalars())


def test_a_signature_queues_its_report_and_the_sender_stores_it(
    orthanc: Any, pacs_config: Any, store: Any
) -> None:
    from radloop.pacs.outbox import queue_on_sign
    from radloop.pacs.send import send_pending
    from radloop.review import worksheet

    woken: list[bool] = []
    queue_on_sign(store.sessions, lambda: woken.append(True))
    uid, study_id = _pulled(orthanc, pacs_config, store)
    draft(store, study_id)
    username = reader(store)
    # A refused signature (a stale worksheet version) leaves no row.
    with store.sessions() as session, pytest.raises(worksheet.StaleWorksheetError):
        worksheet.sign(session, study_id, username, "Ann B Reader", version=99)
    assert _outbox(store) == [] and woken == []
    with store.sessions() as session:
        worksheet.sign(session, study_id, "rad", "Ann B Reader")
    assert woken == [True]
    [row] = _outbox(store)
    assert (row.study_id, row.event, row.state) == (study_id, "final", "pending")

    [result] = send_pending(store, pacs_config)
    assert result.state == "sent" and result.sop_instance_uid
    assert send_pending(store, pacs_config) == []
    [row] = _outbox(store)
    assert row.state == "sent" and row.sop_instance_uid == result.sop_instance_uid
    assert [str(sr.SOPInstanceUID) for sr in _srs_in_orthanc(pacs_config, uid)] == [
        result.sop_instance_uid
    ]
    # An addendum queues the amended report: a new SR that names the first as predecessor.
    with store.sessions() as session:
        worksheet.add_addendum(session, study_id, "No change on review.", "rad", "Ann B Reader")
    assert [r.event for r in _outbox(store)] == ["final", "addendum"]
    [amended] = send_pending(store, pacs_config)
    assert amended.state == "sent" and amended.sop_instance_uid != result.sop_instance_uid
    srs = {str(sr.SOPInstanceUID): sr for sr in _srs_in_orthanc(pacs_config, uid)}
    assert set(srs) == {result.sop_instance_uid, amended.sop_instance_uid}
    named = srs[str(amended.sop_instance_uid)].PredecessorDocumentsSequence[0]
    assert named.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        result.sop_instance_uid
    )


def test_signing_never_waits_on_a_pacs_that_is_down(
    orthanc: Any, pacs_config: Any, store: Any
) -> None:
    from radloop.lab.orthanc import free_port
    from radloop.pacs.outbox import queue_on_sign
    from radloop.pacs.send import send_pending

    queue_on_sign(store.sessions)
    _, study_id = _pulled(orthanc, pacs_config, store)
    draft_and_sign(store, study_id)
    down = dataclasses.replace(
        pacs_config, dicomweb_url=f"http://127.0.0.1:{free_port()}/dicom-web", timeout_s=2.0
    )
    [result] = send_pending(store, down)
    assert result.state == "pending" and "STOW-RS" in (result.error or "")
    [row] = _outbox(store)
    assert row.state == "pending" and row.attempts == 1 and row.not_before is not None
    assert send_pending(store, pacs_config) == []  # not due yet: it waits for its retry time


def test_the_workstation_sends_on_sign_when_configured(
    orthanc: Any, pacs_config: Any, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from radloop.pacs.outbox import review_extension
    from radloop.review.app import create_app

    for name, value in (orthanc.pacs_env() | {"RADLOOP_PACS_SEND_ON_SIGN": "1"}).items():
        monkeypatch.setenv(name, value)
    uid, study_id = _pulled(orthanc, pacs_config, store)
    draft(store, study_id)
    username = reader(store)
    app = create_app(
        store.settings.with_(cookie_secure=False),
        store=store,
        extensions=[review_extension],
        start_worker=False,
    )
    with TestClient(app, base_url="https://testserver") as client:
        login(client, username)
        started = time.monotonic()
        signed = client.post(f"/api/studies/{study_id}/sign", json={})
        assert signed.status_code == 200, signed.text
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _srs_in_orthanc(pacs_config, uid):
            time.sleep(0.2)
    [sr] = _srs_in_orthanc(pacs_config, uid)
    [row] = _outbox(store)
    assert row.state == "sent" and row.sop_instance_uid == str(sr.SOPInstanceUID)
