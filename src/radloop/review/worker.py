"""Drafting: each queued study goes through scope → draft → safety layer onto the worklist.

The app holds no safety or model logic: a job calls :func:`radloop.safety.assess_study`,
:func:`radloop.assist.draft` and :func:`radloop.safety.check` and stores what they return.
A worker claims a job by moving it from ``queued`` to ``running`` with one conditional UPDATE,
so several worker processes (``radloop worker``) can share one PostgreSQL database; the
embedded default runs one worker thread inside the server.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from radloop.review.db import Draft, Job, StudyRow, utcnow
from radloop.review.ingest import load_stored_study
from radloop.review.render import heatmap_png
from radloop.review.store import Store
from radloop.study import Study

__all__ = ["NO_OOD", "DraftingWorker", "draft_study"]

log = logging.getLogger("radloop.review.worker")


def _scope(
    study: Study, options: Mapping[str, Any]
) -> tuple[str, list[dict[str, Any]], float | None]:
    """The study's scope outcome (the strictest of its images), reasons, and OOD score."""
    from radloop.errors import RadloopError
    from radloop.safety import assess_study, study_decision

    try:
        decisions = assess_study(study, **options)
    except RadloopError as error:
        # The guard itself could not run (a missing model file, say): the study is not
        # confirmed in scope, so the reader is told so on the worklist; drafting goes on.
        reason = {
            "code": "scope_check_failed",
            "text": f"the scope check could not run: {error}",
            "outcome": "flagged",
            "values": {},
        }
        return "flagged", [reason], None
    chosen = study_decision(decisions)  # a PA + lateral study is in scope through its PA
    outcome = chosen.outcome.value if chosen is not None else "accepted"
    # Each reason names its image: a PA + lateral study lists the lateral's refusal too.
    reasons = [
        r.to_dict() | {"image": image.view_position or f"image {i + 1}"}
        for i, (image, d) in enumerate(zip(study.images, decisions, strict=True))
        for r in d.reasons
    ]
    ood = next(
        (
            float(r["values"]["score"])
            for r in reasons
            if r["code"] == "out_of_distribution" and "score" in r["values"]
        ),
        None,
    )
    return outcome, reasons, ood


def _save_heatmaps(store: Store, study_id: str, checks: Any, output: Any) -> dict[str, str]:
    saved: dict[str, str] = {}
    heatmaps = getattr(output, "heatmaps", {}) or {}
    for check in checks:
        code = check.numbers.verifier_code
        if code is None or code in saved or code not in heatmaps:
            continue
        name = f"heatmap-{code}.png"
        (store.study_dir(study_id) / name).write_bytes(heatmap_png(heatmaps[code]))
        saved[code] = f"studies/{study_id}/{name}"
    return saved


NO_OOD = Path("none")
"""``RADLOOP_OOD_SCORER=none``: no out-of-distribution score at all."""


def draft_study(
    store: Store,
    study_id: str,
    model: Any,
    verifier: Any,
    *,
    ood_scorer: Any = None,
    calibrator: Any = None,
) -> None:
    """Scope-check, draft and check one stored study, and put the result on the worklist.

    With ``ood_scorer`` (fitted on the verifier's embeddings of training images) the scope
    guard also flags images far from the training data; with ``calibrator`` (a
    :class:`radloop.safety.Calibrator`) the findings carry calibrated probabilities.
    """
    from radloop.assist import draft
    from radloop.safety import ReadOnce, check, ood_inputs

    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise KeyError(study_id)
        study = load_stored_study(store, row)
        prior_row = session.get(StudyRow, row.prior_id) if row.prior_id else None
        prior = load_stored_study(store, prior_row) if prior_row is not None else None
        reading = ReadOnce(verifier)
        far = ood_inputs(study, reading.verify(study), ood_scorer)
        options = {**store.settings.scope_options, **far}
        outcome, reasons, ood = _scope(study, options)
        row.scope_outcome, row.scope, row.ood_score = outcome, reasons, ood
        row.out_of_scope = outcome == "refused"
        row.ood = any(r["code"] == "out_of_distribution" for r in reasons)
        if row.out_of_scope:
            # Refused: no draft; the reader sees why and reports by hand if at all.
            row.urgent, row.flag_count = False, 0
            row.triage_reasons = [
                "outside radloop's intended use: "
                + "; ".join(r["text"] for r in reasons if r["outcome"] == "refused")
            ]
            row.status = "ready"
            session.commit()
            return
        drafted = draft(study, model, prior=prior)
        checked = check(drafted, study, reading, calibrator)
        notice = getattr(model, "notice", None)
        session.merge(
            Draft(
                study_id=study_id,
                model=drafted.model_id,
                verifier=checked.verifier,
                text=checked.text,
                findings=[f.to_dict() for f in checked.findings],
                checks=[c.to_dict() for c in checked.checks],
                heatmaps=_save_heatmaps(store, study_id, checked.checks, reading.output),
                notice=notice if isinstance(notice, str) else None,
                domain=checked.domain.to_dict() if checked.domain is not None else None,
                calibrated=checked.calibrated,
                banner=checked.banner,
                failure=drafted.failure.to_dict() if drafted.failure is not None else None,
                abstained=drafted.abstained,
                warnings=[w.to_dict() for w in drafted.warnings],
                unaddressed=list(drafted.unaddressed),
            )
        )
        _store_outcome(row, checked)
        session.commit()


def _store_outcome(row: StudyRow, checked: Any) -> None:
    """The study's worklist state after a checked draft.

    A failed draft shows as failed with the reason, and never lowers the study's urgency:
    it keeps an urgent flag it already had and takes one from the triage (a critical
    possible omission of a verifier in its domain still counts when the draft says nothing).
    """
    row.flag_count = len(checked.flags)
    row.not_checked = checked.not_checked
    failure = checked.draft.failure
    if failure is None:
        row.urgent = checked.triage.urgent
        row.triage_reasons = list(checked.triage.reasons)
        row.status, row.error = "ready", None
        return
    kept = list(row.triage_reasons) if row.urgent else []
    row.urgent = row.urgent or checked.triage.urgent
    row.triage_reasons = list(dict.fromkeys([*kept, *checked.triage.reasons]))
    row.status, row.error = "failed", f"draft failed: {failure.message}"


class DraftingWorker:
    """Claims queued jobs and drafts them, one at a time, with one model and verifier."""

    def __init__(self, store: Store, *, model: Any = None, verifier: Any = None) -> None:
        self.store = store
        self.name = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._model = model
        self._verifier = verifier
        from radloop.safety import Calibrator, MahalanobisScorer

        configured = store.settings.ood_scorer
        self._ood_scorer = (
            None if configured in (None, NO_OOD) else MahalanobisScorer.from_file(configured)
        )
        # Unless configured: the verifier's own OOD reference, once the verifier is loaded.
        self._ood_default = configured is None
        calibration = store.settings.calibration
        # Read now, so that a bad file stops the worker at start, not every job.
        self.calibrator = None if calibration is None else Calibrator.load(calibration)
        self.wake = threading.Event()

    def drafting_model(self) -> Any:
        """The drafting model, loaded on first use and kept."""
        if self._model is None:
            from radloop.models import load_model

            self._model = load_model(self.store.settings.model)
        return self._model

    def backends(self) -> tuple[Any, Any]:
        """The drafting model and the verifier, loaded on first use and kept."""
        self.drafting_model()
        if self._verifier is None:
            from radloop.safety import load_verifier

            self._verifier = load_verifier(self.store.settings.verifier)
        if self._ood_default:
            self._ood_default = False
            shipped = getattr(self._verifier, "ood_scorer", None)
            self._ood_scorer = shipped() if callable(shipped) else None
        return self._model, self._verifier

    def claim(self) -> Job | None:
        """The oldest queued job, now ours; None when the queue is empty."""
        with self.store.sessions() as session:
            queued = list(
                session.execute(
                    select(Job).where(Job.state == "queued").order_by(Job.id).limit(5)
                ).scalars()
            )
            for job in queued:
                taken = session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.state == "queued")
                    .values(
                        state="running",
                        worker=self.name,
                        claimed_at=utcnow(),
                        attempts=Job.attempts + 1,
                    )
                ).rowcount  # type: ignore[attr-defined]
                session.commit()
                if taken == 1:
                    return job
        return None

    def run_job(self, job: Job) -> None:
        with self.store.sessions() as session:
            session.execute(
                update(StudyRow).where(StudyRow.id == job.study_id).values(status="drafting")
            )
            session.commit()
        try:
            model, verifier = self.backends()
            draft_study(
                self.store,
                job.study_id,
                model,
                verifier,
                ood_scorer=self._ood_scorer,
                calibrator=self.calibrator,
            )
            state, error = "done", None
        except Exception as exc:  # one bad study must not stop the queue
            log.exception("drafting study %s failed", job.study_id)
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        with self.store.sessions() as session:
            session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(state=state, error=error, finished_at=utcnow())
            )
            if error is not None:
                session.execute(
                    update(StudyRow)
                    .where(StudyRow.id == job.study_id)
                    .values(status="failed", error=error[:2000])
                )
            session.commit()

    def run_pending(self, limit: int | None = None) -> int:
        """Draft queued studies until the queue is empty (or ``limit``); how many ran."""
        done = 0
        while limit is None or done < limit:
            job = self.claim()
            if job is None:
                break
            self.run_job(job)
            done += 1
        return done

    def serve(self, stop: threading.Event) -> None:
        """Poll (or wake on ingest) until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the database went away for a moment: keep serving
                log.exception("drafting worker loop")
            self.wake.wait(self.store.settings.worker_poll_s)
            self.wake.clear()
