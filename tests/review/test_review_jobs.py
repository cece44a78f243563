"""Drafting jobs that survive crashes and keep a model server full: leases, heartbeats,
requeue of dead workers' jobs, retries with a maximum, an admin's requeue, N at once."""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reviewkit import PG_URL, write_sample_copy
from sqlalchemy import select, update


def _fresh_studies(store: Any, scratch: Path, n: int) -> list[str]:
    """``n`` newly ingested studies, with every other queued job in the store put aside."""
    from pydicom.uid import generate_uid

    from radloop.review.db import Job
    from radloop.review.ingest import ingest_path

    with store.sessions() as session:
        session.execute(update(Job).where(Job.state != "done").values(state="done"))
        session.commit()
    ids = []
    for i in range(n):
        folder = write_sample_copy(
            scratch / f"s{i}", uid=generate_uid(), patient=f"J{i}", date=datetime.date(2024, 3, 1)
        ).parent
        ids.append(ingest_path(store, folder).added[0])
    return ids


def _tuned(store: Any, **settings: Any) -> Any:
    return dataclasses.replace(store, settings=store.settings.with_(**settings))


def _job(store: Any, study_id: str) -> Any:
    from radloop.review.db import Job

    with store.sessions() as session:
        return session.execute(
            select(Job).where(Job.study_id == study_id).order_by(Job.id.desc()).limit(1)
        ).scalar_one()


def _worker(store: Any, reply: Any = "No acute cardiopulmonary process.", **kwargs: Any) -> Any:
    from radloop.models.mock import MockModel
    from radloop.review.worker import DraftingWorker
    from radloop.safety import TableVerifier

    return DraftingWorker(store, model=MockModel(reply), verifier=TableVerifier({}), **kwargs)


def _expire(store: Any, study_id: str) -> None:
    from radloop.review.db import Job

    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    with store.sessions() as session:
        session.execute(
            update(Job)
            .where(Job.study_id == study_id, Job.state == "running")
            .values(lease_until=past)
        )
        session.commit()


def test_concurrent_claims_never_take_the_same_job(store: Any, tmp_path: Path) -> None:
    from radloop.review.jobs import JobQueue

    ids = _fresh_studies(store, tmp_path, 8)
    queues = [JobQueue(store, f"w{i}") for i in range(4)]
    taken: list[list[str]] = [[] for _ in queues]
    start = threading.Barrier(len(queues))

    def claim(k: int) -> None:
        start.wait()
        while claims := queues[k].claim(2):
            taken[k].extend(c.study_id for c in claims)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(len(queues))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [s for part in taken for s in part]
    assert sorted(every) == sorted(ids)  # each job claimed exactly once
    for study_id in ids:
        job = _job(store, study_id)
        assert job.state == "running" and job.token and job.lease_until is not None


def test_an_expired_lease_is_requeued_and_the_late_worker_is_fenced_off(
    store: Any, tmp_path: Path
) -> None:
    from radloop.review.db import Draft, StudyRow

    (study_id,) = _fresh_studies(store, tmp_path, 1)
    quick = _tuned(store, job_backoff_s=0.01)
    late, prompt = _worker(quick), _worker(quick)
    (first,) = late.claim(1)
    _expire(store, study_id)
    assert prompt.queue.requeue_expired() == {"requeued": 1, "failed": 0}
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None and row.status == "queued"
        assert row.error is not None and "stopped answering" in row.error
    time.sleep(0.05)
    (second,) = prompt.claim(1)
    assert second.study_id == study_id and second.token != first.token and second.attempt == 2
    assert prompt.run_job(second) == "done"
    assert late.run_job(first) == "lost"  # its lease ran out: its draft is not stored again
    with store.sessions() as session:
        draft = session.get(Draft, study_id)
        assert draft is not None and draft.revision == 1
    job = _job(store, study_id)
    assert (job.state, job.attempts) == ("done", 2)


def test_a_job_whose_worker_keeps_dying_fails_with_the_reason_and_an_admin_requeues_it(
    store: Any, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from radloop.cli import main
    from radloop.review.db import AuditEntry, StudyRow

    (study_id,) = _fresh_studies(store, tmp_path, 1)
    once = _tuned(store, job_max_attempts=1)
    worker = _worker(once)
    worker.claim(1)
    _expire(store, study_id)
    assert worker.queue.requeue_expired() == {"requeued": 0, "failed": 1}
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None and row.status == "failed"
        assert row.error is not None and "after 1 attempts" in row.error
    assert _job(store, study_id).state == "failed"
    env = {"RADLOOP_DATABASE_URL": _url(store)}
    data_dir = str(store.data_dir)
    listed = CliRunner().invoke(main, ["jobs", "list", "--state", "failed", "--data-dir", data_dir],
                                env=env)  # fmt: skip
    assert listed.exit_code == 0 and study_id in listed.output, listed.output
    done = CliRunner().invoke(main, ["jobs", "requeue", study_id, "--data-dir", data_dir], env=env)
    assert done.exit_code == 0, done.output
    again = CliRunner().invoke(main, ["jobs", "requeue", study_id, "--data-dir", data_dir], env=env)
    assert again.exit_code != 0 and "not failed" in again.output
    job = _job(store, study_id)
    assert (job.state, job.attempts) == ("queued", 0)
    with store.sessions() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.target == study_id)
        ).scalars()
        assert "requeue_draft" in list(actions)
    assert worker.run_pending() == 1
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None and row.status == "ready"


def _url(store: Any) -> str:
    url = store.settings.database_url or ""
    if store.settings.db_schema:
        url += f"?options=-csearch_path%3D{store.settings.db_schema}"
    return url


def test_the_heartbeat_keeps_a_slow_draft_from_being_taken(store: Any, tmp_path: Path) -> None:
    (study_id,) = _fresh_studies(store, tmp_path, 1)
    short = _tuned(store, job_lease_s=0.3)

    def slow(_request: Any) -> str:
        time.sleep(1.2)  # four leases long
        return "No acute cardiopulmonary process."

    worker, other = _worker(short, slow), _worker(short)
    stop = threading.Event()
    sweeps: list[dict[str, int]] = []

    def sweep() -> None:
        while not stop.wait(0.1):
            sweeps.append(other.queue.requeue_expired())

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        assert worker.run_pending() == 1
    finally:
        stop.set()
        sweeper.join()
    assert len(sweeps) >= 5 and all(s == {"requeued": 0, "failed": 0} for s in sweeps)
    job = _job(store, study_id)
    assert (job.state, job.attempts) == ("done", 1)


def test_a_worker_drafts_up_to_its_concurrency_at_once(store: Any, tmp_path: Path) -> None:
    _fresh_studies(store, tmp_path, 8)
    lock = threading.Lock()
    now, peak = [0], [0]

    def counted(_request: Any) -> str:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.4)
        with lock:
            now[0] -= 1
        return "No acute cardiopulmonary process."

    worker = _worker(store, counted, concurrency=4)
    assert worker.concurrency == 4
    assert worker.run_pending() == 8
    assert peak[0] == 4


def test_stopping_a_worker_gives_its_jobs_back_at_once(store: Any, tmp_path: Path) -> None:
    (study_id,) = _fresh_studies(store, tmp_path, 1)
    release = threading.Event()

    def hung(_request: Any) -> str:
        release.wait(30)
        return "No acute cardiopulmonary process."

    worker, stop = _worker(store, hung), threading.Event()
    thread = threading.Thread(target=worker.serve, args=(stop,))
    thread.start()
    try:
        for _ in range(100):
            if _job(store, study_id).state == "running":
                break
            time.sleep(0.05)
        assert _job(store, study_id).state == "running"
        stop.set()
        worker.wake.set()
        thread.join(timeout=10)
        job = _job(store, study_id)
        assert (job.state, job.attempts, job.token) == ("queued", 0, None)
    finally:
        release.set()
        thread.join(timeout=10)
    time.sleep(0.2)  # the hung call returns into a fenced write, which stores nothing
    assert _job(store, study_id).state == "queued"


def test_model_options_come_from_the_settings(store: Any) -> None:
    from radloop.review.settings import settings_from_env
    from radloop.review.worker import DraftingWorker

    settings = settings_from_env(
        store.data_dir,
        env={"RADLOOP_MODEL": "mock", "RADLOOP_MODEL_OPTIONS": "model=site-llm,delay_s=0.01"},
    )
    worker = DraftingWorker(dataclasses.replace(store, settings=settings))
    model = worker.drafting_model()
    assert model.model_id.endswith("site-llm") and model.delay_s == 0.01


@pytest.mark.parametrize("when_s", [0.3, 1.5])
def test_kill_9_of_a_worker_process_loses_no_job_and_drafts_none_twice(
    store: Any, tmp_path: Path, when_s: float
) -> None:
    """A ``radloop worker`` killed with SIGKILL mid-draft: its job is requeued when the
    lease runs out, and a restarted worker drafts it once."""
    from radloop.review.db import Draft, StudyRow

    ids = _fresh_studies(store, tmp_path, 3)
    env = {
        **os.environ,
        "RADLOOP_MODEL": "mock",
        "RADLOOP_MODEL_OPTIONS": "delay_s=1.0",
        "RADLOOP_JOB_LEASE_S": "1",
        "RADLOOP_JOB_BACKOFF_S": "0.1",
        "RADLOOP_WORKER_CONCURRENCY": "2",
    }
    if store.settings.database_url:
        env["RADLOOP_DATABASE_URL"] = _url(store)
        assert store.settings.database_url == PG_URL
    command = [sys.executable, "-m", "radloop", "worker", "--data-dir", str(store.data_dir)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            _job(store, s).state == "running" for s in ids
        ):
            time.sleep(0.05)
        time.sleep(when_s)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(1.2)  # the lease runs out
    done = subprocess.run(
        [*command, "--once"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with store.sessions() as session:
        for study_id in ids:
            job = _job(store, study_id)
            row = session.get(StudyRow, study_id)
            draft = session.get(Draft, study_id)
            assert job.state == "done", (job.state, job.error)
            assert row is not None and row.status == "ready"
            assert draft is not None and draft.revision == 1


def test_heatmaps_are_kept_small_and_keep_their_shape() -> None:
    """The worker stores heatmap overlays at most HEATMAP_MAX_SIDE a side (block means), in
    the image's aspect ratio, with the hot spot where it was."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    from radloop.review.render import HEATMAP_MAX_SIDE, heatmap_png

    y, x = np.mgrid[0:2000, 0:1600]
    hot = np.exp(-((x - 1200.0) ** 2 + (y - 500.0) ** 2) / 2e4)
    picture = PILImage.open(io.BytesIO(heatmap_png(hot)))
    assert picture.mode == "RGBA" and max(picture.size) <= HEATMAP_MAX_SIDE
    assert abs(picture.size[0] / picture.size[1] - 1600 / 2000) < 0.01
    alpha = np.asarray(picture)[..., 3]
    row, col = np.unravel_index(int(alpha.argmax()), alpha.shape)
    assert abs(col / alpha.shape[1] - 0.75) < 0.02 and abs(row / alpha.shape[0] - 0.25) < 0.02
    small = PILImage.open(io.BytesIO(heatmap_png(np.ones((30, 40)))))
    assert small.size == (40, 30)  # small heatmaps are kept as they are


def test_an_admin_requeues_a_failed_draft_from_the_api_and_the_study_page(
    store: Any, tmp_path: Path, client_for: Any
) -> None:
    from radloop.review.db import AuditEntry, StudyRow

    (study_id,) = _fresh_studies(store, tmp_path, 1)
    with store.sessions() as session:
        session.execute(
            update(StudyRow).where(StudyRow.id == study_id).values(status="failed", error="x")
        )
        session.commit()
    rad, boss = client_for("rad"), client_for("boss")
    assert rad.post(f"/api/studies/{study_id}/requeue").status_code == 403
    page = boss.get(f"/studies/{study_id}")
    assert page.status_code == 200 and 'id="requeue"' in page.text
    assert 'id="requeue"' not in rad.get(f"/studies/{study_id}").text
    answer = boss.post(f"/api/studies/{study_id}/requeue")
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    job = _job(store, study_id)
    assert (job.state, job.attempts) == ("queued", 0)
    again = boss.post(f"/api/studies/{study_id}/requeue")
    assert again.status_code == 409 and "not failed" in again.json()["detail"]
    with store.sessions() as session:
        session.execute(update(StudyRow).where(StudyRow.id == study_id).values(status="failed"))
        session.commit()
    token = boss.headers.pop("X-CSRF-Token")  # the page's form sends it as a field
    form = boss.post(
        f"/studies/{study_id}/requeue", data={"csrf_token": token}, follow_redirects=False
    )
    assert form.status_code == 303 and form.headers["location"] == f"/studies/{study_id}"
    with store.sessions() as session:
        actions = list(
            session.execute(
                select(AuditEntry.action).where(AuditEntry.target.contains(study_id))
            ).scalars()
        )
    assert actions.count("requeue_draft") == 2


@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_a_draft_reads_its_own_files_not_the_whole_upload(
    store: Any, tmp_path: Path, packed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three studies uploaded together: reading one again reads one file (a member of the
    kept zip, or a file of the kept folder), and a store without recorded originals still
    reads the study from the whole upload."""
    import shutil

    from pydicom.uid import generate_uid

    from radloop.review.db import ImageRow, StudyRow
    from radloop.review.ingest import ingest_path, load_stored_study
    from radloop.study import loader

    batch = tmp_path / "batch"
    uids = [generate_uid() for _ in range(3)]
    for i, uid in enumerate(uids):
        write_sample_copy(batch / f"s{i}", uid=uid, patient=f"B{i}", date=datetime.date(2024, 5, 1))
    source = (
        Path(shutil.make_archive(str(tmp_path / "batch"), "zip", batch))
        if packed == "zip"
        else batch
    )
    ids = ingest_path(store, source).added
    assert len(ids) == 3
    reads: list[str] = []
    real = loader._read_record

    def counted(data: bytes, source: Path, *args: Any) -> Any:
        reads.append(str(source))
        return real(data, source, *args)

    monkeypatch.setattr(loader, "_read_record", counted)
    with store.sessions() as session:
        row = session.get(StudyRow, ids[1])
        assert row is not None
        original = session.execute(
            select(ImageRow.original).where(ImageRow.study_id == ids[1])
        ).scalar_one()
        assert original is not None and original.startswith("originals/")
        assert (".zip/" in original) == (packed == "zip")
        study = load_stored_study(store, row)
        assert study.study_instance_uid == row.study_instance_uid and len(reads) == 1
        session.execute(update(ImageRow).where(ImageRow.study_id == ids[1]).values(original=None))
        session.commit()
        reads.clear()
        again = load_stored_study(store, row)  # an image stored before originals were kept
        assert again.study_instance_uid == row.study_instance_uid and len(reads) == 3


def test_an_idle_worker_polls_without_writing(store: Any, tmp_path: Path) -> None:
    from sqlalchemy import event

    from radloop.review.jobs import JobQueue

    _fresh_studies(store, tmp_path, 0)  # nothing queued
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert JobQueue(store, "idle").claim(4) == []
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert statements and "UPDATE" not in statements and "INSERT" not in statements
