"""The record of communicating a critical result: to whom, when and how, or why not.

The ACR Practice Parameter for Communication of Diagnostic Imaging Findings asks that a
finding needing immediate or urgent action be communicated directly to the responsible
clinician, and that the communication be documented: who was told, when, and by what means.
A study that arrived urgent (a critical finding raised by evidence valid for the film) cannot
be signed until such a record exists, or the reader waives it with a reason (the clinician
already knows; the finding is not new). Records are only ever added, and each is audited.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, ForeignKey, Integer, String, Text, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from radloop.errors import InputError
from radloop.review.db import Base, StudyRow, utcnow
from radloop.review.store import as_utc

__all__ = [
    "METHODS",
    "CriticalCommunication",
    "communications",
    "needs_communication",
    "record_communication",
    "report_line",
]

METHODS = ("telephone", "in person", "secure message", "pager", "video call")
"""Direct means of communication the ACR parameter recognises for urgent findings."""

_CLOCK_SKEW = datetime.timedelta(minutes=5)
_OLDEST = datetime.timedelta(days=7)


class CriticalCommunication(Base):
    """One communication (or waiver) of a study's critical result; never updated."""

    __tablename__ = "critical_communications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str | None] = mapped_column(String(32))
    communicated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    waived_reason: Mapped[str | None] = mapped_column(Text)
    finding: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_by_name: Mapped[str] = mapped_column(String(200), default="")
    recorded_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


def report_line(records: list[dict[str, Any]]) -> str | None:
    """The sentence a signed report ends with: the latest record, as the ACR parameter asks
    the report to document it. It names no finding (so reading the text back as findings
    never finds one in it): the findings above it say what was communicated."""
    if not records:
        return None
    last = records[-1]
    if last["waived_reason"]:
        return f"Communication of the critical result waived: {last['waived_reason']}."
    when = str(last["communicated_at"])[:16].replace("T", " ")
    return (
        f"Critical result communicated to {last['recipient']} by {last['method']} "
        f"at {when} UTC by {last['recorded_by']}."
    )


def needs_communication(urgent: bool, records: list[dict[str, Any]]) -> bool:
    """Whether signing must wait for a record: the study is urgent and has none yet."""
    return urgent and not records


def record_communication(
    session: Session,
    study_id: str,
    *,
    username: str,
    full_name: str,
    recipient: str | None = None,
    method: str | None = None,
    communicated_at: datetime.datetime | None = None,
    waived_reason: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Keep one record for ``study_id``; a typed error (nothing kept) if it says too little.

    Either ``waived_reason`` (why no communication is needed), or all of ``recipient`` (name
    and role), ``method`` (one of :data:`METHODS`) and ``communicated_at`` (not in the future,
    not more than a week back). The critical finding is taken from the study's triage reasons.
    """
    now = now or utcnow()
    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    waived = (waived_reason or "").strip()[:500] or None
    recipient = (recipient or "").strip()[:200] or None
    if waived is None:
        if recipient is None:
            raise InputError(
                "the name and role of who was told (e.g. 'Dr Lee, ED registrar')",
                "no recipient",
                source="recipient",
                fix="Or waive the communication with a reason.",
            )
        if method not in METHODS:
            raise InputError(
                f"how it was communicated, one of: {', '.join(METHODS)}",
                repr(method)[:40],
                source="method",
            )
        if communicated_at is None:
            raise InputError("when it was communicated", "no time", source="communicated_at")
        when = as_utc(communicated_at)
        if when > now + _CLOCK_SKEW or when < now - _OLDEST:
            raise InputError(
                "a time in the past week, not in the future",
                when.isoformat(timespec="minutes"),
                source="communicated_at",
            )
        communicated_at = when
    record = CriticalCommunication(
        study_id=study_id,
        recipient=None if waived else recipient,
        method=None if waived else method,
        communicated_at=None if waived else communicated_at,
        waived_reason=waived,
        finding="; ".join(str(r) for r in row.triage_reasons or [])[:2000],
        recorded_by=username,
        recorded_by_name=full_name,
        recorded_at=now,
    )
    session.add(record)
    session.commit()
    return _as_dict(record)


_table = CriticalCommunication.__table__.c
_FIELDS = (
    "recipient",
    "method",
    "communicated_at",
    "waived_reason",
    "finding",
    "recorded_by",
    "recorded_by_name",
    "recorded_at",
)
_RECORDS = (
    select(*(_table[name] for name in _FIELDS))
    .where(_table.study_id == bindparam("study_id"))
    .order_by(_table.id)
)


def _as_dict(record: Any) -> dict[str, Any]:
    """A record (a row or an ORM object) as the pages, the API and the exports show it."""
    communicated = record.communicated_at
    return {
        "recipient": record.recipient,
        "method": record.method,
        "communicated_at": as_utc(communicated).isoformat() if communicated else None,
        "waived_reason": record.waived_reason,
        "finding": record.finding,
        "recorded_by": record.recorded_by_name or record.recorded_by,
        "recorded_at": as_utc(record.recorded_at).isoformat(),
    }


def communications(bind: Session | Connection, study_id: str) -> list[dict[str, Any]]:
    """The study's records, oldest first."""
    connection = bind.connection() if isinstance(bind, Session) else bind
    return [_as_dict(r) for r in connection.execute(_RECORDS, {"study_id": study_id})]
