"""The JSON API (``/api``; OpenAPI at ``/openapi.json`` for signed-in users).

Reading needs any role; deciding, editing and signing need ``radiologist``; uploads need
``radiologist`` or ``admin``; the audit trail needs ``auditor`` or ``admin``. Every study view,
image and heatmap view, question, edit, sign-off and export is written to the audit trail
(refusals too: see :mod:`~radloop.review.handlers`).

Questions to the assistant run in the ask pool (:mod:`~radloop.review.askpool`), never on the
request threads: a hung model server answers 504 after ``ask_timeout_s`` and cannot stall
the pages.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from radloop.review import worksheet
from radloop.review.accounts import create_user
from radloop.review.askpool import AskRefusedError
from radloop.review.audit import report_hash
from radloop.review.db import AuditEntry, Draft, ImageRow
from radloop.review.deps import (
    Admin,
    AppContext,
    Auditor,
    Ctx,
    CurrentUser,
    Ingester,
    Radiologist,
    RefusedError,
)
from radloop.review.ingest import IngestResult, ingest_path, safe_name, staging_dir
from radloop.review.queries import (
    STATUS_FILTERS,
    WorklistFilter,
    export_content,
    study_detail,
    worklist,
)

__all__ = ["router"]

log = logging.getLogger("radloop.review.api")
_worker_lock = threading.Lock()
router = APIRouter(tags=["workstation"])
StatusFilter = Literal["to_review", "ready", "signed", "failed", "all"]
assert set(StatusFilter.__args__) == set(STATUS_FILTERS)  # type: ignore[attr-defined]


def _check_id(study_id: str) -> str:
    if not study_id or len(study_id) > 32 or not all(c in "0123456789abcdef" for c in study_id):
        raise HTTPException(404, f"no such study: {study_id[:40]!r}")
    return study_id


class DecisionIn(BaseModel):
    decision: Literal["accepted", "rejected", "edited"]
    sentence: str | None = Field(default=None, max_length=500)
    version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=500)


class TextIn(BaseModel):
    text: str | None = Field(default=None, max_length=20_000)
    version: int | None = Field(default=None, ge=0, le=2**31 - 1)


class SignIn(BaseModel):
    version: int | None = Field(default=None, ge=0, le=2**31 - 1)


class AddendumIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class QuestionIn(BaseModel):
    question: str = Field(min_length=1, max_length=500)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=10, max_length=200)
    role: Literal["radiologist", "admin", "auditor"]
    full_name: str = Field(default="", max_length=200)


@router.get("/me")
def me(user: CurrentUser) -> dict[str, str]:
    """Who is signed in, and the CSRF token to send with state-changing calls."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "csrf_token": user.csrf_token,
    }


@router.get("/worklist")
def get_worklist(
    ctx: Ctx,
    user: CurrentUser,
    status: StatusFilter = "to_review",
    urgent: bool | None = None,
    flagged: bool | None = None,
    out_of_scope: bool | None = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Studies, urgent first then by arrival, with their badges.

    ``total`` counts the matching studies exactly when ``total_exact``; otherwise at least
    that many match (counting stops a thousand studies past the page).
    """
    filters = WorklistFilter(status, urgent, flagged, out_of_scope, site, limit, offset)
    with ctx.store.reading() as connection:
        total, exact, studies = worklist(connection, filters, ctx.counts)
    ctx.audit(user.username, "view_worklist", "", {"status": status, "offset": offset})
    return {"total": total, "total_exact": exact, "studies": studies}


@router.get("/studies/{study_id}")
def get_study(study_id: str, ctx: Ctx, user: CurrentUser) -> dict[str, Any]:
    """One study: scope, draft findings with verdicts and reasons, text, signatures."""
    with ctx.store.reading() as connection:
        detail = study_detail(connection, _check_id(study_id))
    ctx.audit(user.username, "view", study_id)
    return detail


@router.get("/studies/{study_id}/images/{position}.png", response_class=FileResponse)
def get_image(study_id: str, position: int, ctx: Ctx, user: CurrentUser) -> FileResponse:
    with ctx.store.sessions() as session:
        image = session.execute(
            select(ImageRow).where(
                ImageRow.study_id == _check_id(study_id), ImageRow.position == position
            )
        ).scalar_one_or_none()
    if image is None:
        raise HTTPException(404, "no such image")
    ctx.audit(user.username, "view_image", study_id, {"position": position})
    return FileResponse(
        ctx.store.path(image.png),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/studies/{study_id}/heatmaps/{code}.png", response_class=FileResponse)
def get_heatmap(study_id: str, code: str, ctx: Ctx, user: CurrentUser) -> FileResponse:
    with ctx.store.sessions() as session:
        draft = session.get(Draft, _check_id(study_id))
    if draft is None or code not in draft.heatmaps:
        raise HTTPException(404, "no heatmap for this finding")
    ctx.audit(user.username, "view_heatmap", study_id, {"code": code})
    return FileResponse(ctx.store.path(draft.heatmaps[code]), media_type="image/png")


@router.post("/studies/{study_id}/findings/{key}")
def post_decision(
    study_id: str, key: str, body: DecisionIn, ctx: Ctx, user: Radiologist
) -> dict[str, Any]:
    """Accept, reject or edit (with a replacement sentence) one finding of the draft.

    ``reason`` is kept with the decision and audited; rejecting a critical finding the safety
    check verified without one is refused (422)."""
    with ctx.store.sessions() as session:
        entry = worksheet.decide(
            session,
            _check_id(study_id),
            key[:16],
            body.decision,
            user.username,
            body.sentence,
            version=body.version,
            reason=body.reason,
        )
    ctx.audit(user.username, "edit", study_id, {"key": key[:16], **entry})
    return {"key": key, **entry}


class AddedFindingIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    side: str | None = Field(default=None, max_length=16)
    level: str | None = Field(default=None, max_length=16)
    size: str | None = Field(default=None, max_length=16)


@router.post("/findings/sentence")
def finding_sentence(body: AddedFindingIn, user: Radiologist) -> dict[str, Any]:
    """The report sentence of a finding the reader adds (code, side, lung level, size), as
    the writer states it and the parser reads it back; 422 for anything else."""
    from radloop.review.compose import compose_finding

    return compose_finding(body.code, body.side, body.level, body.size)


@router.put("/studies/{study_id}/text")
def put_text(study_id: str, body: TextIn, ctx: Ctx, user: Radiologist) -> dict[str, Any]:
    """Replace the report text by hand; ``null`` goes back to the text from the findings."""
    with ctx.store.sessions() as session:
        version = worksheet.set_text(
            session, _check_id(study_id), body.text, user.username, version=body.version
        )
        text = study_detail(session, study_id)["text"]
    ctx.audit(user.username, "edit_text", study_id, {"text": body.text})
    return {"text": text, "version": version}


@router.post("/studies/{study_id}/sign")
def post_sign(
    study_id: str, ctx: Ctx, user: Radiologist, body: SignIn | None = None
) -> dict[str, Any]:
    """Sign the report as it stands (radiologists only). A signed report never changes.

    ``version`` is the worksheet version the reader saw: 409 when it changed since (with
    what changed and by whom), and 409 for all but one of concurrent signers.
    """
    with ctx.store.sessions() as session:
        signed = worksheet.sign(
            session,
            _check_id(study_id),
            user.username,
            user.full_name,
            version=None if body is None else body.version,
        )
    # The report's hash in the chain: a report rewritten in the database no longer matches.
    ctx.audit(
        user.username,
        "sign",
        study_id,
        {"text": signed.text, "flags": signed.flags, "report_hash": report_hash(signed)},
    )
    return {
        "status": "signed",
        "signed_by": signed.signed_by_name,
        "signed_at": signed.signed_at.isoformat(),
    }


@router.post("/studies/{study_id}/addenda")
def post_addendum(study_id: str, body: AddendumIn, ctx: Ctx, user: Radiologist) -> dict[str, Any]:
    """Add a signed addendum to a signed report."""
    with ctx.store.sessions() as session:
        added = worksheet.add_addendum(
            session, _check_id(study_id), body.text, user.username, user.full_name
        )
    ctx.audit(
        user.username, "addendum", study_id, {"text": added.text, "report_hash": report_hash(added)}
    )
    return {"status": "amended", "signed_at": added.signed_at.isoformat()}


@router.post("/studies/{study_id}/ask")
async def post_question(
    study_id: str, body: QuestionIn, ctx: Ctx, user: CurrentUser
) -> dict[str, Any]:
    """Ask the assistant about the study. The answer is assistant output, not a diagnosis.

    The finding the answer rests on is checked against the workstation's verifier
    (:func:`radloop.safety.check_answer`): ``state`` is ``verified``, ``contradicted``,
    ``unsupported``, ``unverifiable`` or ``not checked`` (with ``reasons``), and
    ``unchecked`` when the check could not run.

    The model call and the check run in the ask pool: 429 when the user already has
    ``ask_per_user`` questions in flight, 503 at once when all ``ask_threads`` are busy, 504
    when no answer came in ``ask_timeout_s`` seconds.
    """
    _check_id(study_id)
    timeout = ctx.settings.ask_timeout_s
    try:
        future = ctx.ask_pool.submit(
            user.username, lambda: _answer_question(ctx, study_id, body.question)
        )
    except AskRefusedError as refused:
        raise RefusedError(refused.status, refused.message, refused.action) from None
    waiter = asyncio.wrap_future(future)
    # A call given up on may still fail later: its error is read here, not logged as lost.
    waiter.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        # Shielded: giving up waiting leaves the call running (a thread cannot be stopped);
        # it keeps its place in the pool until the model returns.
        answer, checked = await asyncio.wait_for(asyncio.shield(waiter), timeout)
    except TimeoutError:
        raise RefusedError(
            504,
            f"the model did not answer in {timeout:g} s; the question was given up. "
            "Try again later.",
            "ask_timed_out",
        ) from None
    await run_in_threadpool(
        ctx.audit,
        user.username,
        "ask",
        study_id,
        {"question": body.question, "answer": answer.text, "state": checked["state"]},
    )
    return {
        "label": answer.label,
        "question": answer.question,
        "text": answer.text,
        "answer": answer.answer,
        "model": answer.model_id,
        **checked,
    }


def _answer_question(ctx: AppContext, study_id: str, question: str) -> tuple[Any, dict[str, Any]]:
    """Load the study, ask the drafting model, check the answer (in an ask pool thread)."""
    from radloop.assist import ask
    from radloop.review.db import StudyRow
    from radloop.review.ingest import load_stored_study
    from radloop.review.worker import DraftingWorker

    with ctx.store.sessions() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise KeyError(study_id)
        study = load_stored_study(ctx.store, row)
    with _worker_lock:
        if ctx.worker is None:
            ctx.worker = DraftingWorker(ctx.store)
        worker = ctx.worker
    answer = ask(study, question, worker.drafting_model())
    return answer, _check_answer(answer, study, worker)


def _check_answer(answer: Any, study: Any, worker: Any) -> dict[str, Any]:
    """The state of an answer's claim, its reasons, the verifier and its domain decision."""
    from radloop.safety import check_answer

    try:
        _, verifier = worker.backends()
        checked = check_answer(answer, study, verifier)
    except Exception as error:  # the answer stands, labelled as not checked by anything
        log.warning("checking an answer failed", exc_info=True)
        return {
            "state": "unchecked",
            "reasons": [f"unchecked: the safety check could not run ({type(error).__name__})"],
            "verifier": None,
            "domain": None,
        }
    if checked.check is not None:
        reasons = list(checked.check.reasons)
    else:
        reasons = ["not checked: the answer rests on no finding that could be checked"]
    return {
        "state": checked.state,
        "reasons": reasons,
        "verifier": checked.verifier,
        "domain": checked.domain.to_dict() if checked.domain is not None else None,
    }


@router.get("/studies/{study_id}/export/fhir")
def export_fhir(study_id: str, ctx: Ctx, user: CurrentUser) -> Response:
    """The report as a FHIR R4 DiagnosticReport (preliminary until signed)."""
    import json

    from radloop.review.export import fhir_diagnostic_report

    with ctx.store.sessions() as session:
        content = export_content(session, _check_id(study_id))
    resource = fhir_diagnostic_report(content)
    ctx.audit(user.username, "export", study_id, {"format": "fhir", "status": resource["status"]})
    return Response(
        json.dumps(resource, indent=1),
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{study_id}-report.fhir.json"'},
    )


@router.get("/studies/{study_id}/export/sr")
def export_sr(study_id: str, ctx: Ctx, user: CurrentUser) -> Response:
    """The report as DICOM Comprehensive SR (flags PARTIAL/UNVERIFIED until signed)."""
    from radloop.review.export import dicom_sr
    from radloop.review.ingest import load_stored_study

    with ctx.store.sessions() as session:
        from radloop.review.db import StudyRow

        content = export_content(session, _check_id(study_id))
        row = session.get(StudyRow, study_id)
        assert row is not None
        sources = [image.source for image in load_stored_study(ctx.store, row).images]
    data = dicom_sr(content, sources)
    ctx.audit(
        user.username, "export", study_id, {"format": "dicom-sr", "status": content.status.value}
    )
    return Response(
        data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="{study_id}-report-sr.dcm"'},
    )


def ingest_upload(ctx: AppContext, files: list[UploadFile], username: str) -> IngestResult:
    """Stage uploaded files under safe names and ingest them; the staging goes either way.

    One file (an image or a zip) is ingested as that file; several are ingested as a folder
    of images (a zip among several files is refused by the loader: send zips one at a time).
    """
    staging = staging_dir(ctx.store)
    try:
        names: set[str] = set()
        for upload in files:
            name = safe_name(upload.filename or "")
            if name in names:
                name = f"{len(names)}-{name}"
            names.add(name)
            with (staging / name).open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1024 * 1024)
        single = staging / next(iter(names)) if len(names) == 1 else staging
        result = ingest_path(ctx.store, single, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.audit(username, "ingest", "", result.to_dict() | {"files": sorted(names)})
    if ctx.worker is not None:
        ctx.worker.wake.set()
    return result


@router.post("/upload")
def upload(files: list[UploadFile], ctx: Ctx, user: Ingester) -> dict[str, list[str]]:
    """Upload DICOM, PNG or JPEG files or a zip; each new study is queued for drafting."""
    if not files:
        raise HTTPException(422, "expected at least one file")
    return ingest_upload(ctx, files, user.username).to_dict()


@router.get("/audit")
def get_audit(
    ctx: Ctx, user: Auditor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The newest audit entries and whether the chain is intact."""
    from radloop.review.audit import verify_chain

    with ctx.store.sessions() as session:
        checked, problems = verify_chain(session, ctx.store.seal)
        entries = session.execute(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        ).scalars()
        rows = [
            {"seq": e.seq, "at": e.at, "user": e.username, "action": e.action, "target": e.target}
            for e in entries
        ]
    ctx.audit(user.username, "view_audit")
    return {"checked": checked, "problems": [str(p) for p in problems], "entries": rows}


@router.post("/users", status_code=201)
def post_user(body: UserIn, ctx: Ctx, user: Admin) -> dict[str, str]:
    """Add a user (admins only)."""
    with ctx.store.sessions() as session:
        created = create_user(session, body.username, body.password, body.role, body.full_name)
        session.commit()
    ctx.audit(user.username, "add_user", body.username, {"role": body.role})
    return {"username": created.username, "role": created.role}
