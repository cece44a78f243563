"""Results to an EHR: the report as a FHIR R4 transaction Bundle POSTed to a FHIR server.

The Bundle holds the DiagnosticReport and one Observation per finding (present, absent and
uncertain alike), linked by ``urn:uuid`` references that the server resolves. Every entry is
a conditional update on a stable identifier (the study's DICOM UID for the report, the study
and the finding for an Observation), so sending the same report twice, or an amended one
later, updates the resources instead of duplicating them. The Bundle is validated with
fhir.resources' R4B models before it leaves, and the server's transaction-response is parsed
the same way.

Settings come from the environment only (never the command line), read by
:func:`fhir_settings_from_env`:

- ``RADLOOP_FHIR_BASE_URL``: the server's base URL (``https://ehr.example.org/fhir``).
- ``RADLOOP_FHIR_TOKEN_FILE``: a file holding a bearer token, or ``RADLOOP_FHIR_TOKEN_ENV``:
  the *name* of the variable that holds it. Neither: no Authorization header.
- ``RADLOOP_FHIR_TIMEOUT_S`` (default 30), ``RADLOOP_FHIR_CA_FILE`` (a CA bundle for a
  private TLS certificate authority), ``RADLOOP_FHIR_PATIENT_SYSTEM`` (the identifier system
  of the DICOM Patient ID at this site, e.g. the hospital's MRN system URI).

Failures are typed: :class:`FhirRejectedError` (4xx: the server refused the Bundle; sending
it again will not help), :class:`FhirServerError` (5xx, or an answer that is not a
transaction-response), :class:`FhirUnavailableError` (no connection, or no answer in time).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from radloop.errors import InputError, RadloopError
from radloop.review.export import (
    ExportContent,
    observation_resources,
    report_resource,
    subject_reference,
)

__all__ = [
    "FhirError",
    "FhirRejectedError",
    "FhirSendResult",
    "FhirServerError",
    "FhirSettings",
    "FhirUnavailableError",
    "fhir_settings_from_env",
    "send_bundle",
    "send_report",
    "transaction_bundle",
]

FHIR_JSON = "application/fhir+json"
_REPORT_SYSTEM = "urn:dicom:uid"
_FINDING_SYSTEM = "urn:radloop:finding-observation"


@dataclass(frozen=True)
class FhirSettings:
    """Where and how to send. ``token`` never appears in a repr, a log or an error."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    ca_file: Path | None = None
    patient_system: str | None = None


def fhir_settings_from_env(env: Mapping[str, str] | None = None) -> FhirSettings:
    """FHIR settings from ``RADLOOP_FHIR_*`` variables (see the module's docstring)."""
    environ = os.environ if env is None else env
    base = environ.get("RADLOOP_FHIR_BASE_URL", "").strip()
    if not base.startswith(("http://", "https://")):
        raise InputError(
            "the FHIR server's base URL (https://ehr.example.org/fhir)",
            repr(base) if base else "nothing",
            source="RADLOOP_FHIR_BASE_URL",
            fix="Set RADLOOP_FHIR_BASE_URL.",
        )
    token: str | None = None
    token_file = environ.get("RADLOOP_FHIR_TOKEN_FILE", "").strip()
    token_env = environ.get("RADLOOP_FHIR_TOKEN_ENV", "").strip()
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError(
                "a readable file holding the FHIR bearer token",
                f"{type(error).__name__}: {error.strerror or error}",
                source="RADLOOP_FHIR_TOKEN_FILE",
            ) from None
        if not token:
            raise InputError(
                "a FHIR bearer token", "an empty file", source="RADLOOP_FHIR_TOKEN_FILE"
            )
    elif token_env:
        token = environ.get(token_env, "").strip()
        if not token:
            raise InputError(
                f"a FHIR bearer token in ${token_env}",
                "an unset or empty variable",
                source="RADLOOP_FHIR_TOKEN_ENV",
            )
    timeout = environ.get("RADLOOP_FHIR_TIMEOUT_S", "").strip()
    try:
        timeout_s = float(timeout) if timeout else 30.0
    except ValueError:
        timeout_s = -1.0
    if timeout_s <= 0:
        raise InputError(
            "a number of seconds greater than 0", repr(timeout), source="RADLOOP_FHIR_TIMEOUT_S"
        )
    ca_file = environ.get("RADLOOP_FHIR_CA_FILE", "").strip()
    return FhirSettings(
        base_url=base.rstrip("/"),
        token=token,
        timeout_s=timeout_s,
        ca_file=Path(ca_file) if ca_file else None,
        patient_system=environ.get("RADLOOP_FHIR_PATIENT_SYSTEM", "").strip() or None,
    )


# --- the Bundle ------------------------------------------------------------------------------


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'radloop:' + ':'.join(parts))}"


def _conditional(resource_type: str, system: str, value: str) -> str:
    return f"{resource_type}?identifier={quote(f'{system}|{value}', safe='')}"


def transaction_bundle(
    content: ExportContent, *, patient_system: str | None = None
) -> dict[str, Any]:
    """The report and its Observations as a validated FHIR R4 transaction Bundle (JSON)."""
    from fhir.resources.R4B.bundle import Bundle

    study = content.study_instance_uid
    subject = subject_reference(content, patient_system)
    effective = content.study_date.isoformat() if content.study_date is not None else None
    issued = report_resource(content)["issued"]
    entries: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    results = []
    for found, observation in zip(content.findings, observation_resources(content), strict=True):
        key = f"{found.code}/{found.side.value if found.side else '-'}"
        seen[key] = seen.get(key, 0) + 1
        value = f"{study}/{key}/{seen[key]}"
        full_url = _urn("observation", value)
        observation = {k: v for k, v in observation.items() if k != "id"}
        observation["identifier"] = [{"system": _FINDING_SYSTEM, "value": value}]
        observation["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                        "display": "Imaging",
                    }
                ]
            }
        ]
        observation["issued"] = issued
        if effective is not None:
            observation["effectiveDateTime"] = effective
        if subject is not None:
            observation["subject"] = subject
        entries.append(
            {
                "fullUrl": full_url,
                "resource": observation,
                "request": {
                    "method": "PUT",
                    "url": _conditional("Observation", _FINDING_SYSTEM, value),
                },
            }
        )
        results.append({"reference": full_url})
    report = report_resource(content, patient_system=patient_system)
    report.pop("id", None)
    if results:
        report["result"] = results
    report_value = f"urn:oid:{study}"
    entries.insert(
        0,
        {
            "fullUrl": _urn("report", report_value),
            "resource": report,
            "request": {
                "method": "PUT",
                "url": _conditional("DiagnosticReport", _REPORT_SYSTEM, report_value),
            },
        },
    )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)


# --- sending ---------------------------------------------------------------------------------


class FhirError(RadloopError):
    """Sending to the FHIR server failed. ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        self.status = status
        self.url = url
        super().__init__(message)


class FhirRejectedError(FhirError):
    """The server refused the Bundle (4xx): fix the data or the settings, not a retry."""


class FhirServerError(FhirError):
    """The server failed (5xx), or answered with something other than a transaction-response."""


class FhirUnavailableError(FhirError):
    """No connection to the server, or no answer within the timeout."""


@dataclass(frozen=True)
class FhirSendResult:
    """What the server answered: the HTTP status and one ``response`` per entry."""

    status: int
    entries: list[dict[str, Any]]

    @property
    def locations(self) -> list[str]:
        return [str(e.get("location", "")) for e in self.entries if e.get("location")]


def _outcome(body: str) -> str:
    """The diagnostics of an OperationOutcome body, or the start of whatever came back."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        issues = [
            str(i.get("diagnostics") or i.get("details", {}).get("text") or i.get("code"))
            for i in data.get("issue", [])
            if isinstance(i, dict)
        ]
        return "; ".join(issues)[:500] or "an OperationOutcome without diagnostics"
    return body.strip()[:300]


def send_bundle(
    bundle: Mapping[str, Any], settings: FhirSettings, *, client: Any | None = None
) -> FhirSendResult:
    """POST a transaction Bundle to the server's base URL; the parsed transaction-response."""
    import httpx
    from fhir.resources.R4B.bundle import Bundle

    url = settings.base_url + "/"
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    body = json.dumps(bundle).encode("utf-8")
    own = client is None
    http = client or httpx.Client(
        timeout=settings.timeout_s,
        verify=str(settings.ca_file) if settings.ca_file else True,
        follow_redirects=False,
    )
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise FhirUnavailableError(
            f"{url}: no answer from the FHIR server within {settings.timeout_s:g} s", url=url
        ) from None
    except httpx.HTTPError as error:
        raise FhirUnavailableError(
            f"{url}: cannot reach the FHIR server ({type(error).__name__}: {error})", url=url
        ) from None
    finally:
        if own:
            http.close()
    status = response.status_code
    if 400 <= status < 500:
        raise FhirRejectedError(
            f"{url}: the FHIR server refused the Bundle (HTTP {status}): {_outcome(response.text)}",
            status=status,
            url=url,
        )
    if status >= 500 or status < 200 or status >= 300:
        raise FhirServerError(
            f"{url}: the FHIR server failed (HTTP {status}): {_outcome(response.text)}",
            status=status,
            url=url,
        )
    try:
        answer = Bundle.model_validate_json(response.content)
    except Exception as error:
        raise FhirServerError(
            f"{url}: expected a FHIR transaction-response Bundle, got something else "
            f"({type(error).__name__}): {response.text.strip()[:200]}",
            status=status,
            url=url,
        ) from None
    if answer.type != "transaction-response":
        raise FhirServerError(
            f"{url}: expected a transaction-response Bundle, got a {answer.type!r} Bundle",
            status=status,
            url=url,
        )
    entries = [
        (e.response.model_dump(mode="json", exclude_none=True) if e.response else {})
        for e in (answer.entry or [])
    ]
    failed = [e for e in entries if not str(e.get("status", "")).strip().startswith("2")]
    if len(entries) != len(bundle.get("entry", [])) or failed:
        raise FhirServerError(
            f"{url}: the transaction-response does not confirm every entry "
            f"({len(entries)} answers to {len(bundle.get('entry', []))} entries, "
            f"{len(failed)} not 2xx)",
            status=status,
            url=url,
        )
    return FhirSendResult(status=status, entries=entries)


def send_report(
    content: ExportContent, settings: FhirSettings, *, client: Any | None = None
) -> FhirSendResult:
    """Build the report's transaction Bundle and send it (see :func:`send_bundle`)."""
    bundle = transaction_bundle(content, patient_system=settings.patient_system)
    return send_bundle(bundle, settings, client=client)
