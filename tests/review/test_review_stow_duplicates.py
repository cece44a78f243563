"""STOW-RS answers truthfully when instances are sent again (PS3.18 10.5.3)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid
from reviewkit import write_sample_copy

from radloop.review.dicomweb import DUPLICATE_SOP_INSTANCE, PROCESSING_FAILURE

_BOUNDARY = "radloop-stow-boundary"
_HEADERS = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={_BOUNDARY}'}


def _stow(client: Any, *instances: bytes) -> Any:
    body = b"".join(
        f"--{_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
        for data in instances
    )
    return client.post(
        "/dicomweb/studies", content=body + f"--{_BOUNDARY}--\r\n".encode(), headers=_HEADERS
    )


def _failures(response: Any) -> dict[str, int]:
    items = response.json().get("00081198", {}).get("Value", [])
    return {item["00081155"]["Value"][0]: item["00081197"]["Value"][0] for item in items}


def test_a_resent_instance_is_a_conflict_with_duplicate_sop_instance(
    app: Any, client_for: Any, tmp_path: Path
) -> None:
    client = client_for("boss")
    first = write_sample_copy(
        tmp_path / "a", uid=generate_uid(), patient="S1", date=datetime.date(2024, 4, 1)
    ).read_bytes()
    stored = _stow(client, first)
    assert stored.status_code == 200, stored.text
    assert len(stored.json()["00081199"]["Value"]) == 1 and "00081198" not in stored.json()

    again = _stow(client, first)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/dicom+json")
    sop = str(pydicom.dcmread(tmp_path / "a" / "IM0001.dcm").SOPInstanceUID)
    assert _failures(again) == {sop: DUPLICATE_SOP_INSTANCE}
    assert "Value" not in again.json()["00081199"]


def test_a_batch_with_new_and_resent_instances_is_accepted_in_part(
    app: Any, client_for: Any, tmp_path: Path
) -> None:
    client = client_for("boss")
    study = generate_uid()
    old = write_sample_copy(
        tmp_path / "old", uid=study, patient="S2", date=datetime.date(2024, 4, 2)
    )
    assert _stow(client, old.read_bytes()).status_code == 200
    # A new instance of the stored study, and an instance of a new study.
    extra = write_sample_copy(
        tmp_path / "extra", uid=study, patient="S2", date=datetime.date(2024, 4, 2)
    )
    new = write_sample_copy(
        tmp_path / "new", uid=generate_uid(), patient="S3", date=datetime.date(2024, 4, 3)
    )
    mixed = _stow(client, old.read_bytes(), extra.read_bytes(), new.read_bytes())
    assert mixed.status_code == 202, mixed.text
    uid = {p: str(pydicom.dcmread(p).SOPInstanceUID) for p in (old, extra, new)}
    assert _failures(mixed) == {uid[old]: DUPLICATE_SOP_INSTANCE, uid[extra]: PROCESSING_FAILURE}
    stored = [item["00081155"]["Value"][0] for item in mixed.json()["00081199"]["Value"]]
    assert stored == [uid[new]]
