"""Helpers of the PACS tests: DICOM instances to put into Orthanc, and a study signed."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

ROUTINE = (
    "FINDINGS: The lungs are clear. No pleural effusion. No pneumothorax.\n"
    "IMPRESSION: No acute cardiopulmonary abnormality."
)


def sample_instance(
    study_uid: str | None = None,
    *,
    patient: str = "PACS-1",
    date: datetime.date = datetime.date(2024, 3, 1),
    modality: str = "DX",
    body_part: str = "CHEST",
    series_uid: str | None = None,
) -> bytes:
    """The bundled sample radiograph (JPEG 2000, 512 px) as a new instance: Part 10 bytes."""
    import pydicom
    from pydicom.uid import generate_uid

    from radloop.study import sample_study_path

    ds = pydicom.dcmread(next(sample_study_path().glob("*.dcm")))
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient
    ds.StudyDate = date.strftime("%Y%m%d")
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def corrupt_instance(study_uid: str, **kwargs: Any) -> bytes:
    """A sample instance whose JPEG 2000 pixel data is cut short: it reads as DICOM (a PACS
    stores it) but its image cannot be decoded."""
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(io.BytesIO(sample_instance(study_uid, **kwargs)))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 8 * 2]])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def scope_options() -> dict[str, Any]:
    """The scope defaults minus the acquisition classifier while the package ships none
    (as tests/review/conftest.py)."""
    import inspect
    from importlib import resources

    from radloop.safety import assess_study

    shipped = Path(str(resources.files("radloop"))) / "data" / "scope" / "acquisition.onnx"
    takes = "acquisition" in inspect.signature(assess_study).parameters
    return {"acquisition": False} if takes and not shipped.is_file() else {}


def draft(store: Any, study_id: str) -> None:
    """Draft the study with a scripted normal report, checked by a table verifier."""
    from sqlalchemy import update

    from radloop.models.mock import MockModel
    from radloop.review.db import Job, StudyRow
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    with store.sessions() as session:
        uid = session.get(StudyRow, study_id).study_instance_uid
        session.execute(update(Job).where(Job.study_id == study_id).values(state="done"))
        session.commit()
    presence = {"pneumothorax": 0.01, "pleural_effusion": 0.02}
    lab = {"domains": [{"name": "synthetic-lab", "images": "test", "findings": sorted(presence)}]}
    verifier = TableVerifier({uid: {"presence": presence}}, name="pacs-test", competence=lab)
    draft_study(store, study_id, MockModel(ROUTINE, model="scripted-pacs-test"), verifier)


def reader(store: Any, username: str = "rad") -> str:
    """A radiologist account (created if missing; password :data:`PASSWORD`)."""
    from sqlalchemy import select

    from radloop.review.accounts import create_user
    from radloop.review.db import User

    with store.sessions() as session:
        if session.execute(select(User).where(User.username == username)).scalar() is None:
            create_user(session, username, PASSWORD, "radiologist", "Ann B Reader")
            session.commit()
    return username


PASSWORD = "correct horse battery"


def draft_and_sign(store: Any, study_id: str) -> Any:
    """Draft the study, then sign it as a radiologist; the SignedReport."""
    from radloop.review import worksheet

    draft(store, study_id)
    username = reader(store)
    with store.sessions() as session:
        return worksheet.sign(session, study_id, username, "Ann B Reader")


def login(client: Any, username: str) -> None:
    """Sign a TestClient in through the login form and set its CSRF header."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
