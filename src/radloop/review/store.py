"""Storage: the database (SQLite embedded, or PostgreSQL) and the data directory on disk.

``<data_dir>/originals/<batch>/`` keeps every upload exactly as it arrived; ``<data_dir>/
studies/<study id>/`` holds the PNGs rendered for the viewer and the heatmap overlays. The
database holds everything else. :func:`signed_cases` is the feed that monitoring reads.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from radloop.review.audit import AuditSeal
from radloop.review.db import Draft, SignedReport, StudyRow
from radloop.review.settings import Settings

__all__ = [
    "Store",
    "as_utc",
    "make_engine",
    "migrate",
    "open_store",
    "signed_cases",
]


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """A stored time as timezone-aware UTC (SQLite hands back naive datetimes)."""
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def make_engine(settings: Settings) -> Engine:
    """An engine for the settings' URL; SQLite gets WAL, foreign keys and a busy timeout."""
    url = settings.url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if settings.db_schema:
        connect_args["options"] = f"-csearch_path={settings.db_schema}"
    return create_engine(
        url, connect_args=connect_args, pool_size=20, max_overflow=20, pool_pre_ping=True
    )


def migrate(engine: Engine, schema: str | None = None, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision (creating it on first use), or to
    ``revision``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if schema and connection.dialect.name == "postgresql":
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        config.attributes["connection"] = connection
        config.attributes["schema"] = schema
        command.upgrade(config, revision)


@dataclass
class Store:
    """The database and the data directory, opened once and passed around."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    seal: AuditSeal | None = None
    """The audit chain's key and anchor file (:mod:`radloop.review.audit`)."""

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def study_dir(self, study_id: str) -> Path:
        return self.data_dir / "studies" / study_id

    def path(self, relative: str) -> Path:
        """A stored relative path as an absolute one, refusing anything outside data_dir."""
        root = self.data_dir.resolve()
        resolved = (root / relative).resolve()
        if not resolved.is_relative_to(root):
            raise ValueError(f"stored path {relative!r} leaves the data directory")
        return resolved

    def reading(self) -> Connection:
        """A connection for reads (``with store.reading() as connection``): no ORM session."""
        return self.engine.connect()

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Open (and by default migrate) the store the settings describe."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings)
    if upgrade:
        migrate(engine, settings.db_schema)
    seal = AuditSeal.open(
        settings.audit_key.encode("utf-8") if settings.audit_key else None,
        settings.audit_key_path,
        settings.audit_anchor_path,
        engine,
    )
    return Store(settings, engine, sessionmaker(engine, expire_on_commit=False), seal)


def _iso(value: datetime.datetime) -> str:
    return as_utc(value).isoformat()


def _flags(draft: Draft | None, signed: SignedReport) -> list[dict[str, str]]:
    return [
        {"code": str(f["code"]), "reason": str(f["reason"]), "decision": str(f["decision"])}
        for f in signed.flags
    ]


def _draft_state(draft: Draft | None) -> str:
    if draft is None:
        return "none"
    if draft.failure is not None:
        return "failed"
    return "drafted" if draft.abstained is None else "abstained"


def signed_cases(
    bind: Session | Engine, since: datetime.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every signed study (its first signature; addenda are not re-counted), oldest first.

    Keys: study_id, received_at, signed_at (ISO-8601), age, sex, site, manufacturer, view,
    model, draft_findings, signed_findings (lists of ``Finding.to_dict()``), draft_text,
    signed_text, flags ({code, reason, decision}), ood_score, image_stats, draft_state
    (``drafted``, ``failed``, ``abstained``, or ``none`` without a draft). ``since`` keeps the
    cases signed at or after that time. Documented in docs/review.md.
    """
    session = bind if isinstance(bind, Session) else Session(bind)
    try:
        query = (
            select(SignedReport, StudyRow, Draft)
            .join(StudyRow, StudyRow.id == SignedReport.study_id)
            .outerjoin(Draft, Draft.study_id == SignedReport.study_id)
            .where(SignedReport.kind == "final")
            .order_by(SignedReport.signed_at, SignedReport.id)
        )
        if since is not None:
            query = query.where(SignedReport.signed_at >= as_utc(since))
        for signed, study, draft in session.execute(query).yield_per(500):
            yield {
                "study_id": study.id,
                "received_at": _iso(study.received_at),
                "signed_at": _iso(signed.signed_at),
                "age": study.age,
                "sex": study.sex if study.sex in ("M", "F") else None,
                "site": study.site,
                "manufacturer": study.manufacturer,
                "view": study.view,
                "model": draft.model if draft is not None else "",
                "draft_findings": list(draft.findings) if draft is not None else [],
                "signed_findings": list(signed.findings),
                "draft_text": draft.text if draft is not None else "",
                "signed_text": signed.text,
                "flags": _flags(draft, signed),
                "ood_score": study.ood_score,
                "image_stats": dict(study.image_stats),
                "draft_state": _draft_state(draft),
            }
    finally:
        if session is not bind:
            session.close()
