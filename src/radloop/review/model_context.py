"""The clinical context the drafting worker gives the model, and the record kept of it.

Before a stored study is drafted, :func:`gather_for_study` adds to what its DICOM header says
(the order's indication and history) the report signed for its prior study (final text and
addenda, with the signing date; a registered finder's report from the PACS when radloop has
none), the FHIR Bundles uploaded beside its images, and what the configured FHIR server holds
for the patient (``Settings.context_fhir``). None of it can stop the draft: what cannot be
used becomes a note. :func:`with_record` puts the notes with the draft's record of its
context (``DraftReport.context``), which the worker stores in ``drafts.context`` and the study
page shows as "What the model was given".
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from radloop.context import (
    Gathered,
    bundles_beside,
    find_prior_reports,
    gather_context,
    prior_report_item,
)
from radloop.review.db import ImageRow, SignedReport, StudyRow
from radloop.review.store import Store
from radloop.study import ContextItem, Study

__all__ = ["gather_for_study", "with_record"]

log = logging.getLogger("radloop.review.context")


def _prior_report(session: Any, row: StudyRow, study: Study) -> list[ContextItem]:
    prior = session.get(StudyRow, row.prior_id) if row.prior_id else None
    if prior is None:
        return []
    signed = list(
        session.execute(
            select(SignedReport).where(SignedReport.study_id == prior.id).order_by(SignedReport.id)
        ).scalars()
    )
    final = next((s for s in signed if s.kind == "final"), None)
    if final is None:
        return []
    addenda = [(s.text, s.signed_at) for s in signed if s.kind != "final"]
    return [
        prior_report_item(
            final.text,
            film_date=study.metadata.study_date or row.study_date,
            prior_date=prior.study_date,
            signed_at=final.signed_at,
            source="radloop",
            addenda=addenda,
        )
    ]


def _files(store: Store, session: Any, row: StudyRow) -> list[Path]:
    originals = session.execute(
        select(ImageRow.original).where(ImageRow.study_id == row.id).order_by(ImageRow.position)
    ).scalars()
    files = [store.path(o) for o in originals if o]
    if files:
        return files
    source = store.path(row.source)
    return [source / "study"] if source.is_dir() else [source]


def gather_for_study(store: Store, study_id: str, study: Study, model: Any = None) -> Gathered:
    """``study`` (read from the store) with its prior report, the Bundles beside its images
    and the FHIR server's items for its patient; notes say what could not be used. Nothing is
    gathered for a ``model`` that reads the images only (a structured predictor)."""
    from radloop.models import FindingsPredictor

    if isinstance(model, FindingsPredictor):
        return Gathered(study)
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise KeyError(study_id)
        priors = _prior_report(session, row, study)
        files = _files(store, session, row)
        patient_key = row.patient_key
    notes: list[str] = []
    try:
        bundles = bundles_beside(files)
    except OSError as error:  # a kept upload that went missing: draft without its Bundles
        bundles = []
        notes.append(f"FHIR Bundles beside the images not read: {error}")
    if not priors and patient_key is not None:
        priors = find_prior_reports(study, patient_key)
    gathered = gather_context(
        study,
        bundles=bundles,
        prior_reports=priors,
        fhir=store.settings.context_fhir,
        patient_key=patient_key,
    )
    for note in gathered.notes:
        log.warning("study %s: %s", study_id, note)
    return dataclasses.replace(gathered, notes=(*notes, *gathered.notes))


def with_record(drafted: Any, study: Study, model: Any, gathered: Gathered, max_chars: int) -> Any:
    """``drafted`` whose ``context`` record also holds the notes of ``gathered``. A draft
    whose model gave no reply records the context that was sent; a model that reads the
    images only (a structured predictor) is recorded as given no context."""
    from radloop.assist.prompts import context_section
    from radloop.models import FindingsPredictor

    record: dict[str, Any]
    if drafted.context is not None:
        record = dict(drafted.context)
    elif isinstance(model, FindingsPredictor):
        record = {"images_only": True}
    else:
        record = context_section(study, max_chars=max_chars).record()
    record["notes"] = list(gathered.notes)
    return dataclasses.replace(drafted, context=record)
