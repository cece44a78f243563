"""Read models shared by the pages and the JSON API: the worklist and one study's detail."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from radloop.report import Finding, ReportStatus
from radloop.review.db import Draft, ImageRow, SignedReport, StudyRow, Worksheet
from radloop.review.export import Addendum, ExportContent
from radloop.review.store import as_utc
from radloop.review.worksheet import current_text, kept_findings, review_items, signed_reports

__all__ = [
    "COUNT_UP_TO",
    "STATUS_FILTERS",
    "CountCache",
    "WorklistFilter",
    "export_content",
    "next_unsigned",
    "row_summary",
    "study_detail",
    "worklist",
    "worklist_rows",
]

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


_studies = StudyRow.__table__.c
_drafts = Draft.__table__.c
_sheets = Worksheet.__table__.c
_images = ImageRow.__table__.c
_signed = SignedReport.__table__.c
_abstained_draft = Draft.__table__.alias("abstained_draft")

# Read paths run as Core statements built once (bound parameters for what varies) and read
# by position: the pages are read far more often than anything changes, and building the
# statements and loading ORM objects cost more than the queries themselves.
_SUMMARY_COLUMNS = (
    _studies.id,
    _studies.study_instance_uid,
    _studies.received_at,
    _studies.study_date,
    _studies.status,
    _studies.urgent,
    # As text: a worklist row is then hashable and its summary is memoised by its content.
    cast(_studies.triage_reasons, Text).label("triage_reasons"),
    _studies.flag_count,
    _studies.not_checked,
    _studies.out_of_scope,
    _studies.scope_outcome,
    _studies.ood,
    _studies.site,
    _studies.age,
    _studies.sex,
    _studies.view,
    _studies.prior_id,
    _studies.error,
    _studies.patient_key,
    _studies.patient_name,
    _studies.birth_date,
    _studies.accession_number,
    # The model declined the film (outside its validated domain): the draft is empty.
    select(_abstained_draft.c.abstained.is_not(None))
    .where(_abstained_draft.c.study_id == _studies.id)
    .correlate(StudyRow.__table__)
    .scalar_subquery()
    .label("abstained"),
)
_N_SUMMARY = len(_SUMMARY_COLUMNS)


def _summary(row: Sequence[Any]) -> dict[str, Any]:
    (
        id_,
        uid,
        received_at,
        study_date,
        status,
        urgent,
        reasons,
        flag_count,
        not_checked,
        out_of_scope,
        scope_outcome,
        ood,
        site,
        age,
        sex,
        view,
        prior_id,
        error,
        patient_id,
        patient_name,
        birth_date,
        accession_number,
        abstained,
    ) = row[:_N_SUMMARY]
    return {
        "id": id_,
        "study_instance_uid": uid,
        "received_at": as_utc(received_at).isoformat(),
        "study_date": study_date.isoformat() if study_date else None,
        "status": status,
        "urgent": urgent,
        "triage_reasons": json.loads(reasons) if isinstance(reasons, str) else list(reasons),
        "flag_count": flag_count,
        "not_checked": not_checked or 0,
        "out_of_scope": out_of_scope,
        "scope_outcome": scope_outcome,
        "ood": ood,
        "site": site,
        "age": age,
        "sex": sex,
        "view": view,
        "prior_id": prior_id,
        "error": error,
        "patient_id": patient_id,
        "patient_name": patient_name,
        "birth_date": birth_date.isoformat() if birth_date else None,
        "accession_number": accession_number,
        "abstained": bool(abstained),
    }


@functools.lru_cache(maxsize=128)
def _worklist_statements(
    status: str, urgent: bool | None, flagged: bool | None, out_of_scope: bool | None, site: bool
) -> tuple[Select[Any], Select[Any]]:
    """(count, page) for one combination of filters; site, limit and offset are parameters."""
    conditions: list[ColumnElement[bool]] = []
    if status == "to_review":
        conditions.append(_studies.pending.is_(True))
    elif status == "signed":
        conditions.append(_studies.pending.is_(False))
    elif status != "all":
        conditions.append(_studies.status.in_(STATUS_FILTERS[status]))
    if urgent is not None:
        conditions.append(_studies.urgent.is_(urgent))
    if flagged is not None:
        conditions.append(_studies.flag_count > 0 if flagged else _studies.flag_count == 0)
    if out_of_scope is not None:
        conditions.append(_studies.out_of_scope.is_(out_of_scope))
    if site:
        conditions.append(_studies.site == bindparam("site"))
    # Counted up to a bound: the worklist needs "how many, or at least how many", and an
    # exact count of a long queue is a scan of all of it on every view.
    counted = select(literal(1)).select_from(StudyRow.__table__).where(*conditions)
    count = select(func.count()).select_from(
        counted.limit(bindparam("count_up_to", type_=Integer)).subquery()
    )
    page = (
        select(*_SUMMARY_COLUMNS)
        .where(*conditions)
        .order_by(_studies.urgent.desc(), _studies.received_at, _studies.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return count, page


Bind = Session | Connection
"""A read runs on a Connection, or on the connection of a Session (same transaction)."""


def _connection(bind: Bind) -> Connection:
    return bind.connection() if isinstance(bind, Session) else bind


COUNT_UP_TO = 1000
"""Worklists count their studies up to this many past the page shown (then: "at least")."""


class CountCache:
    """Worklist counts by filter for ``ttl_s`` seconds (one per server process).

    The bounded count scans up to :data:`COUNT_UP_TO` index entries past the page on every
    view: under load, with every reader on the same queue, it is most of a worklist's
    database time. The rows of the page are always read fresh; only "how many" may lag by
    ``ttl_s`` seconds.
    """

    def __init__(self, ttl_s: float = 2.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], count: Callable[[], int]) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = count()
        with self._lock:
            if len(self._entries) > 1024:  # filters are few; pages of a long queue are many
                self._entries.clear()
            self._entries[key] = (now + self.ttl_s, value)
        return value


def worklist_rows(
    bind: Bind, filters: WorklistFilter, counts: CountCache | None = None
) -> tuple[int, bool, list[Row[Any]]]:
    """(total, exact, one page of rows): urgent first, then by arrival (oldest first).

    The total is exact when ``exact``; otherwise at least that many match (counting stops
    :data:`COUNT_UP_TO` studies past the end of the page). With ``counts`` the total may be
    up to its ``ttl_s`` seconds old.

    Each row holds plain values only (hashable): :func:`row_summary` turns one into the
    dict the pages and the API show, and caches by the row's whole content, so a changed
    study never meets a stale summary.
    """
    if filters.status not in STATUS_FILTERS:
        raise ValueError(f"unknown status filter {filters.status!r}")
    count, page = _worklist_statements(
        filters.status, filters.urgent, filters.flagged, filters.out_of_scope, bool(filters.site)
    )
    connection = _connection(bind)
    params = {"site": filters.site} if filters.site else {}
    up_to = filters.offset + filters.limit + COUNT_UP_TO

    def counted() -> int:
        return int(connection.execute(count, {**params, "count_up_to": up_to + 1}).scalar_one())

    key = (filters.status, filters.urgent, filters.flagged, filters.out_of_scope, filters.site)
    total = counted() if counts is None else counts.get((*key, up_to), counted)
    rows = connection.execute(page, {**params, "limit": filters.limit, "offset": filters.offset})
    return min(total, up_to), total <= up_to, list(rows)


@functools.lru_cache(maxsize=4096)
def row_summary(row: Row[Any]) -> Mapping[str, Any]:
    """The worklist summary of one row from :func:`worklist_rows` (shared: do not change)."""
    return MappingProxyType(_summary(row))


def worklist(
    bind: Bind, filters: WorklistFilter, counts: CountCache | None = None
) -> tuple[int, bool, list[dict[str, Any]]]:
    """(total, exact, one page of summaries): urgent first, then by arrival."""
    total, exact, rows = worklist_rows(bind, filters, counts)
    return total, exact, [dict(row_summary(row)) for row in rows]


_ORDER = (_studies.urgent.desc(), _studies.received_at, _studies.id)
# Studies a reader can open and sign now: unsigned, drafted (or failed: read without a draft).
_SIGNABLE = (_studies.pending.is_(True), _studies.status.in_(("ready", "failed")))
_FIRST_PENDING = (
    select(_studies.id)
    .where(*_SIGNABLE, _studies.id != bindparam("after"))
    .order_by(*_ORDER)
    .limit(1)
)
_POSITION = select(_studies.urgent, _studies.received_at).where(_studies.id == bindparam("after"))


def next_unsigned(bind: Bind, after: str) -> str | None:
    """The id of the first unsigned study after ``after`` in worklist order (urgent first,
    then by arrival), wrapping round to the top; None when no other study waits. Studies
    still queued or drafting are passed over: they cannot be signed yet."""
    connection = _connection(bind)
    here = connection.execute(_POSITION, {"after": after}).first()
    if here is not None:
        urgent, received = here
        same = and_(
            _studies.urgent.is_(bool(urgent)),
            or_(
                _studies.received_at > received,
                and_(_studies.received_at == received, _studies.id > after),
            ),
        )
        later = or_(_studies.urgent.is_(False), same) if urgent else same
        found = connection.execute(
            select(_studies.id).where(*_SIGNABLE, later).order_by(*_ORDER).limit(1)
        ).scalar()
        if found is not None:
            return str(found)
    first = connection.execute(_FIRST_PENDING, {"after": after}).scalar()
    return None if first is None else str(first)


_SITES = select(_studies.site).distinct()


def sites(bind: Bind) -> list[str]:
    return [s for s in _connection(bind).execute(_SITES).scalars() if s]


class _DraftView(NamedTuple):
    model: str
    verifier: str
    text: str
    notice: str | None
    heatmaps: dict[str, Any]
    findings: list[Any]
    checks: list[Any]
    domain: dict[str, Any] | None
    calibrated: bool
    banner: str | None
    failure: dict[str, Any] | None
    abstained: str | None
    warnings: list[Any]
    unaddressed: list[Any]
    context: dict[str, Any] | None


class _SheetView(NamedTuple):
    decisions: dict[str, Any]
    text: str | None
    text_edited: bool
    version: int


_DETAIL = (
    select(
        *_SUMMARY_COLUMNS,
        _studies.scope,
        _studies.ood_score,
        _studies.manufacturer,
        _studies.modality,
        _drafts.study_id,
        _drafts.model,
        _drafts.verifier,
        _drafts.text,
        _drafts.notice,
        _drafts.heatmaps,
        _drafts.findings,
        _drafts.checks,
        _drafts.domain,
        _drafts.calibrated,
        _drafts.banner,
        _drafts.failure,
        _drafts.abstained,
        _drafts.warnings,
        _drafts.unaddressed,
        _drafts.context,
        _sheets.study_id,
        _sheets.decisions,
        _sheets.text,
        _sheets.text_edited,
        _sheets.version,
    )
    .select_from(
        StudyRow.__table__.outerjoin(Draft.__table__, _drafts.study_id == _studies.id).outerjoin(
            Worksheet.__table__, _sheets.study_id == _studies.id
        )
    )
    .where(_studies.id == bindparam("study_id"))
)
_IMAGES = (
    select(_images.position, _images.view, _images.rows, _images.columns)
    .where(_images.study_id == bindparam("study_id"))
    .order_by(_images.position)
)
_SIGNED = (
    select(_signed.kind, _signed.text, _signed.signed_by_name, _signed.signed_at)
    .where(_signed.study_id == bindparam("study_id"))
    .order_by(_signed.id)
)


def study_detail(bind: Bind, study_id: str) -> dict[str, Any]:
    """Everything the review page shows for one study (KeyError if there is none)."""
    connection = _connection(bind)
    params = {"study_id": study_id}
    row = connection.execute(_DETAIL, params).first()
    if row is None:
        raise KeyError(study_id)
    scope, ood_score, manufacturer, modality = row[_N_SUMMARY : _N_SUMMARY + 4]
    drafted = _N_SUMMARY + 4 + len(_DraftView._fields) + 1
    draft_id, *draft_values = row[_N_SUMMARY + 4 : drafted]
    sheet_id, *sheet_values = row[drafted:]
    draft = _DraftView(*draft_values) if draft_id is not None else None
    sheet = _SheetView(*sheet_values) if sheet_id is not None else None
    images = connection.execute(_IMAGES, params)
    signed = connection.execute(_SIGNED, params).all()
    items = review_items(draft, sheet)
    return {
        **_summary(row),
        "scope": list(scope),
        "ood_score": ood_score,
        "manufacturer": manufacturer,
        "modality": modality,
        "images": [
            {"position": position, "view": view, "rows": rows, "columns": columns}
            for position, view, rows, columns in images
        ],
        "draft": None
        if draft is None
        else {
            "model": draft.model,
            "verifier": draft.verifier,
            "text": draft.text,
            "notice": draft.notice,
            "heatmaps": sorted(draft.heatmaps),
            "domain": draft.domain,
            "calibrated": bool(draft.calibrated),
            "banner": draft.banner,
            "failure": draft.failure,
            "abstained": draft.abstained,
            "warnings": list(draft.warnings or []),
            "unaddressed": list(draft.unaddressed or []),
            "model_context": draft.context,
        },
        "items": [item.__dict__ | {"reasons": list(item.reasons)} for item in items],
        "text": current_text(draft, sheet) if not signed else signed[0].text,
        "text_edited": bool(sheet and sheet.text_edited),
        "version": sheet.version if sheet is not None else 0,
        "signed": [
            {
                "kind": kind,
                "text": text,
                "signed_by": signed_by,
                "signed_at": as_utc(signed_at).isoformat(),
            }
            for kind, text, signed_by, signed_at in signed
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
        amendments = tuple(
            Addendum(
                text=s.text,
                signed_by=s.signed_by_name,
                signed_at=as_utc(s.signed_at),
                findings=tuple(Finding.from_dict(f) for f in s.findings),
            )
            for s in signed[1:]
        )
        return ExportContent(
            study_id=row.id,
            study_instance_uid=row.study_instance_uid,
            status=ReportStatus.AMENDED if amendments else ReportStatus.FINAL,
            text=final.text,
            findings=tuple(Finding.from_dict(f) for f in final.findings),
            study_date=row.study_date,
            issued=as_utc(signed[-1].signed_at),
            signed_by=final.signed_by_name,
            addenda=tuple(a.text for a in amendments),
            institution=row.site,
            signed_at=as_utc(final.signed_at),
            amendments=amendments,
            **_identity(row),
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
        **_identity(row),
    )


def _identity(row: StudyRow) -> dict[str, Any]:
    """The patient and order an export names (for a FHIR server or a RIS)."""
    return {
        "patient_id": row.patient_key,
        "patient_name": row.patient_name,
        "patient_birth_date": row.birth_date,
        "patient_sex": row.sex,
        "accession_number": row.accession_number,
    }
