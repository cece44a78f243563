"""The workstation's tables (SQLAlchemy 2 typed declarative models).

The schema itself is created by the Alembic migrations in ``radloop/review/migrations``; these
classes are how the code reads and writes it. Two tables are append-only: ``audit_log`` (a
hash chain, see :mod:`radloop.review.audit`) and ``signed_reports`` (a signed report is never
changed; later changes are addenda). The migrations add database triggers that refuse
UPDATE and DELETE on both.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEntry",
    "Base",
    "Draft",
    "ImageRow",
    "Job",
    "LoginAttempt",
    "SignedReport",
    "StudyRow",
    "User",
    "WebSession",
    "Worksheet",
    "utcnow",
]


def utcnow() -> datetime.datetime:
    """Timezone-aware UTC now; every stored time is UTC."""
    return datetime.datetime.now(datetime.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebSession(Base):
    """A browser session: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """Failed logins by user name and by client address, for rate limiting."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudyRow(Base):
    """One study on the worklist, with what triage, scope and monitoring need."""

    __tablename__ = "studies"
    # The worklist order (urgent first, then by arrival) straight from an index, with and
    # without the "still to review" filter, so a page costs the same at 10 or 100,000 studies.
    __table_args__ = (
        Index("ix_studies_queue", "pending", text("urgent DESC"), "received_at", "id"),
        Index("ix_studies_order", text("urgent DESC"), "received_at", "id"),
        Index("ix_studies_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(128), unique=True)
    patient_key: Mapped[str | None] = mapped_column(String(128), index=True)  # Patient ID
    patient_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[datetime.date | None] = mapped_column(Date)
    accession_number: Mapped[str | None] = mapped_column(String(64), index=True)
    study_date: Mapped[datetime.date | None] = mapped_column(Date)
    received_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    pending: Mapped[bool] = mapped_column(Boolean, default=True)  # not yet signed
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    triage_reasons: Mapped[list[Any]] = mapped_column(default=list)
    flag_count: Mapped[int] = mapped_column(Integer, default=0)
    # Claims of the draft that no evidence valid for the film spoke about.
    not_checked: Mapped[int] = mapped_column(Integer, default=0)
    out_of_scope: Mapped[bool] = mapped_column(Boolean, default=False)
    scope_outcome: Mapped[str | None] = mapped_column(String(16))
    scope: Mapped[list[Any]] = mapped_column(default=list)
    ood: Mapped[bool] = mapped_column(Boolean, default=False)
    ood_score: Mapped[float | None] = mapped_column(Float)
    site: Mapped[str | None] = mapped_column(String(200), index=True)
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    age: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(1))
    view: Mapped[str | None] = mapped_column(String(32))
    modality: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(500))
    source_kind: Mapped[str] = mapped_column(String(16), default="dicom")
    image_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    prior_id: Mapped[str | None] = mapped_column(String(32))


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    sop_instance_uid: Mapped[str] = mapped_column(String(128))
    view: Mapped[str | None] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    png: Mapped[str] = mapped_column(String(500))
    # The kept original this image was read from, relative to the data directory (a member
    # of a kept zip as ``<zip>/<member>``): a draft reads its study's files only.
    original: Mapped[str | None] = mapped_column(String(1000))


class Draft(Base):
    """The model's draft after the safety layer; written once by the drafting worker.

    ``domain`` is the verifier's domain decision for the study; ``calibrated`` says whether
    the probabilities are calibrated for that domain (otherwise they are shown as
    uncalibrated); ``banner`` is what the top of the draft must say (a failed or abstained
    draft, or one whose claims are all unchecked); ``failure`` (a degenerate model reply) and
    ``abstained`` (the model declined a film outside its validated domain) leave the draft
    without findings; ``warnings`` are the typed warnings about the model's output and
    ``unaddressed`` the report sections the model did not comment on. ``context`` is the
    clinical context the model was given (migration 0007: the prompt section's text, the items
    given and left out; ``radloop.assist.prompts.ContextSection.record``), None for drafts
    made before it was recorded.
    """

    __tablename__ = "drafts"

    study_id: Mapped[str] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200))
    verifier: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    findings: Mapped[list[Any]] = mapped_column(default=list)
    checks: Mapped[list[Any]] = mapped_column(default=list)
    heatmaps: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notice: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    domain: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    banner: Mapped[str | None] = mapped_column(Text)
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    abstained: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    unaddressed: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 1 when first written, +1 whenever a later draft replaces it (an admin's requeue).
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # What the model work cost, by part and in total (requests, tokens, seconds).
    cost: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Worksheet(Base):
    """The reviewer's work in progress: a decision per draft finding and the report text."""

    __tablename__ = "worksheets"

    study_id: Mapped[str] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    decisions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text: Mapped[str | None] = mapped_column(Text)
    text_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    # Bumped by every write with a conditional UPDATE (``WHERE version = :seen``).
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_change: Mapped[str | None] = mapped_column(String(64))


class SignedReport(Base):
    """A signed report or an addendum to one. Never updated (database triggers refuse it).

    At most one ``final`` report per study (a unique partial index); addenda are unlimited.
    """

    __tablename__ = "signed_reports"
    __table_args__ = (
        Index(
            "uq_signed_reports_final",
            "study_id",
            unique=True,
            sqlite_where=text("kind = 'final'"),
            postgresql_where=text("kind = 'final'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "final" or "addendum"
    text: Mapped[str] = mapped_column(Text)
    findings: Mapped[list[Any]] = mapped_column(default=list)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_by_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Job(Base):
    """A drafting job (:mod:`radloop.review.jobs`): claimed under a lease that a heartbeat
    renews; ``token`` names the current claim, ``not_before`` delays a retry."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One audit event, chained to the one before by ``prev_hash`` (unique: no forks)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
