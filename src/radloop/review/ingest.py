"""Ingest: studies from files, folders, zips, uploads and STOW-RS onto the worklist.

Everything is read and checked by :func:`radloop.study.load_studies` (its size limits, zip
checks and typed errors) before anything is kept: a corrupt file, an over-size upload, a zip
bomb or a path-traversal name leaves nothing behind. Accepted uploads are kept as they arrived
under ``<data_dir>/originals/``; each new study gets viewer PNGs, a row and a drafting job.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from radloop.errors import InputError
from radloop.review.db import ImageRow, Job, StudyRow, utcnow
from radloop.review.identity import read_identity
from radloop.review.render import image_png, image_stats
from radloop.review.store import Store
from radloop.study import Study, load_files, load_studies

__all__ = [
    "IngestResult",
    "UnsafeNameError",
    "ingest_path",
    "load_stored_study",
    "safe_name",
    "staging_dir",
]

_FRONTAL = ("PA", "AP")


class UnsafeNameError(InputError):
    """An uploaded file name that is empty, hidden or tries to leave its folder."""


@dataclass
class IngestResult:
    """Study ids added to the worklist, and UIDs that were already there."""

    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "existing": self.existing}


def safe_name(name: str) -> str:
    """An uploaded file's name if it is a plain file name; UnsafeNameError otherwise."""
    base = name.replace("\\", "/")
    if not base or "/" in base or base in (".", "..") or base.startswith(".") or "\x00" in base:
        raise UnsafeNameError(
            "a plain file name (no folders, no '..', not hidden)", repr(name)[:120], source="upload"
        )
    return base[:200]


def staging_dir(store: Store) -> Path:
    """A fresh folder under ``<data_dir>/incoming`` for one upload, before it is checked."""
    folder = store.data_dir / "incoming" / secrets.token_hex(8)
    folder.mkdir(parents=True)
    return folder


def _frontal(study: Study) -> int:
    for i, image in enumerate(study.images):
        if (image.view_position or "").upper() in _FRONTAL:
            return i
    return 0


def _source_kind(study: Study) -> str:
    suffix = study.images[0].source.suffix.lower()
    return {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}.get(suffix, "dicom")


def _link_prior(session: Session, row: StudyRow) -> None:
    """Link ``row`` to the patient's latest earlier study, and later studies to ``row``."""
    if row.patient_key is None or row.study_date is None:
        return
    same = select(StudyRow).where(StudyRow.patient_key == row.patient_key, StudyRow.id != row.id)
    others = list(session.execute(same).scalars())
    earlier = [
        (s.study_date, s.id)
        for s in others
        if s.study_date is not None and s.study_date < row.study_date
    ]
    if earlier:
        row.prior_id = max(earlier)[1]
    for later in others:
        if later.study_date is None or later.study_date <= row.study_date:
            continue
        current = session.get(StudyRow, later.prior_id) if later.prior_id else None
        if current is None or (current.study_date or row.study_date) < row.study_date:
            later.prior_id = row.id


def _add_study(store: Store, session: Session, study: Study, source: str) -> StudyRow:
    meta = study.metadata
    study_id = secrets.token_hex(8)
    frontal = study.images[_frontal(study)]
    identity = read_identity(study)
    row = StudyRow(
        id=study_id,
        study_instance_uid=study.study_instance_uid[:128],
        patient_key=identity.patient_id,  # also finds the patient's priors
        patient_name=identity.patient_name,
        birth_date=identity.birth_date,
        accession_number=identity.accession_number,
        study_date=meta.study_date,
        received_at=utcnow(),
        status="queued",
        pending=True,
        site=meta.institution,
        manufacturer=meta.manufacturer,
        age=int(meta.patient_age) if meta.patient_age is not None else None,
        sex=meta.patient_sex if meta.patient_sex in ("M", "F") else None,
        view=frontal.view_position or meta.view_position,
        modality=meta.modality,
        source=source,
        source_kind=_source_kind(study),
        image_stats=image_stats(frontal.pixels),
        triage_reasons=[],
        scope=[],
    )
    folder = store.study_dir(study_id)
    folder.mkdir(parents=True, exist_ok=True)
    session.add(row)
    session.flush()
    for position, image in enumerate(study.images):
        name = f"image-{position}.png"
        (folder / name).write_bytes(image_png(image.pixels, store.settings.viewer_max_side))
        session.add(
            ImageRow(
                study_id=study_id,
                position=position,
                sop_instance_uid=image.sop_instance_uid,
                view=image.view_position,
                rows=image.shape[0],
                columns=image.shape[1],
                png=f"studies/{study_id}/{name}",
                original=_original(store, image.source),
            )
        )
    _link_prior(session, row)
    session.add(Job(study_id=study_id))
    return row


def ingest_path(store: Store, path: Path, *, move: bool = False) -> IngestResult:
    """Read every study in ``path`` (file, folder or zip), keep it and queue its draft.

    ``path`` is first copied (or, with ``move``, moved: uploads) into
    ``<data_dir>/originals/<batch>/`` and read from there, so what is stored is exactly what
    was read; if any file cannot be read the batch is removed and nothing is stored. Studies
    whose Study Instance UID is already stored are skipped and reported as existing (PNG and
    JPEG files carry no UIDs: theirs derive from where they are kept, so a second upload of
    the same picture is a new study).
    """
    batch = store.data_dir / "originals" / secrets.token_hex(8)
    batch.parent.mkdir(parents=True, exist_ok=True)
    result = IngestResult()
    try:
        kept = _keep(path, batch, move)
        studies = load_studies(kept, limits=store.settings.limits)
        relative = str(kept.relative_to(store.data_dir.resolve()))
        with store.sessions() as session:
            uids = [s.study_instance_uid[:128] for s in studies]
            known = set(
                session.execute(
                    select(StudyRow.study_instance_uid).where(StudyRow.study_instance_uid.in_(uids))
                ).scalars()
            )
            result.existing = [uid for uid in uids if uid in known]
            for study in studies:
                if study.study_instance_uid[:128] not in known:
                    result.added.append(_add_study(store, session, study, relative).id)
            session.commit()
    except BaseException:
        shutil.rmtree(batch, ignore_errors=True)
        for study_id in result.added:
            shutil.rmtree(store.study_dir(study_id), ignore_errors=True)
        raise
    if not result.added:
        shutil.rmtree(batch, ignore_errors=True)
    return result


def _keep(path: Path, batch: Path, move: bool) -> Path:
    """Copy or move ``path`` into ``batch``; the kept path (absolute)."""
    batch.mkdir()
    target = batch / path.name
    if move:
        shutil.move(str(path), target)
    elif path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copy2(path, target)
    return target.resolve()


def _original(store: Store, source: Path) -> str | None:
    """``source`` relative to the data directory, if it is under it."""
    root = store.data_dir.resolve()
    path = Path(source)
    resolved = path.parent.resolve() / path.name
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else None


def load_stored_study(store: Store, row: StudyRow) -> Study:
    """The study of a row, read again from its kept originals: only its own files when the
    store knows them (every study ingested since they were recorded), else its whole upload."""
    query = select(ImageRow.original).where(ImageRow.study_id == row.id).order_by(ImageRow.position)
    session = object_session(row)  # the caller's transaction when the row came from one
    if session is not None:
        originals = list(session.execute(query).scalars())
    else:
        with store.reading() as connection:
            originals = list(connection.execute(query).scalars())
    limits = store.settings.limits
    if originals and all(originals):
        studies = load_files([store.path(o) for o in originals if o], limits=limits)
    else:
        studies = load_studies(store.path(row.source), limits=limits)
    for study in studies:
        if study.study_instance_uid[:128] == row.study_instance_uid:
            return study
    raise InputError(
        f"study {row.study_instance_uid} in {row.source}", "no such study", source=row.source
    )
