"""radloop as a DICOMweb client of the PACS (the maintained ``dicomweb-client`` package).

- :func:`search_series`: QIDO-RS search for series by study date, modality and body part
  (body part is a series attribute, so the search is at the series level; a study date at
  that level matches the series' study, PS3.18 8.3.4).
- :func:`retrieve_series`: WADO-RS retrieve of one series into a folder, one Part 10 file per
  instance, in the transfer syntax the PACS stored (``transfer-syntax=*``: no transcoding). The
  response is read as a stream and cut off, as a :class:`FileTooLargeError`, once it passes
  the bytes the ingestion limits allow for the study, so an outsized study is never held in
  memory.
- :func:`store_instance`: STOW-RS of one DICOM instance (a report's SR).
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.errors import CorruptFileError, FileTooLargeError, InputError, RadloopError
from radloop.pacs.config import PacsConfig

__all__ = [
    "PacsWeb",
    "SeriesHit",
    "make_client",
    "retrieve_series",
    "search_series",
    "store_instance",
]

_FRAMING = 64 * 1024
"""Bytes a capped response may hold beyond its budget: multipart headers and boundaries (the
ingestion checks the instances themselves exactly)."""

_AS_STORED = (("application/dicom", "*"),)
"""WADO-RS media type: DICOM Part 10 in the transfer syntax the PACS holds (no transcoding)."""


class PacsError(RadloopError):
    """The PACS did not answer a DICOMweb request, answered it with an error, or refused an
    instance: worth trying again later (unlike an :class:`InputError`, which is about the
    data)."""


@dataclass(frozen=True)
class SeriesHit:
    """One series a QIDO-RS search found."""

    study_instance_uid: str
    series_instance_uid: str
    modality: str
    body_part: str
    study_date: str
    instances: int | None


def _session(config: PacsConfig) -> Any:
    """A requests session with the configured credentials and CA bundle, whose streamed
    responses can be capped (``session.budget`` bytes of content, plus :data:`_FRAMING` for
    the multipart headers and boundaries; None: no cap)."""
    import requests

    class CappedSession(requests.Session):
        budget: int | None = None

        def send(self, request: Any, **kwargs: Any) -> Any:
            response = super().send(request, **kwargs)
            limit = self.budget
            if limit is None or not kwargs.get("stream"):
                return response
            budget = limit + _FRAMING
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > budget:
                response.close()
                raise _too_large(limit, f"a response of {int(declared):,} bytes", request.url)
            chunks = response.iter_content

            def capped(chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
                read = 0
                for chunk in chunks(chunk_size, decode_unicode=decode_unicode):  # type: ignore[call-overload]
                    read += len(chunk)
                    if read > budget:
                        response.close()
                        raise _too_large(limit, "a longer response", request.url)
                    yield chunk

            response.iter_content = capped  # type: ignore[method-assign]
            return response

    session = CappedSession()
    credentials = config.dicomweb_credentials
    if credentials.token:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.user:
        session.auth = (credentials.user, credentials.password or "")
    if config.ca_bundle is not None:
        session.verify = str(config.ca_bundle)
    return session


def _too_large(budget: int, received: str, url: str | None) -> FileTooLargeError:
    return FileTooLargeError(
        f"a study of at most {budget:,} bytes (the ingestion limit)",
        received,
        source=f"WADO-RS {url or ''}".strip(),
    )


@dataclass(frozen=True)
class PacsWeb:
    """A ``dicomweb_client.DICOMwebClient`` for the PACS and the session it sends through."""

    client: Any
    session: Any


def make_client(config: PacsConfig) -> PacsWeb:
    """A DICOMweb client for the configured PACS."""
    from dicomweb_client import DICOMwebClient

    session = _session(config)
    client = DICOMwebClient(config.require_dicomweb(), session=session, timeout=config.timeout_s)
    # One attempt a request: the client's own retries (five, 31 s of back-off, on any error,
    # ours included) would hold a poll or a sender; polls and the outbox retry on their own.
    client.set_http_retry_params(retry=False)
    return PacsWeb(client, session)


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])


def search_series(web: PacsWeb, config: PacsConfig, since: datetime.date) -> list[SeriesHit]:
    """Series of the configured modalities and body parts in studies dated ``since`` or
    later (one QIDO-RS search per modality and body part, every page)."""
    fields = [
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "BodyPartExamined",
        "StudyDate",
        "NumberOfSeriesRelatedInstances",
    ]
    hits: dict[str, SeriesHit] = {}
    for modality in config.modalities:
        for body_part in config.body_parts or ("",):
            filters = {"Modality": modality, "StudyDate": f"{since:%Y%m%d}-"}
            if body_part:
                filters["BodyPartExamined"] = body_part
            try:
                found = web.client.search_for_series(
                    search_filters=filters, fields=fields, get_remaining=True
                )
            except Exception as error:  # requests' errors: the PACS is down or refused
                raise _answer_error("QIDO-RS search for series", error) from error
            for item in found:
                count = _value(item, "00201209")
                hit = SeriesHit(
                    study_instance_uid=_value(item, "0020000D"),
                    series_instance_uid=_value(item, "0020000E"),
                    modality=_value(item, "00080060") or modality,
                    body_part=_value(item, "00180015") or body_part,
                    study_date=_value(item, "00080020"),
                    instances=int(count) if count.isdigit() else None,
                )
                if hit.study_instance_uid and hit.series_instance_uid:
                    hits[hit.series_instance_uid] = hit
    return list(hits.values())


def _answer_error(what: str, error: Exception) -> PacsError:
    """A requests error (an HTTP error status, a refused connection, a timeout) as a
    :class:`PacsError` that names the request."""
    response = getattr(error, "response", None)
    if response is not None:
        url = str(getattr(response, "url", "") or "")[:200]
        return PacsError(f"{what}: HTTP {response.status_code} {response.reason or ''} ({url})")
    return PacsError(f"{what}: {type(error).__name__}: {error}"[:400])


def retrieve_series(
    web: PacsWeb, study_uid: str, series_uid: str, folder: Path, *, budget: int
) -> tuple[int, int]:
    """Retrieve a series (WADO-RS) into ``folder``; (instances, bytes written).

    At most ``budget`` bytes are read (:class:`FileTooLargeError` past it); an instance that
    does not parse as DICOM is a :class:`CorruptFileError`.
    """
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    count = written = 0
    source = f"WADO-RS studies/{study_uid}/series/{series_uid}"
    web.session.budget = budget
    try:
        instances = web.client.iter_series(study_uid, series_uid, media_types=_AS_STORED)
        while True:
            try:
                ds = next(instances)
            except StopIteration:
                break
            except InputError:  # over the budget
                raise
            except Exception as error:
                if getattr(error, "response", None) is not None or _is_network(error):
                    raise _answer_error("WADO-RS retrieve", error) from error
                raise CorruptFileError(
                    "DICOM Part 10 instances",
                    f"a part that does not parse ({type(error).__name__}: {error})"[:200],
                    source=source,
                ) from None
            buffer = io.BytesIO()
            pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
            (folder / f"{series_uid[-24:]}-{count:05d}.dcm").write_bytes(buffer.getvalue())
            count += 1
            written += buffer.tell()
    finally:
        web.session.budget = None
    return count, written


def _is_network(error: Exception) -> bool:
    import requests

    return isinstance(error, (requests.RequestException, OSError))


def store_instance(web: PacsWeb, data: bytes) -> str:
    """STOW-RS of one Part 10 instance; its SOP Instance UID once the PACS has stored it."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    try:
        answer = web.client.store_instances([ds])
    except Exception as error:
        raise _answer_error("STOW-RS store", error) from error
    failed = getattr(answer, "FailedSOPSequence", None) or []
    if failed:
        reason = getattr(failed[0], "FailureReason", None)
        why = f" (Failure Reason {reason:04X}H)" if reason is not None else ""
        raise PacsError(f"STOW-RS store: the PACS refused the instance{why}")
    return str(ds.SOPInstanceUID)
