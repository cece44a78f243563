"""The model and the drafting worker under faults: a hung model, killed workers, throughput."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from radloop.lab.bench.faults.common import (
    _accounts,
    _db,
    _ingested_studies,
    _open_store,
    _server,
    _stop,
    _tally,
    _worker,
)
from radloop.lab.bench.review import _cpu_seconds, _percentile
from radloop.lab.bench.slow_model_server import FakeModelServer


async def _probe_while_hanging(
    url: str, askers: list[str], reader: str, study: str, seconds: float, fake: FakeModelServer
) -> dict[str, Any]:
    import httpx

    from radloop.review.deps import SESSION_COOKIE

    async def signed_in(token: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=url, headers={"Cookie": f"{SESSION_COOKIE}={token}"}, timeout=120
        )
        me = await client.get("/api/me")
        client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
        return client

    clients = [await signed_in(t) for t in askers]
    probe = await signed_in(reader)
    question = {"question": "Is there a pneumothorax?"}
    asks = [
        asyncio.ensure_future(c.post(f"/api/studies/{study}/ask", json=question)) for c in clients
    ]
    # Until every question has reached the model or been answered (at most 10 s).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if fake.requests + sum(a.done() for a in asks) >= len(asks):
            break
        await asyncio.sleep(0.05)
    reached = fake.requests
    timeout = 10.0
    samples: list[tuple[str, float, bool]] = []

    async def one(path: str) -> None:
        started = time.perf_counter()
        try:
            response = await probe.get(path, timeout=timeout)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        samples.append((path, time.perf_counter() - started, ok))

    probes = []
    stop_at = time.monotonic() + seconds
    k = 0
    while time.monotonic() < stop_at:
        probes.append(asyncio.ensure_future(one("/api/worklist" if k % 2 == 0 else "/login")))
        k += 1
        await asyncio.sleep(0.1)
    await asyncio.gather(*probes)
    done_asks = [a for a in asks if a.done()]
    ask_codes = [
        str(a.result().status_code) if a.exception() is None else "error" for a in done_asks
    ]
    ask_details = sorted({str(a.result().text)[:200] for a in done_asks if a.exception() is None})
    for a in asks:
        a.cancel()
    await asyncio.gather(*asks, return_exceptions=True)
    for c in [*clients, probe]:
        await c.aclose()
    times = [t for _, t, _ in samples]
    return {
        "worklist_p95_ms_while_model_hangs": _percentile(times, 95),
        "worklist_only_p95_ms": _percentile([t for p, t, _ in samples if p != "/login"], 95),
        "login_p95_ms": _percentile([t for p, t, _ in samples if p == "/login"], 95),
        "p50_ms": _percentile(times, 50),
        "requests": len(samples),
        "failed_or_timed_out": sum(not ok for *_, ok in samples),
        "probe_timeout_s": timeout,
        "questions_sent": len(asks),
        "questions_at_the_model": reached,
        "questions_answered_during_probe": _tally(ask_codes),
        "answers_during_probe": ask_details,
    }


def part_model_hang(scratch: Path, seconds: float = 5.0, askers: int = 8) -> dict[str, Any]:
    """8 questions to a model that never answers; the worklist and login timed meanwhile."""
    store = _open_store(scratch)
    study = _ingested_studies(store, scratch, 1)[0]
    with store.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(text("UPDATE jobs SET state = 'done'"))
    names = {f"asker{i}": "radiologist" for i in range(askers)}
    tokens = _accounts(store, {**names, "reader": "radiologist"})
    store.close()
    with FakeModelServer("hang") as fake:
        env = {
            "RADLOOP_MODEL": "openai",
            "RADLOOP_MODEL_BASE_URL": fake.base_url,
            "RADLOOP_MODEL_TIMEOUT_S": "120",
        }
        with _server(scratch, **env) as (url, _):
            result = asyncio.run(
                _probe_while_hanging(
                    url, [tokens[n] for n in names], tokens["reader"], study, seconds, fake
                )
            )
            fake.stop()  # lets the hung requests go, so that the server stops promptly
    return result


# --- drafting workers killed, and their throughput -------------------------------------------


def _job_counts(folder: Path) -> dict[str, int]:
    with contextlib.closing(_db(folder)) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())


def _worker_env(fake: FakeModelServer, concurrency: int) -> dict[str, str]:
    # One request a draft (no sampled drafts, no questions back), so that drafted studies a
    # second over the server's slots says how busy the worker keeps it; what sampling and
    # ask-back cost is measured by `radloop bench evidence`.
    return {
        "RADLOOP_SAMPLES": "0",
        "RADLOOP_ASK_BACK": "0",
        "RADLOOP_MODEL": "openai",
        "RADLOOP_MODEL_BASE_URL": fake.base_url,
        "RADLOOP_MODEL_TIMEOUT_S": "60",
        "RADLOOP_WORKER_CONCURRENCY": str(concurrency),
        "RADLOOP_MODEL_CONCURRENCY": str(max(8, concurrency)),
        "RADLOOP_JOB_LEASE_S": "3",
        "RADLOOP_JOB_MAX_ATTEMPTS": "25",
        "RADLOOP_JOB_BACKOFF_S": "0.2",
    }


def _finish(
    folder: Path, process: subprocess.Popen[bytes], limit_s: float, quiet_s: float
) -> float:
    """Wait until no job is queued or running, or nothing changed for ``quiet_s``, or
    ``limit_s`` passed; the seconds waited."""
    started = time.monotonic()
    last, changed = _job_counts(folder), time.monotonic()
    while time.monotonic() - started < limit_s and process.poll() is None:
        counts = _job_counts(folder)
        if not counts.get("queued") and not counts.get("running"):
            break
        if counts != last:
            last, changed = counts, time.monotonic()
        elif time.monotonic() - changed > quiet_s:
            break
        time.sleep(0.25)
    return time.monotonic() - started


def _study_outcomes(folder: Path) -> dict[str, Any]:
    with contextlib.closing(_db(folder)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(drafts)")}
        duplicates = (
            db.execute("SELECT COUNT(*) FROM drafts WHERE revision > 1").fetchone()[0]
            if "revision" in columns
            else None
        )
        lost = db.execute(
            "SELECT COUNT(*) FROM studies s WHERE NOT EXISTS "
            "(SELECT 1 FROM drafts d WHERE d.study_id = s.id) AND NOT s.out_of_scope "
            "AND s.status != 'failed' AND NOT EXISTS "
            "(SELECT 1 FROM jobs j WHERE j.study_id = s.id AND j.state = 'failed')"
        ).fetchone()[0]
        drafts = db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0]
        refused = db.execute("SELECT COUNT(*) FROM studies WHERE out_of_scope").fetchone()[0]
        attempts = db.execute("SELECT MAX(attempts), SUM(attempts) FROM jobs").fetchone()
    counts = _job_counts(folder)
    return {
        "stuck_jobs": counts.get("queued", 0) + counts.get("running", 0),
        "lost_jobs": lost,
        "duplicate_drafts": duplicates,
        "failed_jobs": counts.get("failed", 0),
        "jobs_by_state": counts,
        "drafts": drafts,
        "refused_by_scope": refused,
        "max_attempts_of_a_job": attempts[0],
        "attempts_in_all": attempts[1],
    }


def part_worker_kills(
    scratch: Path, studies: int = 40, kills: int = 20, seed: int = 0
) -> dict[str, Any]:
    """``radloop worker`` killed with SIGKILL ``kills`` times mid-drafting, then let finish."""
    rng = random.Random(seed)
    store = _open_store(scratch)
    _ingested_studies(store, scratch, studies)
    store.close()
    log = scratch / "worker.log"
    done_kills = 0
    with FakeModelServer("slow", latency_s=(0.5, 1.0), slots=8, seed=seed) as fake:
        env = _worker_env(fake, 4)
        started = time.monotonic()
        for _ in range(kills):
            counts = _job_counts(scratch)
            if not counts.get("queued") and not counts.get("running"):
                break
            before = fake.requests
            process = _worker(scratch, log, **env)
            deadline = time.monotonic() + 20
            # Kill at a random moment once it is drafting (asked the model), else at 20 s.
            while fake.requests == before and time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                done_kills += 1
            process.wait(timeout=30)
        kill_phase = time.monotonic() - started
        process = _worker(scratch, log, **env)
        try:
            waited = _finish(scratch, process, limit_s=120, quiet_s=15)
        finally:
            _stop(process)
        model_requests = fake.requests
    return {
        **_study_outcomes(scratch),
        "kills": done_kills,
        "studies": studies,
        "kill_phase_s": round(kill_phase, 1),
        "finish_wait_s": round(waited, 1),
        "model_requests": model_requests,
    }


def _window_s(folder: Path) -> float | None:
    """Seconds from the first claim to the last completion of a job, from the jobs table."""
    with contextlib.closing(_db(folder)) as db:
        first, last = db.execute(
            "SELECT MIN(claimed_at), MAX(finished_at) FROM jobs WHERE state = 'done'"
        ).fetchone()
    if not first or not last:
        return None
    span = datetime.datetime.fromisoformat(last) - datetime.datetime.fromisoformat(first)
    return span.total_seconds()


def part_throughput(
    scratch: Path, studies: int = 160, slots: int = 8, concurrency: int = 16
) -> dict[str, Any]:
    """One worker against a model server with exactly ``slots`` slots of 1 s each."""
    store = _open_store(scratch)
    _ingested_studies(store, scratch, studies)
    store.close()
    log = scratch / "worker.log"
    with FakeModelServer("slow", latency_s=1.0, slots=slots) as fake:
        process = _worker(scratch, log, **_worker_env(fake, concurrency))
        try:
            # The worker's CPU once it starts drafting (imports and loading the verifier
            # before that are not per-study work).
            deadline = time.monotonic() + 60
            while fake.requests == 0 and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.02)
            cpu_start = _cpu_seconds(process.pid)
            waited = _finish(scratch, process, limit_s=150, quiet_s=30)
            cpu_end = _cpu_seconds(process.pid)
            cpu = cpu_end - cpu_start if cpu_end is not None and cpu_start is not None else None
        finally:
            _stop(process)
        max_in_flight, busy_s = fake.max_in_flight, fake.busy_s
        model_window = (
            fake.last_done_at - fake.first_at
            if fake.first_at is not None and fake.last_done_at is not None
            else None
        )
    counts = _job_counts(scratch)
    done = counts.get("done", 0)
    window = _window_s(scratch)
    per_s = done / window if window else None
    return {
        "throughput_ratio": round(per_s / slots, 3) if per_s is not None else None,
        "studies_per_s": round(per_s, 2) if per_s is not None else None,
        "ideal_studies_per_s": float(slots),
        "studies": studies,
        "drafted": done,
        "jobs_by_state": counts,
        "window_s": round(window, 1) if window else None,
        "model_first_to_last_answer_s": round(model_window, 1) if model_window else None,
        "model_max_in_flight": max_in_flight,
        # Slots kept busy on average between the first request and the last answer.
        "model_mean_slots_busy": round(busy_s / model_window, 2) if model_window else None,
        "worker_concurrency": concurrency,
        "worker_cpu_s_per_study_while_drafting": (
            round(cpu / done, 3) if cpu is not None and done else None
        ),
        # How much of the machine the worker used while drafting (cores), and what its CPU per
        # study allows: one core (Python's GIL serialises most of a draft) or all of them.
        "worker_cores_busy": round(cpu / waited, 2) if cpu is not None and waited else None,
        "ceiling_ratio_one_core": round(min(1.0, done / cpu / slots), 2) if cpu and done else None,
        "ceiling_ratio_all_cores": (
            round(min(1.0, (os.cpu_count() or 1) * done / cpu / slots), 2) if cpu and done else None
        ),
        "waited_s": round(waited, 1),
    }


# --- the run ---------------------------------------------------------------------------------
