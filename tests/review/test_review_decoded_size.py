"""Decompression bombs sent to the workstation: upload, zip upload and STOW-RS are refused
from the DICOM header with a 4xx that names the decoded size, and nothing is stored."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path
from typing import Any

import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid
from reviewkit import write_sample_copy
from sqlalchemy import func, select

_REFUSAL = "decodes to at most 64.0 MiB"
_CLAIM = "9999 rows x 9999 columns x 1 frame(s) x 1 sample(s) x 16 bits = 190.7 MiB"


def _bomb(folder: Path) -> bytes:
    """The sample radiograph, its header claiming 9,999 x 9,999 16-bit pixels (RLE)."""
    path = write_sample_copy(
        folder, uid=generate_uid(), patient="BOMB", date=datetime.date(2024, 6, 1)
    )
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 9999, 9999, 16, 1
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _study_count(app: Any) -> int:
    from radloop.review.db import StudyRow

    with app.state.ctx.store.sessions() as session:
        return int(session.execute(select(func.count(StudyRow.id))).scalar_one())


def test_uploads_and_stow_of_decompression_bombs_are_refused_with_the_decoded_size(
    app: Any, client_for: Any, tmp_path: Path
) -> None:
    client = client_for("boss")
    before = _study_count(app)
    bomb = _bomb(tmp_path / "one")
    assert len(bomb) < 64 * 1024
    single = client.post(
        "/api/upload", files=[("files", ("bomb.dcm", bomb, "application/octet-stream"))]
    )
    assert single.status_code == 422, single.text
    assert _REFUSAL in single.json()["detail"] and _CLAIM in single.json()["detail"]
    assert "max_decoded_bytes_per_image" in single.json()["detail"]

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(4):
            zf.writestr(f"study{k}/IM0001.dcm", _bomb(tmp_path / f"z{k}"))
    zipped = client.post(
        "/api/upload", files=[("files", ("bombs.zip", archive.getvalue(), "application/zip"))]
    )
    assert zipped.status_code == 422, zipped.text
    assert _REFUSAL in zipped.json()["detail"]

    boundary = "radloop-bomb-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + bomb
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stow = client.post(
        "/dicomweb/studies",
        content=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert stow.status_code == 422, stow.text
    assert _REFUSAL in stow.json()["detail"]
    assert _study_count(app) == before
    assert not list((app.state.ctx.store.data_dir / "incoming").iterdir())
