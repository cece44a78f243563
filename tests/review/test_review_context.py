"""The clinical context the drafting worker gives the model, read where the model reads it.

A study whose prior was signed is drafted by the ``openai`` backend against a fake model server
on loopback: the prior report's text, the lab value of the FHIR Bundle uploaded beside the
images, and the order's history from the DICOM header are in the prompt the server received,
each labelled with where it came from and how old it is; the draft stores exactly that section,
and the study page shows it under "What the model was given".
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from reviewkit import write_sample_copy

from radloop.lab.bench.slow_model_server import FakeModelServer

PRIOR_TEXT = (
    "FINDINGS: Small right pleural effusion. No pneumothorax.\nIMPRESSION: Small right effusion."
)


class RecordingServer(FakeModelServer):
    """The fake server, keeping every request body it received."""

    def __init__(self) -> None:
        super().__init__(latency_s=0.0, slots=None)
        self.bodies: list[dict[str, Any]] = []

    def _complete(self, body: dict[str, Any]) -> dict[str, Any] | None:
        self.bodies.append(body)
        return super()._complete(body)


def _prompt_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [part["text"] for part in content if part.get("type") == "text"]
    return texts


def _bundle(patient: str) -> dict[str, Any]:
    lab = "http://terminology.hl7.org/CodeSystem/observation-category"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1",
                          "identifier": [{"value": patient}]}},
            {"resource": {
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": lab, "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
                "effectiveDateTime": "2024-02-14T08:00:00Z",
                "valueQuantity": {"value": 48, "unit": "mg/L"},
                "referenceRange": [{"high": {"value": 5, "unit": "mg/L"}}],
            }},
        ],
    }  # fmt: skip


def _ingest(store: Any, folder: Path) -> str:
    from radloop.review.ingest import ingest_path

    return str(ingest_path(store, folder).added[0])


@pytest.fixture(scope="module")
def context_studies(store: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A prior, drafted and signed, and a current study of the same patient with a FHIR
    Bundle and an Additional Patient History; neither drafted by a model server yet."""
    import pydicom
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.worker import draft_study
    from radloop.review.worksheet import sign
    from radloop.safety import TableVerifier

    scratch = tmp_path_factory.mktemp("context-sources")
    patient = "PAT-CONTEXT"
    uids = {"prior": generate_uid(), "current": generate_uid()}
    prior = write_sample_copy(scratch / "prior", uid=uids["prior"], patient=patient,
                              date=datetime.date(2024, 2, 1))  # fmt: skip
    current = write_sample_copy(scratch / "current", uid=uids["current"], patient=patient,
                                date=datetime.date(2024, 2, 15))  # fmt: skip
    ds = pydicom.dcmread(current)
    ds.AdditionalPatientHistory = "Right-sided chest drain removed 2 days ago"
    ds.save_as(current)
    (current.parent / "labs.json").write_text(json.dumps(_bundle(patient)), encoding="utf-8")
    ids = {"prior": _ingest(store, prior.parent), "current": _ingest(store, current.parent)}
    verifier = TableVerifier({}, name="test-empty-verifier")
    draft_study(store, ids["prior"], MockModel(PRIOR_TEXT, model="scripted"), verifier)
    with store.sessions() as session:
        sign(session, ids["prior"], "rad", "Dr Rad")
    return ids


def test_the_prompt_sent_to_the_model_server_has_the_signed_prior_report(
    store: Any, context_studies: dict[str, str], accounts: dict[str, str]
) -> None:
    from radloop.models import load_model
    from radloop.review.db import Draft, StudyRow
    from radloop.review.queries import study_detail
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    with store.sessions() as session:
        current = session.get(StudyRow, context_studies["current"])
        assert current is not None and current.prior_id == context_studies["prior"]
    with RecordingServer() as server:
        model = load_model("openai", base_url=server.base_url, model="fake", api_key_env=None,
                           max_retries=0)  # fmt: skip
        with model:
            draft_study(store, context_studies["current"], model, TableVerifier({}, name="t"))
    drafts = [t for b in server.bodies for t in _prompt_texts(b) if "Draft the findings" in t]
    # The report's request (and any sampled drafts' request beside it) carry one prompt.
    assert drafts and len(set(drafts)) == 1, [
        t[:80] for b in server.bodies for t in _prompt_texts(b)
    ]
    prompt = drafts[0]
    signed_on = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert (
        f"Prior report (radloop, signed {signed_on}, prior film of 2024-02-01, 14 days before "
        "this film): FINDINGS: Small right pleural effusion. No pneumothorax. IMPRESSION: "
        "Small right effusion."
    ) in prompt
    assert (
        "Laboratory values (FHIR Bundle labs.json):\n- CRP 48 mg/L, high (1 day before this film)"
        in prompt
    )
    assert (
        "History (this film's order, DICOM (0010,21B0) Additional Patient History): "
        "Right-sided chest drain removed 2 days ago"
    ) in prompt
    with store.sessions() as session:
        stored = session.get(Draft, context_studies["current"])
        assert stored is not None and stored.context is not None
        assert stored.context["text"] in prompt  # exactly what the model read
        assert [i["kind"] for i in stored.context["given"]] == ["history", "prior_report", "lab"]
        assert stored.context["notes"] == []
        detail = study_detail(session, context_studies["current"])
    assert detail["draft"]["model_context"]["text"] == stored.context["text"]


def test_the_study_page_shows_what_the_model_was_given(
    context_studies: dict[str, str], client_for: Any
) -> None:
    client = client_for("rad")
    page = client.get(f"/studies/{context_studies['current']}").text
    assert 'id="model-context"' in page and "What the model was given" in page
    assert "CRP 48 mg/L, high (1 day before this film)" in page
    assert "Prior report (radloop, signed" in page
    prior = client.get(f"/studies/{context_studies['prior']}").text
    # The prior was drafted by a scripted model with no prior or labs: only its own order.
    assert "What the model was given" in prior


def test_a_bundle_of_another_patient_is_noted_not_used(store: Any, tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.db import Draft
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    path = write_sample_copy(tmp_path / "other", uid=generate_uid(), patient="PAT-OWN",
                             date=datetime.date(2024, 3, 1))  # fmt: skip
    (path.parent / "labs.json").write_text(json.dumps(_bundle("PAT-SOMEONE-ELSE")))
    study_id = _ingest(store, path.parent)
    model = MockModel("FINDINGS: No pneumothorax.")
    draft_study(store, study_id, model, TableVerifier({}, name="t"))
    assert "CRP" not in model.requests[0].prompt
    with store.sessions() as session:
        stored = session.get(Draft, study_id)
        assert stored is not None and stored.context is not None
        assert stored.context["notes"] == [
            "FHIR Bundle labs.json not used: it names another patient"
        ]


def test_a_bundle_uploaded_with_the_images_reaches_the_prompt(
    store: Any, client_for: Any, tmp_path: Path
) -> None:
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    image = write_sample_copy(tmp_path / "upload", uid=generate_uid(), patient="PAT-UPLOAD",
                              date=datetime.date(2024, 2, 15))  # fmt: skip
    files = [
        ("files", ("IM0001.dcm", image.read_bytes(), "application/dicom")),
        ("files", ("labs.json", json.dumps(_bundle("PAT-UPLOAD")).encode(), "application/json")),
    ]
    response = client_for("rad").post("/api/upload", files=files)
    assert response.status_code == 200, response.text
    (study_id,) = response.json()["added"]
    model = MockModel("FINDINGS: No pneumothorax.")
    draft_study(store, study_id, model, TableVerifier({}, name="t"))
    assert "- CRP 48 mg/L, high (1 day before this film)" in model.requests[0].prompt
