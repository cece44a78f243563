"""PACS that push: radloop's storage SCP (C-STORE) receives studies from Orthanc, from
dcmtk's storescu and from pynetdicom, and ingests each study through the one ingestion path."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pacskit import sample_instance
from pydicom.uid import generate_uid
from sqlalchemy import func, select

SINCE = datetime.date(2024, 1, 1)


def _studies(store: Any) -> int:
    from radloop.review.db import StudyRow

    with store.sessions() as session:
        return int(session.execute(select(func.count()).select_from(StudyRow)).scalar_one())


def _wait_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"radloop pacs listen exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def test_orthanc_pushes_a_study_into_radloop_pacs_listen(
    orthanc: Any, tmp_path: Path, make_store: Any
) -> None:
    from radloop.pacs.config import PacsConfig
    from radloop.pacs.poll import poll_once

    data_dir = tmp_path / "listening"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADLOOP_")}
    env |= orthanc.pacs_env(scp_port=orthanc.scp_port) | {"RADLOOP_PACS_STUDY_IDLE_S": "60"}
    process = subprocess.Popen(
        [sys.executable, "-m", "radloop", "pacs", "listen", "--json", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(orthanc.scp_port, process)
        uid = generate_uid()
        first = orthanc.upload(sample_instance(uid, patient="PUSHED"))
        orthanc.upload(sample_instance(uid, patient="PUSHED"))  # a lateral, say
        orthanc.upload(sample_instance(uid, patient="PUSHED", modality="SR"))  # not kept
        study = orthanc.rest("GET", f"/instances/{first}/study").json()["ID"]
        pushed = orthanc.push_to("radloop", [study])
        assert pushed.get("FailedInstancesCount", 0) == 0, pushed
        assert process.stdout is not None
        line = process.stdout.readline()  # the study is complete at association release
        outcome = json.loads(line)
        assert outcome["uid"] == uid and outcome["state"] == "added", outcome
        assert outcome["instances"] == 2 and outcome["error"] is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""

    from radloop.review.settings import Settings

    store = make_store("listening")
    assert isinstance(store.settings, Settings) and _studies(store) == 1
    # A poll finds the pushed study in the PACS too, and leaves it: it is here already.
    config = PacsConfig.from_env(orthanc.pacs_env())
    result = poll_once(store, config, since=SINCE)
    assert result.found == 1 and result.fetched == [] and result.skipped == 1


def _scp(store: Any, orthanc: Any, **changes: Any) -> Any:
    from radloop.pacs.config import PacsConfig
    from radloop.pacs.scp import StorageSCP

    config = PacsConfig.from_env(orthanc.pacs_env(scp_port=orthanc.scp_port))
    scp = StorageSCP(store, dataclasses.replace(config, **changes))
    scp.start()
    _wait_listening(orthanc.scp_port)
    return scp


@pytest.mark.skipif(
    shutil.which("storescu") is None, reason="dcmtk not installed: apt-get install dcmtk"
)
def test_storescu_pushes_a_study_and_a_stranger_is_turned_away(
    orthanc: Any, store: Any, tmp_path: Path
) -> None:
    scp = _scp(store, orthanc)
    try:
        files = []
        uid = generate_uid()
        for k in range(2):
            files.append(tmp_path / f"IM{k}.dcm")
            files[-1].write_bytes(sample_instance(uid, patient="STORESCU"))
        port = str(orthanc.scp_port)
        sent = subprocess.run(
            [
                "storescu",
                "-xv",
                "-aet",
                "ORTHANC",
                "-aec",
                "RADLOOP",
                "127.0.0.1",
                port,
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        outcome = scp.ingested.get(timeout=60)
        assert outcome["uid"] == uid and outcome["state"] == "added" and outcome["instances"] == 2
        # A calling AE title radloop does not know is refused at association.
        stranger = subprocess.run(
            [
                "storescu",
                "-xv",
                "-aet",
                "STRANGER",
                "-aec",
                "RADLOOP",
                "127.0.0.1",
                port,
                str(files[0]),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stranger.returncode != 0
        assert "Rejected" in stranger.stderr or "rejected" in stranger.stderr.lower()
    finally:
        scp.stop()
    assert _studies(store) == 1


def _associate(port: int, calling: str = "ORTHANC") -> Any:
    from pynetdicom import AE, StoragePresentationContexts

    ae = AE(ae_title=calling)
    ae.requested_contexts = StoragePresentationContexts[:100]
    from pydicom.uid import JPEG2000Lossless

    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1.1", JPEG2000Lossless)
    assoc = ae.associate("127.0.0.1", port, ae_title="RADLOOP")
    assert assoc.is_established
    return assoc


def test_a_study_is_complete_after_the_idle_time_and_the_limits_apply(
    orthanc: Any, make_store: Any
) -> None:
    import io

    import pydicom

    from radloop.study import IngestLimits

    store = make_store(limits=IngestLimits(max_file_bytes=300_000))
    scp = _scp(store, orthanc, study_idle_s=0.5)
    try:
        assoc = _associate(orthanc.scp_port)
        try:
            big = pydicom.dcmread(io.BytesIO(sample_instance(patient="BIG")))
            padded = big.copy()  # the sample (240 kB) and 150 kB more: past the file limit
            padded.private_block(0x0009, "RADLOOP TEST", create=True).add_new(
                0x01, "OB", b"\0" * 150_000
            )
            assert assoc.send_c_store(padded).Status == 0xA700  # Out of Resources
            uid = generate_uid()
            status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(sample_instance(uid))))
            assert status.Status == 0x0000
            # The association stays open: the study completes once it has been idle.
            outcome = scp.ingested.get(timeout=30)
            assert outcome["uid"] == uid and outcome["state"] == "added"
        finally:
            assoc.release()
    finally:
        scp.stop()
    assert _studies(store) == 1
