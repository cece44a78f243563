"""Put a study's clinical context together: the order's history (already on the study from its
DICOM header), the prior report, and what FHIR Bundles given with the study or a FHIR server
say about the patient.

Nothing here stops a draft: a Bundle that cannot be read, one that names another patient, or a
FHIR server that does not answer becomes a note (kept with the draft's record of its context),
and the draft goes on with what could be read.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from radloop.context.fhir import (
    ContextFetchError,
    FhirBundleError,
    fetch_patient_bundle,
    read_bundle,
)
from radloop.errors import InputError, MissingExtraError
from radloop.study import ContextItem, Study
from radloop.study.loader import is_fhir_bundle

__all__ = [
    "MAX_BUNDLE_BYTES",
    "FhirServer",
    "Gathered",
    "bundles_beside",
    "gather_context",
    "with_items",
]

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""A Bundle file larger than this is not read (it is noted instead)."""


@dataclass(frozen=True)
class FhirServer:
    """A FHIR R4 server to ask for a patient's lab values and active conditions: a bearer
    ``token`` or a ``user`` and ``password``; ``identifier_system`` qualifies the patient's
    identifier (the DICOM Patient ID) where the server holds several."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    identifier_system: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FhirServer | None:
        """The server of ``RADLOOP_FHIR_BASE_URL`` (None when unset, or when
        ``RADLOOP_CONTEXT_FHIR=0``), with ``RADLOOP_FHIR_TOKEN`` or ``RADLOOP_FHIR_USER`` and
        ``RADLOOP_FHIR_PASSWORD`` (each secret also as ``..._FILE``, a file holding it: the same
        variables as the PACS link's), ``RADLOOP_FHIR_PATIENT_SYSTEM`` and
        ``RADLOOP_FHIR_TIMEOUT_S``."""
        url = environ.get("RADLOOP_FHIR_BASE_URL", "").strip()
        if not url or environ.get("RADLOOP_CONTEXT_FHIR", "1").strip() in ("0", "false"):
            return None
        if not url.startswith(("http://", "https://")):
            raise InputError("an http:// or https:// base URL", repr(url),
                             source="RADLOOP_FHIR_BASE_URL")  # fmt: skip
        raw_timeout = environ.get("RADLOOP_FHIR_TIMEOUT_S", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 10.0
        except ValueError:
            timeout = -1.0
        if timeout <= 0:
            raise InputError("a number of seconds greater than 0", repr(raw_timeout),
                             source="RADLOOP_FHIR_TIMEOUT_S")  # fmt: skip
        return cls(
            base_url=url.rstrip("/"),
            token=_secret(environ, "RADLOOP_FHIR_TOKEN"),
            user=environ.get("RADLOOP_FHIR_USER", "").strip() or None,
            password=_secret(environ, "RADLOOP_FHIR_PASSWORD"),
            identifier_system=environ.get("RADLOOP_FHIR_PATIENT_SYSTEM", "").strip() or None,
            timeout_s=timeout,
        )


def _secret(environ: Mapping[str, str], name: str) -> str | None:
    """``NAME``, or the contents of the file ``NAME_FILE``."""
    value = environ.get(name, "").strip()
    path = environ.get(f"{name}_FILE", "").strip()
    if path and not value:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError("a readable file holding the secret", f"{path!r} ({error.strerror})",
                             source=f"{name}_FILE") from None  # fmt: skip
    return value or None


@dataclass(frozen=True)
class Gathered:
    """The study with its context items, and notes on what could not be used."""

    study: Study
    notes: tuple[str, ...] = ()


def with_items(study: Study, items: Iterable[ContextItem]) -> Study:
    """``study`` with ``items`` added to its context (an item already there is not doubled)."""
    seen = {_key(i) for i in study.context.items}
    added = list(study.context.items)
    for item in items:
        if _key(item) not in seen:
            seen.add(_key(item))
            added.append(item)
    return dataclasses.replace(
        study, context=dataclasses.replace(study.context, items=tuple(added))
    )


def _key(item: ContextItem) -> tuple[object, ...]:
    return item.kind, item.code, item.date, item.text


def _zip_of(path: Path) -> tuple[Path, PurePosixPath] | None:
    for parent in path.parents:
        if parent.is_file():
            return parent, PurePosixPath(path.relative_to(parent).as_posix())
    return None


def bundles_beside(files: Iterable[Path]) -> list[tuple[str, bytes]]:
    """The FHIR Bundles (``.json``) in the folders of ``files`` (for a member of a zip, named
    ``<zip>/<member>``, the Bundles in the same folder of the zip), as (name, bytes)."""
    found: dict[str, tuple[str, bytes]] = {}
    for file in files:
        path = Path(file)
        inside = None if path.is_file() else _zip_of(path)
        if inside is None:
            folder = path.parent
            if not folder.is_dir():
                continue
            for candidate in sorted(folder.glob("*.json")):
                key = str(candidate.resolve())
                if key in found or not candidate.is_file():
                    continue
                if candidate.stat().st_size > MAX_BUNDLE_BYTES:
                    continue
                data = candidate.read_bytes()
                if is_fhir_bundle(data):
                    found[key] = (candidate.name, data)
            continue
        archive, member = inside
        with zipfile.ZipFile(archive) as opened:
            for info in opened.infolist():
                name = PurePosixPath(info.filename)
                key = f"{archive.resolve()}!/{name}"
                if name.parent != member.parent or name.suffix.lower() != ".json":
                    continue
                if key in found or info.file_size > MAX_BUNDLE_BYTES:
                    continue
                data = opened.read(info)
                if is_fhir_bundle(data):
                    found[key] = (name.name, data)
    return list(found.values())


def gather_context(
    study: Study,
    *,
    bundles: Sequence[tuple[str, bytes]] = (),
    prior_reports: Sequence[ContextItem] = (),
    fhir: FhirServer | None = None,
    patient_key: str | None = None,
) -> Gathered:
    """``study`` with its prior report(s) and what the Bundles (name, bytes) and the FHIR
    server say about the patient, each item labelled with where it came from."""
    notes: list[str] = []
    items: list[ContextItem] = list(prior_reports)
    film = study.metadata.study_date
    for name, data in bundles:
        try:
            read = read_bundle(data, film_date=film, study_uid=study.study_instance_uid,
                               source=f"FHIR Bundle {name}")  # fmt: skip
        except (FhirBundleError, MissingExtraError) as error:
            notes.append(f"FHIR Bundle {name} not used: {error}")
            continue
        if patient_key and read.patients and patient_key not in read.patients:
            notes.append(f"FHIR Bundle {name} not used: it names another patient")
            continue
        notes += [f"FHIR Bundle {name}: {skipped}" for skipped in read.skipped]
        items.extend(read.items)
    if fhir is not None:
        if not patient_key:
            notes.append("FHIR server not asked: the study has no patient ID")
        else:
            try:
                fetched = fetch_patient_bundle(
                    fhir.base_url, patient_key, identifier_system=fhir.identifier_system,
                    token=fhir.token, timeout_s=fhir.timeout_s,
                    auth=(fhir.user, fhir.password or "") if fhir.user else None,
                )  # fmt: skip
                read = read_bundle(fetched, film_date=film, source=f"FHIR server {fhir.base_url}")
                notes += [f"FHIR server: {skipped}" for skipped in read.skipped]
                items.extend(read.items)
            except (ContextFetchError, FhirBundleError, MissingExtraError) as error:
                notes.append(f"FHIR server not used: {error}")
    return Gathered(with_items(study, items), tuple(notes))
