"""The report to a FHIR server as a transaction Bundle, against a real HTTP server on loopback.

The server is a small ``http.server`` in a thread: it records what arrives and answers a
transaction-response Bundle, or whatever a test tells it to (4xx/5xx, a slow answer, junk).
"""

from __future__ import annotations

import base64
import datetime
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from radloop.errors import InputError
from radloop.report import Finding, Presence, ReportStatus
from radloop.review.export import Addendum, ExportContent
from radloop.review.fhir_out import (
    FhirRejectedError,
    FhirServerError,
    FhirSettings,
    FhirUnavailableError,
    fhir_settings_from_env,
    send_report,
    transaction_bundle,
)
from radloop.vocabulary import Side, Zone

SIGNED_AT = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
Reply = Callable[[dict[str, Any]], tuple[int, bytes, float]]


def _transaction_response(bundle: dict[str, Any]) -> tuple[int, bytes, float]:
    entries = [
        {
            "response": {
                "status": "201 Created",
                "location": f"{e['resource']['resourceType']}/{i + 1}/_history/1",
            }
        }
        for i, e in enumerate(bundle.get("entry", []))
    ]
    body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return 200, json.dumps(body).encode(), 0.0


class FhirServer:
    """A loopback HTTP server that records POSTs and answers with ``reply``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: Reply = _transaction_response
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = json.loads(raw)
                server.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, payload, delay = server.reply(body)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FhirServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def fhir_server() -> Iterator[FhirServer]:
    with FhirServer() as server:
        yield server


def _content(status: ReportStatus = ReportStatus.FINAL, **changes: Any) -> ExportContent:
    values: dict[str, Any] = {
        "study_id": "s1",
        "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
        "status": status,
        "text": "FINDINGS:\nSmall left pleural effusion. No pneumothorax.\n\n"
        "IMPRESSION:\nSmall left pleural effusion.",
        "findings": (
            Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
            Finding("pneumothorax", presence=Presence.ABSENT),
        ),
        "study_date": datetime.date(2024, 5, 1),
        "issued": SIGNED_AT,
        "signed_by": "Dr Ann Reader",
        "institution": "Test Hospital",
        "signed_at": SIGNED_AT,
        "patient_id": "PAT-1",
        "patient_name": "DOE^JANE",
        "accession_number": "ACC-1",
    }
    values.update(changes)
    return ExportContent(**values)


def _parse(bundle: dict[str, Any]) -> Any:
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(bundle)


def test_transaction_bundle_is_valid_fhir_with_every_finding(tmp_path: Path) -> None:
    bundle = _parse(transaction_bundle(_content(), patient_system="urn:oid:1.2.3.4"))
    assert bundle.type == "transaction"
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds == ["DiagnosticReport", "Observation", "Observation"]
    report = bundle.entry[0].resource
    assert report.status == "final"
    assert report.identifier[0].value == "urn:oid:1.2.826.0.1.3680043.8.498.1"
    assert report.subject.identifier.value == "PAT-1"
    assert report.subject.identifier.system == "urn:oid:1.2.3.4"
    assert report.basedOn[0].identifier.value == "ACC-1"
    assert report.conclusion == "Small left pleural effusion."
    full_urls = [e.fullUrl for e in bundle.entry]
    assert [r.reference for r in report.result] == full_urls[1:]
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    presence = [e.resource.valueCodeableConcept.coding[0].display for e in bundle.entry[1:]]
    assert presence == ["Present", "Absent"]  # the denied finding is sent too
    # Conditional updates on stable identifiers: a resend updates, never duplicates.
    requests = [(e.request.method, e.request.url) for e in bundle.entry]
    assert requests[0] == (
        "PUT",
        "DiagnosticReport?identifier=urn%3Adicom%3Auid%7Curn%3Aoid%3A1.2.826.0.1.3680043.8.498.1",
    )
    assert all(
        method == "PUT" and url.startswith("Observation?identifier=")
        for method, url in requests[1:]
    )
    assert transaction_bundle(_content()) == transaction_bundle(_content())


def test_statuses_follow_the_report(tmp_path: Path) -> None:
    draft = _parse(transaction_bundle(_content(ReportStatus.DRAFT, signed_by=None)))
    assert draft.entry[0].resource.status == "preliminary"
    assert {e.resource.status for e in draft.entry[1:]} == {"preliminary"}
    amended = _content(
        ReportStatus.AMENDED,
        addenda=("Moderate, not small.",),
        amendments=(Addendum("Moderate, not small.", "Bob Second", SIGNED_AT),),
    )
    raw = transaction_bundle(amended)
    bundle = _parse(raw)
    assert bundle.entry[0].resource.status == "amended"
    assert {e.resource.status for e in bundle.entry[1:]} == {"amended"}
    form = raw["entry"][0]["resource"]["presentedForm"][0]
    text = base64.b64decode(form["data"]).decode()
    assert "ADDENDUM:\nModerate, not small." in text


def test_send_posts_the_bundle_with_the_token(fhir_server: FhirServer) -> None:
    settings = FhirSettings(base_url=fhir_server.url, token="s3cret-token", timeout_s=5)
    answer = send_report(_content(), settings)
    assert answer.status == 200
    assert answer.locations == [
        "DiagnosticReport/1/_history/1",
        "Observation/2/_history/1",
        "Observation/3/_history/1",
    ]
    [request] = fhir_server.received
    assert request["path"] == "/fhir/"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == "Bearer s3cret-token"
    assert headers["content-type"] == "application/fhir+json"
    assert _parse(request["body"]).type == "transaction"
    assert "s3cret-token" not in repr(settings)


def test_a_refused_bundle_is_a_rejected_error_with_the_diagnostics(fhir_server: FhirServer) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Unknown patient"}],
    }
    fhir_server.reply = lambda _body: (422, json.dumps(outcome).encode(), 0.0)
    with pytest.raises(FhirRejectedError, match=r"HTTP 422.*Unknown patient") as caught:
        send_report(_content(), FhirSettings(base_url=fhir_server.url, timeout_s=5))
    assert caught.value.status == 422


def test_a_failing_server_is_a_server_error(fhir_server: FhirServer) -> None:
    settings = FhirSettings(base_url=fhir_server.url, timeout_s=5)
    fhir_server.reply = lambda _body: (503, b"maintenance", 0.0)
    with pytest.raises(FhirServerError, match=r"HTTP 503.*maintenance"):
        send_report(_content(), settings)
    fhir_server.reply = lambda _body: (200, b"<html>not FHIR</html>", 0.0)
    with pytest.raises(FhirServerError, match="transaction-response"):
        send_report(_content(), settings)

    def one_failed(body: dict[str, Any]) -> tuple[int, bytes, float]:
        status, payload, delay = _transaction_response(body)
        answer = json.loads(payload)
        answer["entry"][1]["response"]["status"] = "400 Bad Request"
        return status, json.dumps(answer).encode(), delay

    fhir_server.reply = one_failed
    with pytest.raises(FhirServerError, match="1 not 2xx"):
        send_report(_content(), settings)


def test_no_answer_in_time_or_no_server_is_unavailable(fhir_server: FhirServer) -> None:
    fhir_server.reply = lambda body: (*_transaction_response(body)[:2], 2.0)
    with pytest.raises(FhirUnavailableError, match=r"within 0\.3 s"):
        send_report(_content(), FhirSettings(base_url=fhir_server.url, timeout_s=0.3))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FhirUnavailableError, match="cannot reach"):
        send_report(_content(), FhirSettings(base_url=f"http://127.0.0.1:{port}/fhir"))


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="RADLOOP_FHIR_BASE_URL"):
        fhir_settings_from_env({})
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    settings = fhir_settings_from_env(
        {
            "RADLOOP_FHIR_BASE_URL": "https://ehr.example.org/fhir/",
            "RADLOOP_FHIR_TOKEN_FILE": str(token_file),
            "RADLOOP_FHIR_TIMEOUT_S": "12.5",
            "RADLOOP_FHIR_PATIENT_SYSTEM": "urn:oid:1.2.3",
        }
    )
    assert settings.base_url == "https://ehr.example.org/fhir"
    assert settings.token == "from-a-file"
    assert (settings.timeout_s, settings.patient_system) == (12.5, "urn:oid:1.2.3")
    by_name = fhir_settings_from_env(
        {
            "RADLOOP_FHIR_BASE_URL": "http://localhost/fhir",
            "RADLOOP_FHIR_TOKEN_ENV": "EHR_TOKEN",
            "EHR_TOKEN": "from-a-variable",
        }
    )
    assert by_name.token == "from-a-variable"
    with pytest.raises(InputError, match="EHR_TOKEN"):
        fhir_settings_from_env(
            {
                "RADLOOP_FHIR_BASE_URL": "http://localhost/fhir",
                "RADLOOP_FHIR_TOKEN_ENV": "EHR_TOKEN",
            }
        )
    with pytest.raises(InputError, match="RADLOOP_FHIR_TOKEN_FILE"):
        fhir_settings_from_env(
            {
                "RADLOOP_FHIR_BASE_URL": "http://localhost/fhir",
                "RADLOOP_FHIR_TOKEN_FILE": str(tmp_path / "missing"),
            }
        )
    with pytest.raises(InputError, match="RADLOOP_FHIR_TIMEOUT_S"):
        fhir_settings_from_env(
            {"RADLOOP_FHIR_BASE_URL": "http://localhost/fhir", "RADLOOP_FHIR_TIMEOUT_S": "soon"}
        )
