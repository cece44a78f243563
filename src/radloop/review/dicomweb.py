"""DICOMweb STOW-RS (PS3.18 10.5): ``POST /dicomweb/studies`` with ``multipart/related``.

Each part is one DICOM Part 10 instance (``type="application/dicom"``). The instances are
checked and ingested together like an upload; the answer is the PS3.18 store response in
``application/dicom+json`` listing the stored instances.
"""

from __future__ import annotations

import io
import re
import shutil
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from radloop.errors import InputError
from radloop.review.deps import Ctx, Ingester
from radloop.review.ingest import ingest_path, staging_dir

__all__ = ["router", "split_multipart"]

router = APIRouter(tags=["dicomweb"])
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DICOM_JSON = "application/dicom+json"


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


@router.post("/studies", status_code=200)
async def stow(request: Request, ctx: Ctx, user: Ingester) -> JSONResponse:
    """Store DICOM instances (STOW-RS); new studies go to drafting and the worklist."""
    import pydicom

    parts = split_multipart(await request.body(), request.headers.get("content-type", ""))
    staging = staging_dir(ctx.store)
    try:
        referenced = []
        for i, part in enumerate(parts):
            (staging / f"instance-{i:05d}.dcm").write_bytes(part)
            try:
                ds = pydicom.dcmread(io.BytesIO(part), stop_before_pixels=True)
                referenced.append(
                    {
                        "00081150": _uid_element(str(ds.SOPClassUID)),
                        "00081155": _uid_element(str(ds.SOPInstanceUID)),
                    }
                )
            except Exception:  # ingest below names the problem precisely
                pass
        result = ingest_path(ctx.store, staging, move=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    ctx.audit(user.username, "ingest", "stow-rs", result.to_dict() | {"instances": len(parts)})
    if ctx.worker is not None:
        ctx.worker.wake.set()
    return JSONResponse({"00081199": {"vr": "SQ", "Value": referenced}}, media_type=_DICOM_JSON)
