"""The drafting queue: jobs claimed under a lease, kept alive by a heartbeat, requeued when
their worker dies, retried with backoff up to a maximum, and failed with the reason after it.

A job is ``queued`` → ``running`` (claimed: a fresh random ``token``, ``lease_until`` =
now + lease) → ``done`` or ``failed``. Every write that ends a claim names the token, so a
worker whose lease ran out (it was paused, or its machine lost the network) can never
overwrite the job after another worker took it: its draft is dropped, not stored twice.

Claiming is one ``UPDATE … WHERE id IN (SELECT … LIMIT k) RETURNING``. PostgreSQL adds
``FOR UPDATE SKIP LOCKED`` to the inner select, so concurrent workers take different jobs
without waiting on one another; SQLite runs one writer at a time, which makes the same
statement atomic there. A PostgreSQL-only job library (procrastinate, pgqueuer) would do
this too, but not on the embedded SQLite default, so the queue stays this one table.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update

from radloop.review.db import Draft, Job, StudyRow, utcnow
from radloop.review.store import Store

__all__ = ["Claim", "JobQueue", "LeaseLostError", "backoff_s"]

log = logging.getLogger("radloop.review.jobs")


class LeaseLostError(RuntimeError):
    """The job's lease ran out and it was requeued: this worker's result is not stored."""


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: the token proves it at every write."""

    job_id: int
    study_id: str
    token: str
    attempt: int


def backoff_s(base: float, attempt: int, ceiling: float = 600.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``: ``base`` × 2^(attempt−1), capped."""
    return float(min(ceiling, base * 2 ** max(0, attempt - 1)))


class JobQueue:
    """The jobs table as a queue, for one worker (``name`` is written on what it claims)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        settings = store.settings
        self.lease = datetime.timedelta(seconds=settings.job_lease_s)
        self.max_attempts = settings.job_max_attempts
        self.backoff_base = settings.job_backoff_s

    # --- claiming --------------------------------------------------------------------------

    def claim(self, limit: int = 1) -> list[Claim]:
        """Up to ``limit`` queued jobs whose backoff has passed, now ours, oldest first."""
        if limit < 1:
            return []
        now = utcnow()
        ready = (
            select(Job.id)
            .where(Job.state == "queued", or_(Job.not_before.is_(None), Job.not_before <= now))
            .order_by(Job.id)
            .limit(limit)
        )
        # A read first, in its own transaction: an idle worker polls without writing (on
        # SQLite every write takes the database's one write lock, which the audit needs).
        with self.store.reading() as connection:
            if connection.execute(ready.limit(1)).first() is None:
                return []
        postgres = not self.store.settings.is_sqlite
        if postgres:
            ready = ready.with_for_update(skip_locked=True)
        token = secrets.token_hex(12)
        with self.store.sessions() as session:
            rows = session.execute(
                update(Job)
                .where(Job.id.in_(ready.scalar_subquery() if postgres else ready))
                .values(
                    state="running",
                    worker=self.name[:100],
                    token=token,
                    claimed_at=now,
                    heartbeat_at=now,
                    lease_until=now + self.lease,
                    attempts=Job.attempts + 1,
                )
                .returning(Job.id, Job.study_id, Job.attempts)
                .execution_options(synchronize_session=False)
            ).all()
            if rows:
                # One token per claim batch is fine (a job's id completes it); the studies
                # show that they are being drafted.
                session.execute(
                    update(StudyRow)
                    .where(StudyRow.id.in_([r.study_id for r in rows]))
                    .values(status="drafting")
                    .execution_options(synchronize_session=False)
                )
            session.commit()
        return [Claim(r.id, r.study_id, token, r.attempts) for r in sorted(rows)]

    def heartbeat(self, claims: Iterable[Claim]) -> int:
        """Renew the leases of ``claims`` still ours; how many were renewed."""
        held = list(claims)
        if not held:
            return 0
        now = utcnow()
        renewed = 0
        with self.store.sessions() as session:
            for token in {c.token for c in held}:
                ids = [c.job_id for c in held if c.token == token]
                renewed += session.execute(
                    update(Job)
                    .where(Job.id.in_(ids), Job.token == token, Job.state == "running")
                    .values(heartbeat_at=now, lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
            session.commit()
        return renewed

    # --- ending a claim --------------------------------------------------------------------

    @staticmethod
    def mark_done(
        session: Any, claim: Claim, *, state: str = "done", error: str | None = None
    ) -> None:
        """In the caller's transaction (the one that stores the draft): the job is done (or
        ``failed`` with ``error``, when what is stored is a failed draft).

        Raises :class:`LeaseLostError` if the job is no longer ours; the caller rolls back.
        This is the first write of that transaction, so on SQLite it takes the write lock
        before anything else is read.
        """
        taken = session.execute(
            update(Job)
            .where(Job.id == claim.job_id, Job.token == claim.token, Job.state == "running")
            .values(state=state, finished_at=utcnow(), lease_until=None, error=error)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            raise LeaseLostError(
                f"job {claim.job_id} (study {claim.study_id}) was taken back after its lease "
                "ran out; this result is dropped"
            )

    def retry_or_fail(self, claim: Claim, error: str) -> str:
        """After an attempt failed with ``error``: queue it again after a backoff, or, at the
        maximum attempts, fail it. Returns the job's new state (or ``lost`` if not ours)."""
        with self.store.sessions() as session:
            return self._retry_or_fail(session, claim.job_id, claim.token, claim.attempt, error)

    def _retry_or_fail(
        self, session: Any, job_id: int, token: str | None, attempts: int, error: str
    ) -> str:
        job = session.get(Job, job_id)
        if job is None or job.state != "running" or job.token != token:
            return "lost"
        now = utcnow()
        row = session.get(StudyRow, job.study_id)
        if attempts < self.max_attempts:
            wait = backoff_s(self.backoff_base, attempts)
            job.state, job.token, job.lease_until = "queued", None, None
            job.not_before = now + datetime.timedelta(seconds=wait)
            job.error = error[:2000]
            if row is not None and row.status == "drafting":
                row.status = "queued"
                row.error = (
                    f"attempt {attempts} of {self.max_attempts} failed ({error[:300]}); "
                    f"retrying in {wait:.0f} s"
                )
            session.commit()
            return "queued"
        job.state, job.token, job.lease_until, job.finished_at = "failed", None, None, now
        job.error = error[:2000]
        if row is not None and row.status in ("drafting", "queued"):
            # A failed draft keeps whatever urgency the scope guard and the evidence gave.
            row.status = "failed"
            row.error = f"drafting failed after {attempts} attempts: {error}"[:2000]
        session.commit()
        return "failed"

    def release(self, claims: Sequence[Claim]) -> int:
        """Give ``claims`` back unfinished (a worker stopping): queued again at once, and the
        attempt not counted."""
        released = 0
        with self.store.sessions() as session:
            for claim in claims:
                taken = session.execute(
                    update(Job)
                    .where(Job.id == claim.job_id, Job.token == claim.token, Job.state == "running")
                    .values(
                        state="queued",
                        token=None,
                        lease_until=None,
                        not_before=None,
                        attempts=Job.attempts - 1,
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
                if taken:
                    released += 1
                    session.execute(
                        update(StudyRow)
                        .where(StudyRow.id == claim.study_id, StudyRow.status == "drafting")
                        .values(status="queued")
                    )
            session.commit()
        return released

    # --- recovery --------------------------------------------------------------------------

    def requeue_expired(self) -> dict[str, int]:
        """Jobs whose lease ran out (their worker died): queued again with backoff, or failed
        at the maximum attempts. Run at start-up and periodically; safe to run anywhere."""
        now = utcnow()
        counts = {"requeued": 0, "failed": 0}
        with self.store.sessions() as session:
            expired = session.execute(
                select(Job.id, Job.token, Job.attempts, Job.worker).where(
                    Job.state == "running",
                    or_(Job.lease_until.is_(None), Job.lease_until < now),
                )
            ).all()
        for job_id, token, attempts, worker in expired:
            reason = f"the worker drafting it ({worker or 'unknown'}) stopped answering"
            with self.store.sessions() as session:
                state = self._retry_or_fail(session, job_id, token, attempts, reason)
            if state == "queued":
                counts["requeued"] += 1
            elif state == "failed":
                counts["failed"] += 1
        if expired:
            log.warning(
                "drafting jobs with expired leases: %d requeued, %d failed",
                counts["requeued"],
                counts["failed"],
            )
        return counts

    def requeue(self, study_id: str) -> bool:
        """An admin's requeue of a study whose draft failed: a fresh job, attempts from zero.

        The failed draft is removed (a queued study shows no draft); the reader's worksheet,
        with any report typed by hand, stays. False if the study is not in a failed state
        (nothing to requeue)."""
        with self.store.sessions() as session:
            changed = session.execute(
                update(StudyRow)
                .where(StudyRow.id == study_id, StudyRow.status == "failed")
                .values(status="queued", error=None)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if changed != 1:
                session.rollback()
                return False
            session.execute(delete(Draft).where(Draft.study_id == study_id))
            session.execute(
                update(Job)
                .where(Job.study_id == study_id, Job.state.in_(("failed", "done")))
                .values(state="superseded")
                .execution_options(synchronize_session=False)
            )
            session.add(Job(study_id=study_id))
            session.commit()
        return True
