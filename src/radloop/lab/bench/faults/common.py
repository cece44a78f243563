"""What the fault benchmark's parts share: stores with studies and accounts, the server and
worker subprocesses, HTTP clients that fire together, and the database read back."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from radloop.lab.bench.review import _free_port, wait_ready

PASSWORD = "faults-bench-password"
_ROUTINE_FINDING = {
    "code": "cardiomegaly",
    "presence": "present",
    "probability": 0.93,
    "verdict": "supported",
}
_INVENTED_FINDING = {
    "code": "mass",
    "presence": "present",
    "side": "right",
    "size_mm": 23.0,
    "probability": 0.04,
    "verdict": "unsupported",
}
_OTHER_FLAGGED = {
    "code": "pleural_effusion",
    "presence": "present",
    "side": "left",
    "probability": 0.06,
    "verdict": "unsupported",
}


def _check(finding: dict[str, Any], index: int) -> dict[str, Any]:
    unsupported = finding["verdict"] == "unsupported"
    return {
        "finding": finding,
        "verdict": finding["verdict"],
        "reasons": [f"the verifier gives it {finding['probability']}"] if unsupported else [],
        "index": index,
        "numbers": {"verifier_code": finding["code"]},
        "possible_omission": False,
    }


# --- the store and the processes -------------------------------------------------------------


def _clean_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess: no RADLOOP_* of the caller, the store in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADLOOP_")}
    env.update(
        RADLOOP_DATA_DIR=str(folder),
        RADLOOP_IN_PROCESS_WORKER="0",
        RADLOOP_INSECURE_COOKIES="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _open_store(folder: Path) -> Any:
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store

    return open_store(settings_from_env(folder, env={}, in_process_worker=False))


def _accounts(store: Any, users: dict[str, str]) -> dict[str, str]:
    """Create ``{username: role}``; their session tokens by username."""
    from radloop.review.accounts import create_session, create_user
    from radloop.review.db import User

    tokens: dict[str, str] = {}
    with store.sessions() as session:
        for name, role in users.items():
            user = create_user(session, name, PASSWORD, role, f"Dr {name.title()}")
            session.commit()
            tokens[name] = create_session(session, store.settings, session.get(User, user.id))
    return tokens


def _drafted_studies(store: Any, n: int, *, flagged: bool) -> list[str]:
    """``n`` studies written as rows with a checked draft (one shared placeholder image).

    Routine: one supported finding. Flagged: two unsupported findings to decide besides it.
    """
    from radloop.lab.bench.review import insert_placeholder_studies
    from radloop.review.db import utcnow

    findings = [_ROUTINE_FINDING, *([_INVENTED_FINDING, _OTHER_FLAGGED] if flagged else [])]
    ids = [secrets.token_hex(8) for _ in range(n)]
    studies: list[dict[str, Any]] = [
        {
            "id": study_id,
            "study_instance_uid": f"2.25.{secrets.randbits(96)}",
            "patient_key": f"FAULT-{study_id}",
            "received_at": utcnow(),
            "urgent": False,
            "triage_reasons": [],
            "flag_count": 2 if flagged else 0,
            "site": "Faults",
            "manufacturer": "Faults",
            "age": 50,
            "sex": "F",
        }
        for study_id in ids
    ]
    drafts: list[dict[str, Any]] = [
        {
            "model": "faults-bench",
            "verifier": "faults-bench",
            "text": f"FINDINGS:\nHeart and mediastinum: Cardiomegaly.\n(study {i})\n",
            "findings": findings,
            "checks": [_check(f, k) for k, f in enumerate(findings)],
        }
        for i in range(n)
    ]
    insert_placeholder_studies(store, studies, drafts, side=128)
    return ids


SIDE = 128
"""Side in pixels of the studies the workers draft: the bundled 512 x 512 sample radiograph
taken down by 4, uncompressed, so that the reference verifier, the scope guard and the heatmaps
cost about 0.08 s of CPU a study (0.45 s at full size) and the worker's scheduling, not the
verifier, sets the pace. The scope guard still accepts it (flagged for clipped highlights)."""


def _sample_dataset(side: int = SIDE) -> Any:
    """The bundled sample radiograph, decoded once, taken down to ``side`` pixels a side and
    kept uncompressed (cheap to read)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    from radloop.study import sample_study_path

    ds = pydicom.dcmread(next(sample_study_path().glob("*.dcm")))
    ds.decompress()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    step = max(1, int(ds.Rows) // side)
    if step > 1:
        pixels = ds.pixel_array[::step, ::step].copy()
        ds.PixelData = pixels.tobytes()
        ds.Rows, ds.Columns = pixels.shape
        for name in ("PixelSpacing", "ImagerPixelSpacing"):
            if name in ds:
                ds[name].value = [float(v) * step for v in ds[name].value]
    return ds


def _ingested_studies(store: Any, scratch: Path, n: int, side: int = SIDE) -> list[str]:
    """``n`` copies of the sample radiograph as new studies, ingested: each has a queued job."""
    from pydicom.uid import generate_uid

    from radloop.review.ingest import ingest_path

    ds = _sample_dataset(side)
    source = scratch / "sources"
    for i in range(n):
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = f"FAULT-{i:04d}"
        folder = source / f"s{i:04d}"
        folder.mkdir(parents=True)
        ds.save_as(folder / "IM0001.dcm", enforce_file_format=True)
    added = list(ingest_path(store, source).added)
    shutil.rmtree(source, ignore_errors=True)
    return added


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def _server(folder: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``radloop serve`` (one process, no drafting worker) on a free loopback port."""
    port = _free_port()
    log = folder / "serve.log"
    command = [sys.executable, "-m", "radloop", "serve", "--data-dir", str(folder)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--no-worker", "--workers", "1"],
            env=_clean_env(folder, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield url, process
    finally:
        _stop(process)


def _worker(folder: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "radloop", "worker", "--data-dir", str(folder)],
            env=_clean_env(folder, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _client(url: str, token: str) -> Any:
    """A signed-in httpx client that sends the session's CSRF token with every call."""
    import httpx

    from radloop.review.deps import SESSION_COOKIE

    client = httpx.Client(base_url=url, headers={"Cookie": f"{SESSION_COOKIE}={token}"}, timeout=60)
    me = client.get("/api/me")
    me.raise_for_status()
    client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
    return client


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, released at the same instant; results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as error:  # counted by the caller
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _status(response: Any) -> str:
    return str(response.status_code) if hasattr(response, "status_code") else "error"


def _tally(codes: list[str]) -> dict[str, int]:
    return {code: codes.count(code) for code in sorted(set(codes))}


def _db(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(folder / "radloop.db", timeout=30)


# --- sign-off and decisions ------------------------------------------------------------------
