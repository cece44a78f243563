"""Recording the communication of a critical result: the study page's form and the API.

Radiologists record to whom, when and how the critical finding was communicated, or waive
it with a reason (:mod:`radloop.review.communication`); each record is audited
(``communicate_critical`` or ``waive_communication``) with what it says.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from radloop.errors import InputError
from radloop.review.communication import communications, record_communication
from radloop.review.deps import AppContext, Ctx, Radiologist, csrf_protect

__all__ = ["CommunicationIn", "router"]

router = APIRouter()


class CommunicationIn(BaseModel):
    """To whom, how and when; or ``waived_reason`` alone."""

    recipient: str | None = Field(default=None, max_length=200)
    method: str | None = Field(default=None, max_length=32)
    communicated_at: datetime.datetime | None = None
    waived_reason: str | None = Field(default=None, max_length=500)


def _check_id(study_id: str) -> str:
    if not study_id or len(study_id) > 32 or not all(c in "0123456789abcdef" for c in study_id):
        raise HTTPException(404, f"no such study: {study_id[:40]!r}")
    return study_id


def _record(ctx: AppContext, user: Any, study_id: str, record: CommunicationIn) -> dict[str, Any]:
    with ctx.store.sessions() as session:
        try:
            kept = record_communication(
                session,
                _check_id(study_id),
                username=user.username,
                full_name=user.full_name,
                recipient=record.recipient,
                method=record.method,
                communicated_at=record.communicated_at,
                waived_reason=record.waived_reason,
            )
        except KeyError:
            raise HTTPException(404, f"no such study: {study_id!r}") from None
    action = "waive_communication" if kept["waived_reason"] else "communicate_critical"
    ctx.audit(user.username, action, study_id, kept)
    return kept


@router.post("/api/studies/{study_id}/communications", dependencies=[Depends(csrf_protect)])
def api_communication(
    study_id: str, record: CommunicationIn, ctx: Ctx, user: Radiologist
) -> dict[str, Any]:
    """Record the communication of the study's critical result (radiologists)."""
    kept = _record(ctx, user, study_id, record)
    with ctx.store.reading() as connection:
        return {"recorded": kept, "communications": communications(connection, study_id)}


def _local_time(value: str, offset_minutes: int) -> datetime.datetime | None:
    """A ``datetime-local`` form value in the browser's time zone (``offset_minutes`` as
    JavaScript's ``getTimezoneOffset``), as UTC."""
    if not value:
        return None
    try:
        naive = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            "a date and time such as 2026-12-07T14:05", repr(value)[:40], source="communicated_at"
        ) from None
    return naive.replace(tzinfo=datetime.UTC) + datetime.timedelta(minutes=offset_minutes)


@router.post("/studies/{study_id}/communications", dependencies=[Depends(csrf_protect)])
def page_communication(
    study_id: str,
    ctx: Ctx,
    user: Radiologist,
    recipient: Annotated[str, Form(max_length=200)] = "",
    method: Annotated[str, Form(max_length=32)] = "",
    communicated_at: Annotated[str, Form(max_length=40)] = "",
    tz_offset: Annotated[int, Form(ge=-900, le=900)] = 0,
    waived_reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The study page's form; a record that says too little comes back to the form."""
    target = f"/studies/{_check_id(study_id)}"
    try:
        record = CommunicationIn(
            recipient=recipient or None,
            method=method or None,
            communicated_at=_local_time(communicated_at, tz_offset),
            waived_reason=waived_reason or None,
        )
        _record(ctx, user, study_id, record)
    except InputError as error:
        return RedirectResponse(
            f"{target}?communication_error={quote(str(error)[:300])}#communication",
            status_code=303,
        )
    return RedirectResponse(f"{target}#communication", status_code=303)
