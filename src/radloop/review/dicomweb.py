"""DICOMweb STOW-RS (PS3.18 10.5): ``POST /dicomweb/studies`` with ``multipart/related``.

Each part is one DICOM Part 10 instance (``type="application/dicom"``). The instances are
checked and ingested together like an upload; the answer is the PS3.18 store response in
``application/dicom+json``: stored instances in the Referenced SOP Sequence (0008,1199), the
ones not stored in the Failed SOP Sequence (0008,1198) with their Failure Reason (0008,1197).
The HTTP status follows PS3.18 10.5.3: 200 when every instance was stored, 202 when some
were, 409 Conflict when none was.

An instance is not stored when its study is already on the worklist: a re-sent instance fails
with 0111H Duplicate SOP Instance (PS3.7 C.4.2), a new instance of a stored study with 0110H
Processing failure (studies are read, drafted and signed off whole).
"""

from __future__ import annotations

import io
import re
import shutil
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from radloop.errors import InputError
from radloop.review.db import ImageRow
from radloop.review.deps import Ctx, Ingester
from radloop.review.ingest import ingest_path, staging_dir

__all__ = ["router", "split_multipart"]

router = APIRouter(tags=["dicomweb"])
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DICOM_JSON = "application/dicom+json"
# Failure Reason (0008,1197) values, DIMSE status codes of PS3.7 C.4.2.
DUPLICATE_SOP_INSTANCE = 0x0111
PROCESSING_FAILURE = 0x0110


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The payloads of a ``multipart/related`` body (RFC 2387), headers stripped."""
    if not content_type.lower().startswith("multipart/related"):
        raise InputError(
            'Content-Type multipart/related; type="application/dicom"',
            content_type[:100] or "none",
            source="STOW-RS",
        )
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise InputError("a multipart boundary", "none", source="STOW-RS")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        parts.append(payload.removesuffix(b"\r\n"))
    if not parts:
        raise InputError("at least one DICOM instance", "an empty multipart body", source="STOW-RS")
    return parts


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


@router.post("/studies", status_code=200)
async def stow(request: Request, ctx: Ctx, user: Ingester) -> JSONResponse:
    """Store DICOM instances (STOW-RS); new studies go to drafting and the worklist."""
    import pydicom

    parts = split_multipart(await request.body(), request.headers.get("content-type", ""))
    staging = staging_dir(ctx.store)
    try:
        headers: list[tuple[str, str, str]] = []  # (SOP Class, SOP Instance, Study Instance)
        for i, part in enumerate(parts):
            (staging / f"instance-{i:05d}.dcm").write_bytes(part)
            try:
                ds = pydicom.dcmread(io.BytesIO(part), stop_before_pixels=True)
                headers.append(
                    (str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID))
                )
            except Exception:  # ingest below names the problem precisely
                pass
        # Looked up before ingest: afterwards the new instances are stored too.
        already = _stored_instances(ctx, [sop[:128] for _, sop, _ in headers])
        result = ingest_path(ctx.store, staging, move=True)
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
    ctx.audit(user.username, "ingest", "stow-rs", result.to_dict() | {"instances": len(parts)})
    if ctx.worker is not None and result.added:
        ctx.worker.wake.set()
    body: dict[str, Any] = {"00081199": _sequence(stored)}
    if failed:
        body["00081198"] = _sequence(failed)
    status = 200 if not failed else 202 if stored else 409
    return JSONResponse(body, status_code=status, media_type=_DICOM_JSON)
