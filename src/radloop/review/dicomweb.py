"""DICOMweb STOW-RS (PS3.18 10.5): ``POST /dicomweb/studies`` with ``multipart/related``.

Each part is one DICOM Part 10 instance (``type="application/dicom"``). The body is read as it
arrives by a streaming multipart parser (the maintained ``multipart`` package) and each part is
written straight to a staging folder on disk, never held whole in memory; a part larger than
the ingestion limit's file size, or more parts than an archive may hold, stops the upload with
a typed error. The staged instances are then checked and ingested together like an upload
(:func:`radloop.review.ingest.ingest_path`); the answer is the PS3.18 store response in
``application/dicom+json``: stored instances in the Referenced SOP Sequence (0008,1199), the
ones not stored in the Failed SOP Sequence (0008,1198) with their Failure Reason (0008,1197).
The HTTP status follows PS3.18 10.5.3: 200 when every instance was stored, 202 when some
were, 409 Conflict when none was.

An instance is not stored when its study is already on the worklist: a re-sent instance fails
with 0111H Duplicate SOP Instance (PS3.7 C.4.2), a new instance of a stored study with 0110H
Processing failure (studies are read, drafted and signed off whole).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from radloop.errors import FileTooLargeError, InputError
from radloop.review.db import ImageRow
from radloop.review.deps import Ctx, Ingester
from radloop.review.ingest import ingest_path, staging_dir
from radloop.study import IngestLimits

__all__ = ["router", "stream_multipart"]

router = APIRouter(tags=["dicomweb"])
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
_DICOM_JSON = "application/dicom+json"
# Failure Reason (0008,1197) values, DIMSE status codes of PS3.7 C.4.2.
DUPLICATE_SOP_INSTANCE = 0x0111
PROCESSING_FAILURE = 0x0110
_SOURCE = "STOW-RS"


def _boundary(content_type: str) -> str:
    """The boundary of a ``multipart/related`` Content-Type (RFC 2387); InputError otherwise."""
    if not content_type.lower().startswith("multipart/related"):
        raise InputError(
            'Content-Type multipart/related; type="application/dicom"',
            content_type[:100] or "none",
            source=_SOURCE,
        )
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise InputError("a multipart boundary", "none", source=_SOURCE)
    return match.group(1) or match.group(2)


def _parser(boundary: str, limits: IngestLimits) -> Any:
    """A push parser for ``multipart/related``: the ``multipart`` package's parser checks for
    ``form-data`` parts, which a DICOM body does not have; its documented hook for other
    multipart types builds the part without that check."""
    from multipart import MultipartSegment, PushMultipartParser  # type: ignore[import-untyped]

    class RelatedParser(PushMultipartParser):  # type: ignore[misc]
        def _create_segment(self, headerlist: list[tuple[str, str]]) -> Any:
            return MultipartSegment(headerlist)

    return RelatedParser(
        boundary,
        max_segment_size=limits.max_file_bytes,
        max_segment_count=limits.max_archive_members,
    )


async def stream_multipart(
    chunks: AsyncIterator[bytes], content_type: str, folder: Path, limits: IngestLimits
) -> list[Path]:
    """Write each part of a ``multipart/related`` body to ``folder`` as it arrives
    (``instance-00000.dcm``, …); the files, in order. Parts must be ``application/dicom``.

    A part over ``limits.max_file_bytes`` is a :class:`FileTooLargeError`, a malformed body
    or more than ``limits.max_archive_members`` parts an :class:`InputError`; what was
    written stays in ``folder`` for the caller to remove.
    """
    from multipart import MultipartError, MultipartSegment, ParserLimitReached

    parser = _parser(_boundary(content_type), limits)
    files: list[Path] = []
    out: BinaryIO | None = None
    try:
        async for chunk in chunks:
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    _check_part_type(event, len(files))
                    files.append(folder / f"instance-{len(files):05d}.dcm")
                    out = files[-1].open("wb")
                elif event is None:
                    assert out is not None
                    out.close()
                    out = None
                else:
                    assert out is not None
                    out.write(event)
        for _ in parser.parse(b""):  # the end of the body: the parser checks it is complete
            pass
    except ParserLimitReached as error:
        if "segment size" in str(error).lower():
            raise FileTooLargeError(
                f"DICOM instances of at most {limits.max_file_bytes:,} bytes",
                f"a larger part ({len(files)} parts read)",
                source=_SOURCE,
            ) from None
        raise InputError(
            f"at most {limits.max_archive_members:,} instances in one request",
            "more",
            source=_SOURCE,
            fix="Send the study in several requests.",
        ) from None
    except MultipartError as error:
        raise InputError(
            "a multipart/related body (RFC 2387)", str(error)[:200], source=_SOURCE
        ) from None
    finally:
        if out is not None:
            out.close()
    if not files:
        raise InputError("at least one DICOM instance", "an empty multipart body", source=_SOURCE)
    return files


def _check_part_type(part: Any, index: int) -> None:
    kind = part.content_type
    if kind is not None and kind != "application/dicom":
        raise InputError(
            'parts of type "application/dicom" (DICOM Part 10 instances)',
            f"{kind!r} in part {index + 1}",
            source=_SOURCE,
        )


def _uid_element(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


def _sequence(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


def _stored_instances(ctx: Ctx, sop_uids: list[str]) -> set[str]:
    with ctx.store.sessions() as session:
        return set(
            session.execute(
                select(ImageRow.sop_instance_uid).where(ImageRow.sop_instance_uid.in_(sop_uids))
            ).scalars()
        )


def _headers(files: list[Path]) -> list[tuple[str, str, str]]:
    """(SOP Class, SOP Instance, Study Instance) of each file that reads as DICOM."""
    import pydicom

    headers = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            headers.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)))
        except Exception:  # ingest names the problem precisely
            pass
    return headers


@router.post("/studies", status_code=200)
async def stow(request: Request, ctx: Ctx, user: Ingester) -> JSONResponse:
    """Store DICOM instances (STOW-RS); new studies go to drafting and the worklist."""
    content_type = request.headers.get("content-type", "")
    _boundary(content_type)  # a wrong request is refused before anything is staged
    staging = staging_dir(ctx.store)
    try:
        files = await stream_multipart(
            request.stream(), content_type, staging, ctx.store.settings.limits
        )
        headers = await run_in_threadpool(_headers, files)
        # Looked up before ingest: afterwards the new instances are stored too.
        already = await run_in_threadpool(
            _stored_instances, ctx, [sop[:128] for _, sop, _ in headers]
        )
        result = await run_in_threadpool(ingest_path, ctx.store, staging, move=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    existing = {uid[:128] for uid in result.existing}
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for sop_class, sop_instance, study in headers:
        item = {"00081150": _uid_element(sop_class), "00081155": _uid_element(sop_instance)}
        if study[:128] not in existing:
            stored.append(item)
            continue
        reason = DUPLICATE_SOP_INSTANCE if sop_instance[:128] in already else PROCESSING_FAILURE
        failed.append(item | {"00081197": {"vr": "US", "Value": [reason]}})
    ctx.audit(user.username, "ingest", "stow-rs", result.to_dict() | {"instances": len(files)})
    if ctx.worker is not None and result.added:
        ctx.worker.wake.set()
    body: dict[str, Any] = {"00081199": _sequence(stored)}
    if failed:
        body["00081198"] = _sequence(failed)
    status = 200 if not failed else 202 if stored else 409
    return JSONResponse(body, status_code=status, media_type=_DICOM_JSON)
