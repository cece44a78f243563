"""Drafting: each queued study goes through scope → draft → safety layer onto the worklist.

The app holds no safety or model logic: a job calls :func:`radloop.safety.assess_study`,
:func:`radloop.assist.draft` and :func:`radloop.safety.check` and stores what they return.
A worker claims jobs under a lease (:mod:`radloop.review.jobs`) and drafts several at once,
so one worker keeps a model server with many slots busy; several worker processes
(``radloop worker``) can share one database, and the embedded default runs one worker
inside the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from sqlalchemy import update

from radloop.review.calibration_watch import CalibrationFile
from radloop.review.db import Draft, StudyRow
from radloop.review.ingest import load_stored_study
from radloop.review.jobs import Claim, JobQueue, LeaseLostError
from radloop.review.model_context import gather_for_study, with_record
from radloop.review.render import heatmap_png
from radloop.review.store import Store
from radloop.study import Study

__all__ = ["NO_OOD", "DraftingWorker", "draft_study", "load_second_opinion"]

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


def load_second_opinion(sidecar: Path | None) -> Any:
    """The ``onnx`` verifier of ``sidecar`` (``RADLOOP_SECOND_OPINION``), or None when unset.

    Loaded once per worker process, at its start: a missing or invalid sidecar, or an ONNX
    file that does not load, raises :class:`radloop.safety.errors.VerifierDataError` naming
    the setting, what was expected and what was found.
    """
    if sidecar is None:
        return None
    from radloop.safety.errors import VerifierDataError
    from radloop.safety.onnx_verifier import OnnxVerifier

    source = f"RADLOOP_SECOND_OPINION ({sidecar})"
    try:
        verifier = OnnxVerifier(sidecar)
    except VerifierDataError as error:
        raise VerifierDataError(error.expected, error.received, source=source,
                                fix=error.fix) from None  # fmt: skip
    import onnxruntime  # type: ignore[import-untyped]

    model = verifier.sidecar.model
    try:  # the network itself, now rather than on the first study
        onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise VerifierDataError(
            "an ONNX model that onnxruntime can load", f"{model}: {error}", source=source
        ) from None
    return verifier


def draft_study(
    store: Store,
    study_id: str,
    model: Any,
    verifier: Any,
    *,
    ood_scorer: Any = None,
    calibrator: Any = None,
    claim: Claim | None = None,
    last_attempt: bool = True,
    cpu: contextlib.AbstractContextManager[Any] | None = None,
    asker: Any = None,
    second_opinion: Any = None,
) -> None:
    """Scope-check, draft and check one stored study, and put the result on the worklist.

    With ``ood_scorer`` (fitted on the verifier's embeddings of training images) the scope
    guard also flags images far from the training data; with ``calibrator`` (a
    :class:`radloop.safety.Calibrator`) the findings carry calibrated probabilities.

    With ``claim`` (a job held under a lease) the result is stored only if the job is still
    ours, in the same transaction that marks it done (:class:`LeaseLostError` otherwise).
    When the model raises, the error propagates for a retry, unless ``last_attempt``: then
    the draft is stored as failed (the model gave no reply) and the safety layer's triage
    still applies. The database is touched only briefly: no transaction stays open while
    the model works. ``cpu`` (a semaphore of the worker's) is held for the work before and
    after the model call, so that studies drafted at once take turns on the processor and
    each reaches the model sooner, instead of all of them crawling through it together.
    ``asker`` answers the closed questions about the claims (default: the drafting model);
    ``second_opinion`` (a verifier, e.g. the ``onnx`` one) reads each claim inside its
    validated domain (``numbers.p_second_opinion`` and its one-line reading).
    """
    from radloop.assist import Sampling, draft, unavailable_draft

    gate = cpu if cpu is not None else contextlib.nullcontext()
    with gate:
        study, prior, scope, reading = _prepare(store, study_id, verifier, ood_scorer)
    if scope["out_of_scope"]:
        # Refused: no draft; the reader sees why and reports by hand if at all.
        with store.sessions() as session:
            if claim is not None:
                JobQueue.mark_done(session, claim)
            row = _row(session, study_id)
            for name, value in scope.items():
                setattr(row, name, value)
            row.urgent, row.flag_count = False, 0
            row.triage_reasons = [
                "outside radloop's intended use: "
                + "; ".join(r["text"] for r in scope["scope"] if r["outcome"] == "refused")
            ]
            row.status = "ready"
            session.commit()
        return
    settings = store.settings
    # The prior's signed report, Bundles given with the study, the FHIR server's lab values.
    gathered = gather_for_study(store, study_id, study, model)
    study = gathered.study
    try:
        drafted = draft(
            study, model, prior=prior, logprobs=bool(getattr(model, "supports_logprobs", False)),
            sampling=Sampling(settings.samples, settings.sample_temperature),
            context_chars=settings.context_max_chars,
        )  # fmt: skip
    except Exception as error:
        if not last_attempt:
            raise
        log.warning("drafting study %s: the model gave no reply: %s", study_id, error)
        drafted = unavailable_draft(study, _model_id(model), f"{type(error).__name__}: {error}")
    drafted = with_record(drafted, study, model, gathered, settings.context_max_chars)
    asking = asker if asker is not None else model
    asked = _ask_back(drafted, study, asking, settings) if settings.ask_back else None
    with gate:
        _store_draft(store, study_id, model, drafted, study, reading, calibrator, claim, asked,
                     second_opinion)  # fmt: skip


def _ask_back(drafted: Any, study: Study, model: Any, settings: Any) -> Any:
    """The drafting model's answers to closed questions about the draft's claims; None where
    it cannot be asked. A failed question loses its readings, never the draft."""
    from radloop.models import VisionLanguageModel
    from radloop.safety.askback import ask_back

    if not isinstance(model, VisionLanguageModel) or drafted.failure is not None:
        return None
    try:
        return ask_back(drafted, study, model, samples=settings.samples,
                        temperature=settings.sample_temperature)  # fmt: skip
    except Exception as error:
        log.warning("ask-back for study %s failed: %s", study.study_instance_uid, error)
        return None


def _prepare(
    store: Store, study_id: str, verifier: Any, ood_scorer: Any
) -> tuple[Study, Study | None, dict[str, Any], Any]:
    """The study and its prior read again, the verifier's reading, and the scope outcome
    (stored at once, unless refused: it stands even if drafting fails)."""
    from radloop.safety import ReadOnce, ood_inputs

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
    scope = {
        "scope_outcome": outcome,
        "scope": reasons,
        "ood_score": ood,
        "out_of_scope": outcome == "refused",
        "ood": any(r["code"] == "out_of_distribution" for r in reasons),
    }
    if not scope["out_of_scope"]:
        with store.sessions() as session:
            session.execute(update(StudyRow).where(StudyRow.id == study_id).values(**scope))
            session.commit()
    return study, prior, scope, reading


def _store_draft(
    store: Store,
    study_id: str,
    model: Any,
    drafted: Any,
    study: Study,
    reading: Any,
    calibrator: Any,
    claim: Claim | None,
    asked: Any = None,
    second_opinion: Any = None,
) -> None:
    """Check the draft and store it with the study's worklist state (fenced by ``claim``)."""
    from radloop.assist.types import WarningKind
    from radloop.safety import check

    checked = check(drafted, study, reading, calibrator, asked=asked,
                    second_opinion=second_opinion)  # fmt: skip
    notice = getattr(model, "notice", None)
    heatmaps = _save_heatmaps(store, study_id, checked.checks, reading.output)
    failure = drafted.failure
    with store.sessions() as session:
        if claim is not None:  # first: the write lock, and the fence
            if failure is not None and failure.kind is WarningKind.MODEL_UNAVAILABLE:
                JobQueue.mark_done(session, claim, state="failed", error=failure.message)
            else:
                JobQueue.mark_done(session, claim)
        row = _row(session, study_id)
        previous = session.get(Draft, study_id)
        session.merge(
            Draft(
                study_id=study_id,
                model=drafted.model_id,
                verifier=checked.verifier,
                text=checked.text,
                findings=[f.to_dict() for f in checked.findings],
                checks=[c.to_dict() for c in checked.checks],
                heatmaps=heatmaps,
                notice=notice if isinstance(notice, str) else None,
                domain=checked.domain.to_dict() if checked.domain is not None else None,
                calibrated=checked.calibrated,
                banner=checked.banner,
                failure=drafted.failure.to_dict() if drafted.failure is not None else None,
                abstained=drafted.abstained,
                warnings=[w.to_dict() for w in drafted.warnings],
                unaddressed=list(drafted.unaddressed),
                context=dict(drafted.context) if drafted.context is not None else None,
                revision=(previous.revision + 1) if previous is not None else 1,
                cost=checked.draft.cost_dict(),
            )
        )
        _store_outcome(row, checked)
        session.commit()


def _row(session: Any, study_id: str) -> StudyRow:
    row: StudyRow | None = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    return row


def _model_id(model: Any) -> str:
    return str(getattr(model, "model_id", type(model).__name__))


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
    """Claims queued jobs and drafts up to ``concurrency`` of them at once.

    Each claimed job is held under a lease that a heartbeat thread renews; jobs whose
    lease ran out (their worker died) are requeued at start and periodically; a failed
    attempt is retried with backoff up to the configured maximum (see
    :mod:`radloop.review.jobs`). Stopping gives unfinished jobs back at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        model: Any = None,
        verifier: Any = None,
        concurrency: int | None = None,
    ) -> None:
        self.store = store
        self.name = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._model = model
        self._verifier = verifier
        self._asker: Any = None
        settings = store.settings
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.queue = JobQueue(store, self.name)
        from radloop.safety import MahalanobisScorer

        configured = settings.ood_scorer
        self._ood_scorer = (
            None if configured in (None, NO_OOD) else MahalanobisScorer.from_file(configured)
        )
        # Unless configured: the verifier's own OOD reference, once the verifier is loaded.
        self._ood_default = configured is None
        # Read now, so that a bad file stops the worker at start, not every job; read again
        # between jobs when the file changes (a refit), keeping the last good one.
        self.calibration = CalibrationFile(
            settings.calibration, every_s=settings.calibration_check_s, store=store
        )
        self.second_opinion = load_second_opinion(settings.second_opinion)
        self.wake = threading.Event()
        self._held: dict[int, Claim] = {}
        # The work around each model call takes turns, a few studies at a time.
        self._cpu = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._last_sweep = 0.0

    @property
    def calibrator(self) -> Any:
        """The calibration in force (None: the verifier's raw probabilities)."""
        return self.calibration.calibrator

    def drafting_model(self) -> Any:
        """The drafting model, loaded on first use (with the settings' options) and kept."""
        with self._loading:
            if self._model is None:
                from radloop.models import load_model

                settings = self.store.settings
                self._model = load_model(settings.model, **dict(settings.model_options))
            return self._model

    def asking_model(self) -> Any:
        """The model that answers the ask-back questions when the settings name one
        (``RADLOOP_ASK_BACK_MODEL``), loaded on first use and kept; else None."""
        settings = self.store.settings
        if not settings.ask_back_model:
            return None
        with self._loading:
            if self._asker is None:
                from radloop.models import load_model

                options = dict(settings.ask_back_model_options)
                self._asker = load_model(settings.ask_back_model, **options)
            return self._asker

    def backends(self) -> tuple[Any, Any]:
        """The drafting model and the verifier, loaded on first use and kept."""
        self.drafting_model()
        with self._loading:
            if self._verifier is None:
                from radloop.safety import load_verifier

                self._verifier = load_verifier(self.store.settings.verifier)
            if self._ood_default:
                self._ood_default = False
                shipped = getattr(self._verifier, "ood_scorer", None)
                self._ood_scorer = shipped() if callable(shipped) else None
        return self._model, self._verifier

    def held(self) -> list[Claim]:
        with self._lock:
            return list(self._held.values())

    def claim(self, limit: int = 1) -> list[Claim]:
        """Up to ``limit`` queued jobs, now held by this worker."""
        claims = self.queue.claim(limit)
        with self._lock:
            self._held.update((c.job_id, c) for c in claims)
        return claims

    def run_job(self, claim: Claim) -> str:
        """Draft one claimed job; its outcome (``done``, ``queued`` again, ``failed``, ``lost``)."""
        try:
            model, verifier = self.backends()
            self.calibration.refresh()
            draft_study(
                self.store,
                claim.study_id,
                model,
                verifier,
                ood_scorer=self._ood_scorer,
                calibrator=self.calibrator,
                claim=claim,
                last_attempt=claim.attempt >= self.queue.max_attempts,
                cpu=self._cpu,
                asker=self.asking_model(),
                second_opinion=self.second_opinion,
            )
            return "done"
        except LeaseLostError as lost:
            log.warning("%s", lost)
            return "lost"
        except Exception as exc:  # one bad study must not stop the queue
            log.exception("drafting study %s failed (attempt %d)", claim.study_id, claim.attempt)
            return self.queue.retry_or_fail(claim, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._held.pop(claim.job_id, None)

    def sweep(self, every_s: float | None = None) -> dict[str, int]:
        """Requeue jobs whose lease ran out, at most once per ``every_s`` seconds."""
        now = time.monotonic()
        if every_s is not None and now - self._last_sweep < every_s:
            return {"requeued": 0, "failed": 0}
        self._last_sweep = now
        return self.queue.requeue_expired()

    def _top_up(self, pool: ThreadPoolExecutor, running: set[Future[str]], cap: int) -> None:
        """Claim jobs until ``cap`` are running in ``pool``."""
        room = cap - len(running)
        for claim in self.claim(room) if room > 0 else []:
            running.add(pool.submit(self.run_job, claim))

    def run_pending(self, limit: int | None = None) -> int:
        """Draft queued studies until none is ready (or ``limit``), ``concurrency`` at once;
        how many ran."""
        self.sweep()
        done = 0
        running: set[Future[str]] = set()
        with (
            self._heartbeating(),
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="radloop-draft") as pool,
        ):
            while True:
                cap = self.concurrency if limit is None else min(self.concurrency, limit - done)
                self._top_up(pool, running, cap)
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                done += len(finished)
        return done

    @contextlib.contextmanager
    def _heartbeating(self) -> Iterator[None]:
        """Renew the leases of held jobs every third of the lease while inside."""
        stop = threading.Event()
        interval = max(0.05, self.store.settings.job_lease_s / 3)

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.queue.heartbeat(self.held())
                except Exception:  # the database went away for a moment: try again
                    log.exception("drafting worker heartbeat")

        thread = threading.Thread(target=beat, daemon=True, name="radloop-heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()

    def serve(self, stop: threading.Event) -> None:
        """Draft as jobs arrive (polling, or woken on ingest) until ``stop`` is set; then
        give back what is unfinished."""
        settings = self.store.settings
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="radloop-draft")
        running: set[Future[str]] = set()
        try:
            with self._heartbeating():
                while not stop.is_set():
                    try:
                        self.sweep(every_s=max(0.05, settings.job_lease_s / 2))
                        self._top_up(pool, running, self.concurrency)
                    except Exception:  # the database went away for a moment: keep serving
                        log.exception("drafting worker loop")
                    if running:
                        _, running = wait(
                            running, timeout=settings.worker_poll_s, return_when=FIRST_COMPLETED
                        )
                    else:
                        self.wake.wait(settings.worker_poll_s)
                        self.wake.clear()
        finally:
            released = self.queue.release(self.held())
            if released:
                log.warning("gave back %d unfinished drafting jobs", released)
            pool.shutdown(wait=False, cancel_futures=True)
