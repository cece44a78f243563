"""FHIR R4 into context items: a Bundle given with the study, and a FHIR server asked by
patient (a tiny HTTP server on loopback here, never the internet)."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("fhir.resources")

from radloop.context import (
    ContextFetchError,
    FhirBundleError,
    FhirServer,
    fetch_patient_bundle,
    gather_context,
    read_bundle,
)
from radloop.study import load_study, sample_study_path

LAB = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory",
            }
        ]
    }
]
VITAL = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
]
FILM = datetime.date(2024, 3, 15)


def observation(code: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": value.pop("status", "final"),
        "category": value.pop("category", LAB),
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when,
        **value,
    }


def condition(text: str, status: str = "active", **more: Any) -> dict[str, Any]:
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    return {
        "resourceType": "Condition",
        "code": {"text": text},
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": clinical, "code": status}]},
        **more,
    }


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def test_lab_observations_and_active_conditions_become_aged_items() -> None:
    read = read_bundle(
        bundle(
            {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "MRN-7"}]},
            observation(
                "1988-5",
                "2024-03-14T23:10:00+01:00",
                valueQuantity={"value": 48, "unit": "mg/L"},
                referenceRange=[{"high": {"value": 5}}],
            ),
            observation(
                "731-0",
                "2024-03-15",
                valueQuantity={"value": 0.6, "unit": "10^3/µL"},
                interpretation=[{"coding": [{"code": "L"}]}],
            ),
            observation("2532-0", "2024-03", valueQuantity={"value": 300, "unit": "U/L"}),
            observation("8867-4", "2024-03-15", category=VITAL, valueQuantity={"value": 90}),
            observation(
                "1988-5",
                "2024-03-10",
                status="entered-in-error",
                valueQuantity={"value": 999, "unit": "mg/L"},
            ),
            observation("33959-8", "2024-03-16", valueString="below the detection limit"),
            condition("Kidney transplant recipient", onsetDateTime="2019-05-02"),
            condition("Pneumonia", status="resolved", onsetDateTime="2023-01-01"),
            condition("Lung cancer", verificationStatus={"coding": [{"code": "refuted"}]}),
        ),
        film_date=FILM,
        source="FHIR Bundle labs.json",
    )
    got = {(i.kind, i.text, i.days_before, i.flag) for i in read.items}
    assert got == {
        ("lab", "CRP 48 mg/L", 1, "high"),
        ("lab", "Lymphocytes 0.6 10^3/µL", 0, "low"),
        ("lab", "LDH 300 U/L", None, None),  # a month only: the age is not guessed
        ("lab", "Procalcitonin below the detection limit", -1, None),  # after the film
        ("condition", "Kidney transplant recipient", 1779, None),
    }
    assert read.patients == {"p1", "MRN-7"}
    assert all(i.source == "FHIR Bundle labs.json" for i in read.items)


def test_without_a_study_date_the_film_date_comes_from_the_bundles_imaging_study() -> None:
    read = read_bundle(
        bundle(
            {
                "resourceType": "ImagingStudy",
                "status": "available",
                "started": "2024-03-15",
                "subject": {"reference": "Patient/p1"},
            },
            observation("1988-5", "2024-03-13", valueQuantity={"value": 20, "unit": "mg/L"}),
        )
    )
    assert read.film_date == FILM
    assert [i.days_before for i in read.items] == [2]


def test_an_invalid_resource_is_skipped_and_said_the_rest_is_read() -> None:
    broken = {"resourceType": "Condition", "code": {"text": "no subject"}}  # subject is 1..1
    read = read_bundle(
        bundle(
            broken, observation("1988-5", "2024-03-15", valueQuantity={"value": 3, "unit": "mg/L"})
        ),
        film_date=FILM,
    )
    assert [i.text for i in read.items] == ["CRP 3 mg/L"]
    assert len(read.skipped) == 1 and read.skipped[0].startswith("entry 0 (Condition) is not valid")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"not json", "not JSON"),
        (b'{"resourceType": "Patient"}', "resourceType 'Patient'"),
        (b'{"resourceType": "Bundle", "entry": {}}', "a Bundle whose entry is a list"),
    ],
)
def test_a_bundle_that_cannot_be_read_is_a_typed_error(data: bytes, expected: str) -> None:
    with pytest.raises(FhirBundleError, match="expected") as raised:
        read_bundle(data, source="upload.json")
    assert expected in str(raised.value) and "upload.json" in str(raised.value)


# --- a FHIR server on loopback ----------------------------------------------------------------


class FhirStub:
    """A FHIR server that knows one patient, answering searches as R4 searchset Bundles."""

    def __init__(self, *, fail: int | None = None) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.fail = fail
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                stub.requests.append((parts.path, query, self.headers.get("Authorization")))
                status, payload = stub.answer(parts.path, query)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.fail is not None:
            return self.fail, {"resourceType": "OperationOutcome"}
        matches: list[dict[str, Any]] = []
        if path.endswith("/Patient") and query.get("identifier") == ["MRN-7"]:
            matches = [{"resourceType": "Patient", "id": "p1", "identifier": [{"value": "MRN-7"}]}]
        elif path.endswith("/Observation") and query.get("patient") == ["p1"]:
            matches = [
                observation("1988-5", "2024-03-14", valueQuantity={"value": 48, "unit": "mg/L"})
            ]
        elif path.endswith("/Condition") and query.get("patient") == ["p1"]:
            matches = [condition("Neutropenia", recordedDate="2024-03-01")]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
        return 200, {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    def __enter__(self) -> FhirStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fhir"


@pytest.fixture
def fhir() -> Iterator[FhirStub]:
    with FhirStub() as stub:
        yield stub


def test_the_fhir_server_is_asked_by_patient_identifier_then_for_labs_and_conditions(
    fhir: FhirStub,
) -> None:
    fetched = fetch_patient_bundle(fhir.base_url, "MRN-7", token="s3cret")
    paths = [(p.rsplit("/", 1)[-1], q) for p, q, _ in fhir.requests]
    assert paths[0] == ("Patient", {"identifier": ["MRN-7"]})
    assert paths[1][0] == "Observation" and paths[1][1]["category"] == ["laboratory"]
    assert paths[2][0] == "Condition" and paths[2][1]["clinical-status"] == ["active"]
    assert {auth for _, _, auth in fhir.requests} == {"Bearer s3cret"}
    read = read_bundle(fetched, film_date=FILM, source="FHIR server")
    assert {(i.kind, i.text, i.days_before) for i in read.items} == {
        ("lab", "CRP 48 mg/L", 1),
        ("condition", "Neutropenia", 14),
    }


def test_an_unknown_patient_gives_an_empty_bundle(fhir: FhirStub) -> None:
    assert fetch_patient_bundle(fhir.base_url, "nobody")["entry"] == []


def test_a_failing_server_is_a_typed_error_and_only_a_note_for_the_draft() -> None:
    with FhirStub(fail=503) as stub:
        with pytest.raises(ContextFetchError, match="HTTP 503"):
            fetch_patient_bundle(stub.base_url, "MRN-7")
        study = load_study(sample_study_path())
        gathered = gather_context(study, fhir=FhirServer(stub.base_url), patient_key="MRN-7")
    assert gathered.study.context.items == study.context.items
    assert len(gathered.notes) == 1 and "HTTP 503" in gathered.notes[0]


def test_gathering_labels_server_items_and_skips_another_patients_bundle(fhir: FhirStub) -> None:
    study = load_study(sample_study_path())
    other = json.dumps(
        bundle(
            {"resourceType": "Patient", "id": "x", "identifier": [{"value": "MRN-9"}]},
            observation("1988-5", "2024-03-15", valueQuantity={"value": 1, "unit": "mg/L"}),
        )
    ).encode()
    gathered = gather_context(
        study, bundles=[("other.json", other)], fhir=FhirServer(fhir.base_url), patient_key="MRN-7"
    )
    labs = [i for i in gathered.study.context.items if i.kind == "lab"]
    assert [(i.text, i.source) for i in labs] == [("CRP 48 mg/L", f"FHIR server {fhir.base_url}")]
    assert gathered.notes == ("FHIR Bundle other.json not used: it names another patient",)


def test_the_server_and_its_secrets_come_from_the_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    server = FhirServer.from_env(
        {
            "RADLOOP_FHIR_BASE_URL": "https://ehr.example/fhir/",
            "RADLOOP_FHIR_TOKEN_FILE": str(token),
        }
    )
    assert server is not None
    assert (server.base_url, server.token) == ("https://ehr.example/fhir", "from-a-file")
    assert "from-a-file" not in repr(server)
    assert FhirServer.from_env({}) is None
    assert (
        FhirServer.from_env({"RADLOOP_FHIR_BASE_URL": "https://x", "RADLOOP_CONTEXT_FHIR": "0"})
        is None
    )
