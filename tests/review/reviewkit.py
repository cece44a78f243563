"""Helpers of the review workstation tests (data makers, login); fixtures are in conftest."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"
HALLUCINATION = "A 2.3 cm mass in the right upper lobe."


def write_sample_copy(
    folder: Path, *, uid: str, patient: str, date: datetime.date, institution: str = "Test Hospital"
) -> Path:
    """The bundled sample radiograph as a new study (new UIDs, patient and date)."""
    import pydicom
    from pydicom.uid import generate_uid

    from radloop.study import sample_study_path

    source = next(sample_study_path().glob("*.dcm"))
    ds = pydicom.dcmread(source)
    ds.StudyInstanceUID = uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient
    ds.StudyDate = date.strftime("%Y%m%d")
    ds.InstitutionName = institution
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "IM0001.dcm"
    ds.save_as(target)
    return target


def _heatmap(left: bool) -> list[list[float]]:
    grid = np.zeros((16, 16), dtype=np.float32)
    # The patient's left is on the image's right.
    grid[4:12, 9:15] = 1.0 if left else 0.0
    grid[4:12, 1:7] = 0.0 if left else 1.0
    return grid.tolist()


@dataclass
class Seeded:
    """The seeded store: study ids by role and the verifier table used."""

    ids: dict[str, str]
    uids: dict[str, str]


DEGENERATE = "effusio effusion " * 30
"""A repetition loop: the draft fails, nothing of it is read as a finding or as normal."""
REPLIES = {
    "routine": "FINDINGS: The lungs are clear. No pleural effusion. No pneumothorax.\n"
    "IMPRESSION: No acute cardiopulmonary abnormality.",
    "urgent": "FINDINGS: Large left pneumothorax. Heart size is normal.\n"
    "IMPRESSION: Large left pneumothorax.",
    "flagged": f"FINDINGS: {HALLUCINATION} Cardiomegaly.\nIMPRESSION: Cardiomegaly.",
    "prior": "FINDINGS: Small right pleural effusion.",
    "current": "FINDINGS: Moderate right pleural effusion, increased.",
    # The verifier is validated for cardiomegaly, not for rib fractures: one claim verified,
    # one not checked.
    "unchecked": "FINDINGS: Cardiomegaly. Right rib fracture.\nIMPRESSION: Cardiomegaly.",
    # A degenerate reply on a film where the verifier sees a pneumothorax the draft does not
    # mention: the draft fails, the study stays urgent.
    "failed": DEGENERATE,
}
PRESENCE = {
    "routine": {"pneumothorax": 0.01, "pleural_effusion": 0.02},
    "urgent": {"pneumothorax": 0.98, "cardiomegaly": 0.05},
    "flagged": {"mass": 0.02, "cardiomegaly": 0.97},
    "prior": {"pleural_effusion": 0.9},
    "current": {"pleural_effusion": 0.95},
    "unchecked": {"cardiomegaly": 0.9},
    "failed": {"pneumothorax": 0.95},
}
ROLES = (*REPLIES, "abstained")
"""Every seeded study; "abstained" is drafted by :class:`OutOfDomainModel`."""
REAL_FILM_DOMAIN = "real-frontal"


class OutOfDomainModel:
    """A structured drafting model (like the built-in one) whose domain check says the film
    is outside its validated domain, so it abstains."""

    model_id = "stub-reference (validated on the synthetic lab only)"
    reason = "the stub model is validated on synthetic radiographs only; this film is outside it"

    def assess_domain(self, images: Any) -> Any:
        from radloop.models.competence import DomainDecision

        return DomainDecision(self.model_id, None, self.reason, score=31.0, threshold=19.5)

    def predict_findings(self, images: Any) -> tuple[Any, ...]:
        raise AssertionError("a model outside its domain must not be asked for findings")


def seed_store(store: Any, scratch: Path) -> Seeded:
    """Ingest one study per role and draft each with its scripted reply."""
    from pydicom.uid import generate_uid
    from sqlalchemy import update

    from radloop.models.mock import MockModel
    from radloop.review.db import Job
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    dates = {"prior": datetime.date(2023, 6, 1)}
    patients = {"prior": "PAT-PAIR", "current": "PAT-PAIR"}
    uids = {role: generate_uid() for role in ROLES}
    ids: dict[str, str] = {}
    for role in ROLES:
        folder = write_sample_copy(
            scratch / role,
            uid=uids[role],
            patient=patients.get(role, f"PAT-{role}"),
            date=dates.get(role, datetime.date(2024, 1, 15)),
            institution="Site B" if role == "routine" else "Site A",
        ).parent
        ids[role] = ingest_path(store, folder).added[0]
    table = {
        uids[role]: {
            "presence": presence,
            "heatmaps": {code: _heatmap(role != "prior") for code in presence},
        }
        for role, presence in PRESENCE.items()
    }
    # The abstained study stands for a real film: outside the verifier's domain too.
    table[uids["abstained"]] = {"presence": {}, "domain": REAL_FILM_DOMAIN}
    codes = sorted({code for presence in PRESENCE.values() for code in presence})
    lab = {"domains": [{"name": "synthetic-lab", "images": "test", "findings": codes}]}
    verifier = TableVerifier(table, name="test-table-verifier", competence=lab)
    with store.sessions() as session:
        session.execute(update(Job).values(state="done"))
        session.commit()
    for role, reply in REPLIES.items():
        draft_study(store, ids[role], MockModel(reply, model="scripted-test-model"), verifier)
    draft_study(store, ids["abstained"], OutOfDomainModel(), verifier)
    return Seeded(ids, uids)


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the login form; returns the response of the form post."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
