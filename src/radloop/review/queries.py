"""Read models shared by the pages and the JSON API: the worklist and one study's detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from radloop.report import Finding, ReportStatus
from radloop.review.db import Draft, ImageRow, StudyRow, Worksheet
from radloop.review.export import ExportContent
from radloop.review.store import as_utc
from radloop.review.worksheet import current_text, kept_findings, review_items, signed_reports

__all__ = ["STATUS_FILTERS", "WorklistFilter", "export_content", "study_detail", "worklist"]

STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "to_review": ("queued", "drafting", "ready", "failed"),
    "ready": ("ready",),
    "signed": ("signed", "amended"),
    "failed": ("failed",),
    "all": (),
}


@dataclass(frozen=True)
class WorklistFilter:
    """Worklist filters; None means "either"."""

    status: str = "to_review"
    urgent: bool | None = None
    flagged: bool | None = None
    out_of_scope: bool | None = None
    site: str | None = None
    limit: int = 50
    offset: int = 0


_SUMMARY_COLUMNS = (
    StudyRow.id,
    StudyRow.study_instance_uid,
    StudyRow.received_at,
    StudyRow.study_date,
    StudyRow.status,
    StudyRow.urgent,
    StudyRow.triage_reasons,
    StudyRow.flag_count,
    StudyRow.out_of_scope,
    StudyRow.scope_outcome,
    StudyRow.ood,
    StudyRow.site,
    StudyRow.age,
    StudyRow.sex,
    StudyRow.view,
    StudyRow.prior_id,
)


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "study_instance_uid": row.study_instance_uid,
        "received_at": as_utc(row.received_at).isoformat(),
        "study_date": row.study_date.isoformat() if row.study_date else None,
        "status": row.status,
        "urgent": row.urgent,
        "triage_reasons": list(row.triage_reasons),
        "flag_count": row.flag_count,
        "out_of_scope": row.out_of_scope,
        "scope_outcome": row.scope_outcome,
        "ood": row.ood,
        "site": row.site,
        "age": row.age,
        "sex": row.sex,
        "view": row.view,
        "prior_id": row.prior_id,
    }


def worklist(session: Session, filters: WorklistFilter) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page): urgent first, then by arrival (oldest first)."""
    if filters.status not in STATUS_FILTERS:
        raise ValueError(f"unknown status filter {filters.status!r}")
    conditions: list[ColumnElement[bool]] = []
    if filters.status == "to_review":
        conditions.append(StudyRow.pending.is_(True))
    elif filters.status == "signed":
        conditions.append(StudyRow.pending.is_(False))
    elif filters.status != "all":
        conditions.append(StudyRow.status.in_(STATUS_FILTERS[filters.status]))
    if filters.urgent is not None:
        conditions.append(StudyRow.urgent.is_(filters.urgent))
    if filters.flagged is not None:
        conditions.append(StudyRow.flag_count > 0 if filters.flagged else StudyRow.flag_count == 0)
    if filters.out_of_scope is not None:
        conditions.append(StudyRow.out_of_scope.is_(filters.out_of_scope))
    if filters.site:
        conditions.append(StudyRow.site == filters.site)
    total = session.execute(
        select(func.count()).select_from(StudyRow).where(*conditions)
    ).scalar_one()
    # Plain rows of the listed columns, not ORM objects: a page is read, never changed.
    rows = session.execute(
        select(*_SUMMARY_COLUMNS)
        .where(*conditions)
        .order_by(StudyRow.urgent.desc(), StudyRow.received_at, StudyRow.id)
        .limit(filters.limit)
        .offset(filters.offset)
    )
    return int(total), [_summary(r) for r in rows]


def sites(session: Session) -> list[str]:
    return [s for s in session.execute(select(StudyRow.site).distinct()).scalars() if s]


def study_detail(session: Session, study_id: str) -> dict[str, Any]:
    """Everything the review page shows for one study (KeyError if there is none)."""
    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    draft = session.get(Draft, study_id)
    sheet = session.get(Worksheet, study_id)
    images = session.execute(
        select(ImageRow).where(ImageRow.study_id == study_id).order_by(ImageRow.position)
    ).scalars()
    items = review_items(draft, sheet)
    signed = signed_reports(session, study_id)
    return {
        **_summary(row),
        "scope": list(row.scope),
        "ood_score": row.ood_score,
        "manufacturer": row.manufacturer,
        "modality": row.modality,
        "error": row.error,
        "images": [
            {"position": i.position, "view": i.view, "rows": i.rows, "columns": i.columns}
            for i in images
        ],
        "draft": None
        if draft is None
        else {
            "model": draft.model,
            "verifier": draft.verifier,
            "text": draft.text,
            "notice": draft.notice,
            "heatmaps": sorted(draft.heatmaps),
        },
        "items": [item.__dict__ | {"reasons": list(item.reasons)} for item in items],
        "text": current_text(draft, sheet) if not signed else signed[0].text,
        "text_edited": bool(sheet and sheet.text_edited),
        "signed": [
            {
                "kind": s.kind,
                "text": s.text,
                "signed_by": s.signed_by_name,
                "signed_at": as_utc(s.signed_at).isoformat(),
            }
            for s in signed
        ],
    }


def export_content(session: Session, study_id: str) -> ExportContent:
    """What an export of the study states now: the signed report, or the draft."""
    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    signed = signed_reports(session, study_id)
    if signed:
        final = signed[0]
        addenda = tuple(s.text for s in signed[1:])
        return ExportContent(
            study_id=row.id,
            study_instance_uid=row.study_instance_uid,
            status=ReportStatus.AMENDED if addenda else ReportStatus.FINAL,
            text=final.text,
            findings=tuple(Finding.from_dict(f) for f in final.findings),
            study_date=row.study_date,
            issued=as_utc(signed[-1].signed_at),
            signed_by=final.signed_by_name,
            addenda=addenda,
            institution=row.site,
        )
    draft = session.get(Draft, study_id)
    sheet = session.get(Worksheet, study_id)
    findings = kept_findings(review_items(draft, sheet), sheet)
    created = draft.created_at if draft is not None else row.received_at
    return ExportContent(
        study_id=row.id,
        study_instance_uid=row.study_instance_uid,
        status=ReportStatus.DRAFT,
        text=current_text(draft, sheet),
        findings=tuple(findings),
        study_date=row.study_date,
        issued=as_utc(created),
        institution=row.site,
    )
