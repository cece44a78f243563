"""The PACS link's tables (created by review migration 0006), on the workstation's ``Base``.

- ``pacs_seen``: every Study Instance UID radloop has taken from the PACS, by any route, so a
  study is fetched once. A study a poll finds first waits here (``settling``, with the
  ``signature`` of its series and instance counts, migration 0010) until a later poll finds it
  unchanged, so a study still arriving in the PACS is not taken in part. A poll claims a study
  here (``fetching``) before it retrieves it;
  ``fetched`` names the study on the worklist, ``refused`` keeps the typed error of a study
  the ingestion limits turned away (not retried), ``failed`` a transient error (retried on a
  later poll, up to :data:`MAX_FETCH_ATTEMPTS`).
- ``pacs_outbox``: signed reports waiting to go to the PACS as DICOM SR, written in the
  signer's transaction and sent afterwards, so signing never waits on the PACS.
- ``pacs_polls``: one row per poll, with the date it searched from and what it found.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from radloop.review.db import Base, utcnow

__all__ = ["MAX_FETCH_ATTEMPTS", "PacsOutbox", "PacsPoll", "PacsSeen"]

MAX_FETCH_ATTEMPTS = 3
"""Polls that try a study whose retrieval failed for a transient reason (network, server)."""


class PacsSeen(Base):
    """A study taken from the PACS (or claimed for taking): fetched at most once."""

    __tablename__ = "pacs_seen"

    study_instance_uid: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "qido-rs" or "c-store"
    state: Mapped[str] = mapped_column(String(16), index=True)
    study_id: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PacsOutbox(Base):
    """A signed report (or addendum) to send to the PACS as DICOM SR by STOW-RS."""

    __tablename__ = "pacs_outbox"
    __table_args__ = (Index("ix_pacs_outbox_state", "state", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))  # "final", "addendum" or "manual"
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    not_before: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)


class PacsPoll(Base):
    """One QIDO-RS poll: when, from which study date, and what came of it."""

    __tablename__ = "pacs_polls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    since: Mapped[datetime.date] = mapped_column(Date)
    found: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
