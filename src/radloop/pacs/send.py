"""Signed reports back to the PACS: the report as DICOM SR, stored by STOW-RS.

The SR is the one the workstation exports (:func:`radloop.review.export.dicom_sr`, built as
``GET /api/studies/{id}/export/sr`` builds it), so the PACS gets exactly what a download gives.
Only signed reports leave: a draft is assistant output, never a result.

:func:`send_report` sends one study's report now (``radloop pacs send STUDY_ID``).
:func:`send_pending` sends what the outbox holds: with ``RADLOOP_PACS_SEND_ON_SIGN=1`` every
signature writes an outbox row in its own transaction (:mod:`radloop.pacs.outbox`), and a
sender works through them afterwards, so signing never waits on the PACS. A row is claimed
before it is sent (one sender wins it), tried again with a growing delay when the PACS is
unavailable, and failed for good when the report cannot be made into an SR (a study that
arrived as PNG or JPEG has no DICOM images to reference) or after :data:`MAX_SEND_ATTEMPTS`.
An SR instance already sent is not sent again by the outbox (the final report's row, sent
after an addendum, finds the amended version already there); ``send_report`` always sends.
Every send is written to the audit trail (``pacs_send`` or ``pacs_send_failed``).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import or_, select, update

from radloop.errors import InputError
from radloop.pacs.config import PacsConfig
from radloop.pacs.tables import PacsOutbox
from radloop.pacs.web import PacsWeb, make_client, store_instance
from radloop.review.db import ImageRow, StudyRow, utcnow
from radloop.review.store import Store

__all__ = [
    "MAX_SEND_ATTEMPTS",
    "NotSignedError",
    "SendResult",
    "report_sr",
    "send_pending",
    "send_report",
]

log = logging.getLogger("radloop.pacs.send")

MAX_SEND_ATTEMPTS = 10
BACKOFF_S = 5.0
MAX_BACKOFF_S = 3600.0
STALE_SENDING = datetime.timedelta(minutes=10)
"""A ``sending`` row older than this belongs to a sender that died: it is pending again."""


class NotSignedError(InputError):
    """Only a signed report is sent to the PACS."""


@dataclass
class SendResult:
    """One report sent (``sop_instance_uid`` set) or not (``error``)."""

    study_id: str
    outbox_id: int | None
    state: str
    sop_instance_uid: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_sr(store: Store, study_id: str) -> bytes:
    """The study's signed report as DICOM SR (Part 10 bytes), as the export builds it."""
    from radloop.review.export import dicom_sr
    from radloop.review.ingest import load_stored_study
    from radloop.review.queries import export_content

    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise InputError(
                "a study id on the worklist", repr(study_id), source="radloop pacs send"
            )
        if row.status not in ("signed", "amended"):
            raise NotSignedError(
                "a signed report (drafts never go to the PACS)",
                f"status {row.status}",
                source=study_id,
                fix="Sign it in the workstation first.",
            )
        content = export_content(session, study_id)
        originals = list(
            session.execute(
                select(ImageRow.original)
                .where(ImageRow.study_id == study_id)
                .order_by(ImageRow.position)
            ).scalars()
        )
        if originals and all(originals):
            sources = [store.path(o) for o in originals if o]
        else:  # stored before originals were recorded: read the study to find its files
            sources = [image.source for image in load_stored_study(store, row).images]
    return dicom_sr(content, sources)


def _audit(store: Store, action: str, study_id: str, detail: dict[str, Any]) -> None:
    from radloop.review import audit

    audit.record(store.sessions, "pacs", action, study_id, detail, seal=store.seal)


def send_report(
    store: Store, config: PacsConfig, study_id: str, *, web: PacsWeb | None = None
) -> SendResult:
    """Build the study's SR and store it in the PACS now; a ``sent`` outbox row records it.

    Raises :class:`NotSignedError` (or another ``InputError``) when there is nothing to send
    and :class:`~radloop.pacs.web.PacsError` when the PACS does not take it.
    """
    data = report_sr(store, study_id)
    uid = store_instance(web or make_client(config), data)
    now = utcnow()
    with store.sessions() as session:
        row = PacsOutbox(
            study_id=study_id,
            event="manual",
            state="sent",
            attempts=1,
            created_at=now,
            claimed_at=now,
            sent_at=now,
            sop_instance_uid=uid,
        )
        session.add(row)
        session.commit()
        outbox_id = row.id
    _audit(store, "pacs_send", study_id, {"sop_instance_uid": uid, "event": "manual"})
    return SendResult(study_id, outbox_id, "sent", uid)


def _claim(store: Store, limit: int) -> list[PacsOutbox]:
    """Up to ``limit`` pending rows that are due, now marked ``sending`` by this sender."""
    now = utcnow()
    claimed: list[PacsOutbox] = []
    with store.sessions() as session:
        session.execute(  # rows of a sender that died
            update(PacsOutbox)
            .where(PacsOutbox.state == "sending", PacsOutbox.claimed_at < now - STALE_SENDING)
            .values(state="pending")
            .execution_options(synchronize_session=False)
        )
        session.commit()
        due = list(
            session.execute(
                select(PacsOutbox)
                .where(
                    PacsOutbox.state == "pending",
                    or_(PacsOutbox.not_before.is_(None), PacsOutbox.not_before <= now),
                )
                .order_by(PacsOutbox.id)
                .limit(limit)
            ).scalars()
        )
        for row in due:
            taken = session.execute(
                update(PacsOutbox)
                .where(PacsOutbox.id == row.id, PacsOutbox.state == "pending")
                .values(state="sending", claimed_at=now, attempts=PacsOutbox.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            if getattr(taken, "rowcount", 0) == 1:
                claimed.append(row)
    return claimed


def _sop_instance_uid(data: bytes) -> str:
    import io

    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def _already_sent(store: Store, study_id: str, uid: str) -> bool:
    """Whether this SR instance went to the PACS already (its UIDs are derived from the study
    and the signatures, so the same version of a report is the same instance)."""
    with store.sessions() as session:
        return (
            session.execute(
                select(PacsOutbox.id).where(
                    PacsOutbox.study_id == study_id,
                    PacsOutbox.state == "sent",
                    PacsOutbox.sop_instance_uid == uid,
                )
            ).first()
            is not None
        )


def _settle(store: Store, row_id: int, **values: Any) -> None:
    with store.sessions() as session:
        session.execute(update(PacsOutbox).where(PacsOutbox.id == row_id).values(**values))
        session.commit()


def send_pending(
    store: Store, config: PacsConfig, *, web: PacsWeb | None = None, limit: int = 100
) -> list[SendResult]:
    """Send the outbox's due reports (at most ``limit``); what became of each."""
    rows = _claim(store, limit)
    if not rows:
        return []
    web = web or make_client(config)
    results = []
    for row in rows:
        attempts = row.attempts + 1
        try:
            data = report_sr(store, row.study_id)
            uid = _sop_instance_uid(data)
            if _already_sent(store, row.study_id, uid):  # e.g. the final row after an addendum
                _settle(store, row.id, state="sent", sent_at=utcnow(), sop_instance_uid=uid)
                results.append(SendResult(row.study_id, row.id, "sent", uid))
                continue
            uid = store_instance(web, data)
        except InputError as error:  # nothing that can be sent: failed for good
            _settle(store, row.id, state="failed", error=str(error)[:1000])
            _audit(store, "pacs_send_failed", row.study_id, {"error": str(error)})
            results.append(SendResult(row.study_id, row.id, "failed", error=str(error)))
            continue
        except Exception as error:  # the PACS or the network: later, unless tried enough
            reason = f"{type(error).__name__}: {error}"[:1000]
            if attempts >= MAX_SEND_ATTEMPTS:
                _settle(store, row.id, state="failed", error=reason)
                _audit(store, "pacs_send_failed", row.study_id, {"error": reason})
                results.append(SendResult(row.study_id, row.id, "failed", error=reason))
            else:
                delay = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempts - 1))
                due = utcnow() + datetime.timedelta(seconds=delay)
                _settle(store, row.id, state="pending", not_before=due, error=reason)
                results.append(SendResult(row.study_id, row.id, "pending", error=reason))
            log.warning("sending the report of study %s to the PACS: %s", row.study_id, reason)
            continue
        _settle(store, row.id, state="sent", sent_at=utcnow(), sop_instance_uid=uid, error=None)
        _audit(store, "pacs_send", row.study_id, {"sop_instance_uid": uid, "event": row.event})
        results.append(SendResult(row.study_id, row.id, "sent", uid))
    return results
