"""Labelled claims from the review database: each draft's stored claim checks, labelled by
the report the radiologist signed.

A study counts once, by its first (``final``) signature; addenda are not re-counted, as in
``radloop.review.store.signed_cases``. Only studies whose draft stored claim checks give claims.
"""

from __future__ import annotations

import datetime
from typing import Any

from radloop.errors import InputError, MissingExtraError
from radloop.report import Finding
from radloop.safety.signed_calibration import SignedClaim, claims_of_signed_case

__all__ = ["read_signed_claims"]


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def read_signed_claims(
    database_url: str, since: datetime.datetime | None = None
) -> list[SignedClaim]:
    """Every draft claim of the studies signed at or after ``since`` (all when None), oldest
    first, labelled by the signed report's findings."""
    try:
        from sqlalchemy import create_engine, select
        from sqlalchemy.exc import SQLAlchemyError

        from radloop.review.db import Draft, SignedReport
    except ImportError as error:
        raise MissingExtraError(
            "radloop.review", "review", f"Reading signed cases from a database ({error})"
        ) from None
    query: Any = (
        select(SignedReport.study_id, SignedReport.signed_at, SignedReport.findings, Draft.checks)
        .join(Draft, Draft.study_id == SignedReport.study_id)
        .where(SignedReport.kind == "final")
        .order_by(SignedReport.signed_at, SignedReport.id)
    )
    if since is not None:
        query = query.where(SignedReport.signed_at >= _utc(since))
    try:
        engine = create_engine(database_url)
    except (SQLAlchemyError, ValueError) as error:
        raise InputError("a SQLAlchemy database URL", repr(database_url), fix=str(error)) from None
    claims: list[SignedClaim] = []
    try:
        with engine.connect() as connection:
            for study_id, signed_at, findings, checks in connection.execute(query).yield_per(500):
                signed = [Finding.from_dict(f) for f in findings or []]
                claims.extend(
                    claims_of_signed_case(str(study_id), _utc(signed_at), checks or [], signed)
                )
    except SQLAlchemyError as error:
        raise InputError(
            "the review workstation's database (radloop serve's RADLOOP_DATABASE_URL)",
            str(error).splitlines()[0][:200],
            source=database_url,
        ) from None
    finally:
        engine.dispose()
    return claims
