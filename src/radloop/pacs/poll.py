"""``radloop pacs poll``: new studies from the PACS onto the worklist, each fetched once.

One poll searches the PACS (QIDO-RS) for series of the configured modalities and body parts
in studies dated from ``since`` on: by default the date of the last completed poll less
``RADLOOP_PACS_LOOKBACK_DAYS`` (studies are often stored a while after their date), or that many
days before today on the first poll. Each study not seen before is claimed in ``pacs_seen``,
retrieved series by series (WADO-RS) into a staging folder and put through the same ingestion
as an upload (:func:`radloop.review.ingest.ingest_path`): the same size limits, decoded-size
budgets and typed errors, and nothing half-written when one of them refuses the study.

A study is taken only once it has settled: the first poll that finds it records it in
``pacs_seen`` as ``settling`` with the signature of its series and instance counts, and a later
poll takes it when the signature is unchanged and at least ``RADLOOP_PACS_POLL_SETTLE_S`` has
passed (a changed signature starts the wait again). A modality stores a study's images one by
one, sometimes minutes apart; without the wait a poll in between would put the study on the
worklist without its later images, which no later poll would fetch. ``0`` takes a study the
first time it is seen.

A study is never fetched twice: one on the worklist already (uploaded, sent by STOW-RS or
C-STORE) is skipped, and so is one in ``pacs_seen`` (fetched, or refused by the limits, with
the reason kept). A study whose retrieval failed for a passing reason (the PACS down, a
timeout) is tried again by later polls, :data:`~radloop.pacs.tables.MAX_FETCH_ATTEMPTS` times
in all. Two pollers at once cannot both fetch a study: the claim is a row insert that only one
of them wins.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from radloop.errors import InputError
from radloop.pacs.config import PacsConfig
from radloop.pacs.tables import MAX_FETCH_ATTEMPTS, PacsPoll, PacsSeen
from radloop.pacs.web import PacsWeb, SeriesHit, make_client, retrieve_series, search_series
from radloop.review.db import StudyRow, utcnow
from radloop.review.ingest import ingest_path, staging_dir
from radloop.review.store import Store, as_utc

__all__ = ["PollResult", "default_since", "poll_once", "record_seen", "refusal", "signature"]

log = logging.getLogger("radloop.pacs.poll")

STALE_CLAIM = datetime.timedelta(hours=1)
"""A ``fetching`` claim older than this belongs to a poller that died: it may be taken over."""


@dataclass
class PollResult:
    """What one poll found and did. ``fetched`` and ``added`` list Study Instance UIDs
    retrieved and the worklist ids they got; ``refused`` and ``failed`` map UIDs to why;
    ``settling`` lists studies found but not yet taken (still arriving, or first seen)."""

    since: str
    found: int = 0
    skipped: int = 0
    fetched: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    instances: int = 0
    bytes: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    settling: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_since(
    store: Store, config: PacsConfig, today: datetime.date | None = None
) -> datetime.date:
    """The study date a poll searches from: the last completed poll's date (UTC) less the
    look-back, or the look-back before today."""
    with store.sessions() as session:
        last = session.execute(
            select(PacsPoll.started_at)
            .where(PacsPoll.finished_at.is_not(None), PacsPoll.error.is_(None))
            .order_by(PacsPoll.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    start = as_utc(last).date() if last is not None else today or utcnow().date()
    return start - datetime.timedelta(days=config.lookback_days)


def poll_once(
    store: Store,
    config: PacsConfig,
    *,
    since: datetime.date | None = None,
    web: PacsWeb | None = None,
) -> PollResult:
    """Search the PACS once and take every new study (see the module's docstring)."""
    started = time.perf_counter()
    web = web or make_client(config)
    since = since or default_since(store, config)
    with store.sessions() as session:
        poll = PacsPoll(started_at=utcnow(), since=since)
        session.add(poll)
        session.commit()
        poll_id = poll.id
    result = PollResult(since=since.isoformat())
    error: str | None = None
    try:
        hits = search_series(web, config, since)
        studies: dict[str, list[SeriesHit]] = defaultdict(list)
        for hit in hits:
            studies[hit.study_instance_uid].append(hit)
        result.found = len(studies)
        for uid in _new_studies(store, list(studies)):
            if _settled(store, uid, studies[uid], config.poll_settle_s):
                _take(store, web, uid, studies[uid], result)
            else:
                result.settling.append(uid)
        taken = len(result.fetched) + len(result.refused) + len(result.failed)
        taken += len(result.settling)
        result.skipped = result.found - taken
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"[:1000]
        raise
    finally:
        result.seconds = round(time.perf_counter() - started, 3)
        _finish_poll(store, poll_id, result, error)
    return result


def _finish_poll(store: Store, poll_id: int, result: PollResult, error: str | None) -> None:
    with store.sessions() as session:
        session.execute(
            update(PacsPoll)
            .where(PacsPoll.id == poll_id)
            .values(
                finished_at=utcnow(),
                found=result.found,
                fetched=len(result.fetched),
                refused=len(result.refused),
                failed=len(result.failed),
                error=error,
            )
        )
        session.commit()


def _new_studies(store: Store, uids: list[str]) -> list[str]:
    """Of ``uids``, those neither on the worklist nor settled in ``pacs_seen``."""
    if not uids:
        return []
    keys = [uid[:128] for uid in uids]
    with store.sessions() as session:
        listed = set(
            session.execute(
                select(StudyRow.study_instance_uid).where(StudyRow.study_instance_uid.in_(keys))
            ).scalars()
        )
        seen = {
            row.study_instance_uid: row
            for row in session.execute(
                select(PacsSeen).where(PacsSeen.study_instance_uid.in_(keys))
            ).scalars()
        }
    return [uid for uid in uids if uid[:128] not in listed and _open(seen.get(uid[:128]))]


def _open(row: PacsSeen | None) -> bool:
    """Whether a study with this ``pacs_seen`` row (None: none) may be fetched now."""
    if row is None or row.state == "settling":
        return True
    if row.state == "failed":
        return row.attempts < MAX_FETCH_ATTEMPTS
    return row.state == "fetching" and as_utc(row.updated_at) < utcnow() - STALE_CLAIM


def signature(series: list[SeriesHit]) -> str:
    """A hash of a study's series and their instance counts, as QIDO-RS listed them."""
    listed = sorted(f"{hit.series_instance_uid}:{hit.instances}" for hit in series)
    return hashlib.sha256("\n".join(listed).encode()).hexdigest()


def _settled(store: Store, uid: str, series: list[SeriesHit], settle_s: float) -> bool:
    """Whether the study may be taken now: unchanged since a poll at least ``settle_s`` ago.

    A study with no ``pacs_seen`` row, or whose signature changed, is recorded as
    ``settling`` (now) and waits; a failed study that is tried again needs no wait."""
    if settle_s <= 0:
        return True
    key, now, mark = uid[:128], utcnow(), signature(series)
    with store.sessions() as session:
        row = session.get(PacsSeen, key)
        if row is not None and row.state != "settling":
            return True  # failed before, or a stale claim: it settled then
        if row is not None and row.signature == mark:
            return as_utc(row.updated_at) <= now - datetime.timedelta(seconds=settle_s)
        if row is None:
            row = PacsSeen(study_instance_uid=key, source="qido-rs", attempts=0, first_seen_at=now)
            session.add(row)
        row.state, row.signature, row.updated_at = "settling", mark, now
        row.instances = sum(hit.instances or 0 for hit in series)
        try:
            session.commit()
        except IntegrityError:  # another poller recorded it meanwhile: it waits there
            session.rollback()
        return False


def _claim(store: Store, uid: str, source: str) -> bool:
    """Mark the study as being fetched by this poller; False if another one holds it."""
    key = uid[:128]
    now = utcnow()
    with store.sessions() as session:
        row = session.get(PacsSeen, key)
        if row is None:
            session.add(
                PacsSeen(
                    study_instance_uid=key,
                    source=source,
                    state="fetching",
                    attempts=1,
                    first_seen_at=now,
                    updated_at=now,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
            return True
        if not _open(row):
            return False
        taken = session.execute(
            update(PacsSeen)
            .where(
                PacsSeen.study_instance_uid == key,
                PacsSeen.state == row.state,
                PacsSeen.updated_at == row.updated_at,
            )
            .values(state="fetching", attempts=PacsSeen.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return getattr(taken, "rowcount", 0) == 1


def record_seen(
    store: Store,
    uid: str,
    state: str,
    *,
    source: str,
    study_id: str | None = None,
    instances: int = 0,
    error: str | None = None,
) -> None:
    """Write a study's outcome in ``pacs_seen`` (inserted if it has no row yet)."""
    key = uid[:128]
    now = utcnow()
    with store.sessions() as session:
        row = session.get(PacsSeen, key)
        if row is None:
            row = PacsSeen(study_instance_uid=key, source=source, attempts=1, first_seen_at=now)
            session.add(row)
        row.state, row.study_id, row.error, row.updated_at = state, study_id, error, now
        row.instances = instances
        try:
            session.commit()
        except IntegrityError:  # inserted by another process meanwhile: write over it
            session.rollback()
            session.execute(
                update(PacsSeen)
                .where(PacsSeen.study_instance_uid == key)
                .values(state=state, study_id=study_id, error=error, updated_at=now)
            )
            session.commit()


def refusal(store: Store, error: InputError, origin: str) -> str:
    """The typed error's message, naming ``origin`` instead of the staging file it was read
    from (removed with the refused study)."""
    text = str(error)
    source = error.source or ""
    root = str(store.data_dir.resolve())
    if source.startswith(root):
        text = text.replace(source, f"{origin}, instance file {Path(source).name}", 1)
    return text


def _take(
    store: Store, web: PacsWeb, uid: str, series: list[SeriesHit], result: PollResult
) -> None:
    """Claim, retrieve and ingest one study; its outcome goes into ``result``."""
    from radloop.review import audit

    if not _claim(store, uid, "qido-rs"):
        return
    staging = staging_dir(store)
    limits = store.settings.limits
    instances = size = 0
    try:
        for hit in series:
            count, written = retrieve_series(
                web,
                uid,
                hit.series_instance_uid,
                staging,
                budget=limits.max_study_bytes - size,
            )
            instances, size = instances + count, size + written
        ingested = ingest_path(store, staging, move=True)
    except InputError as error:  # the study itself: refused by the limits, not retried
        shutil.rmtree(staging, ignore_errors=True)
        reason = refusal(store, error, f"study {uid} from QIDO-RS/WADO-RS")
        record_seen(store, uid, "refused", source="qido-rs", instances=instances, error=reason)
        audit.record(
            store.sessions,
            "pacs",
            "ingest_refused",
            f"qido-rs:{uid}"[:200],
            {"error": reason},
            seal=store.seal,
        )
        log.info("study %s from the PACS refused: %s", uid, reason)
        result.refused[uid] = reason
        return
    except Exception as error:  # the PACS or the network: tried again by a later poll
        shutil.rmtree(staging, ignore_errors=True)
        reason = f"{type(error).__name__}: {error}"[:1000]
        record_seen(store, uid, "failed", source="qido-rs", instances=instances, error=reason)
        log.info("retrieving study %s from the PACS failed: %s", uid, reason)
        result.failed[uid] = reason
        return
    study_id = ingested.added[0] if ingested.added else None
    record_seen(store, uid, "fetched", source="qido-rs", study_id=study_id, instances=instances)
    audit.record(
        store.sessions,
        "pacs",
        "ingest",
        f"qido-rs:{uid}"[:200],
        ingested.to_dict() | {"instances": instances},
        seal=store.seal,
    )
    result.fetched.append(uid)
    result.added.extend(ingested.added)
    result.instances += instances
    result.bytes += size
