"""``radloop bench faults``: the workstation under faults (protocol in docs/benchmarks.md).

Every part runs against real processes on loopback: ``radloop serve`` (one process) or
``radloop worker`` started as subprocesses on a fresh SQLite store in a temporary directory,
driven over HTTP with session cookies, and read back from the database afterwards. Each part is
bounded in rounds and in seconds, prints one progress line on stderr, and removes its files.

- ``double_finals``: two radiologists sign the same fresh study at the same instant (two
  threads released by a barrier); studies with more than one final report. Bar 0.
- ``signed_unseen_text``: reader A loads the worksheet (version v), B saves other text, A signs
  with v (half the rounds in sequence, half with B's save and A's sign released together);
  final reports whose text A never saw. Bar 0.
- ``lost_decisions``: two readers decide different findings of one study at once; decisions
  answered 200 that are missing afterwards. Bar 0.
- ``bombs``: decompression bombs (a few kB declaring 9,999 x 9,999 pixels, RLE and JPEG-LS,
  a multi-frame one, a zip of 20) through ``POST /api/upload`` and STOW-RS; each must get 422;
  the server's peak RSS (VmHWM). Bar <= 1024 MiB.
- ``audit_tamper``: three tamperings by someone with the database only, each on a fresh copy
  of a store with signed reports; ``radloop audit verify`` must exit 1. Bar 3 of 3.
- ``model_hang``: a model server that never answers; 8 questions in flight while GET
  /api/worklist and GET /login are timed for 5 s. Bar p95 <= 200 ms.
- ``worker_kills``: ``radloop worker`` killed with SIGKILL 20 times while drafting against a
  slow model, restarted each time, then left to finish; stuck, lost and duplicated work.
- ``throughput``: a model server with exactly 8 slots and 1 s latency, one worker process;
  studies drafted per second over 8. Bar >= 0.9.

The benchmark always uses the embedded SQLite store (a copy of the store is part of the
tampering protocol), whatever ``RADLOOP_*`` variables are set.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import io
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import click

from radloop.lab.bench.review import _cpu_seconds, _free_port, _percentile
from radloop.lab.bench.slow_model_server import FakeModelServer

__all__ = ["PARTS", "bench_faults", "format_faults_benchmark", "run_faults_benchmark"]

PARTS = (
    "double_finals",
    "signed_unseen_text",
    "lost_decisions",
    "bombs",
    "audit_tamper",
    "model_hang",
    "worker_kills",
    "throughput",
)

BARS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "double_finals": ("= 0", lambda v: v == 0),
    "signed_unseen_text": ("= 0", lambda v: v == 0),
    "lost_decisions": ("= 0", lambda v: v == 0),
    "bomb_peak_rss_mb": ("<= 1024", lambda v: v <= 1024),
    "audit_tamper_detected": ("3/3", lambda v: v == "3/3"),
    "worklist_p95_ms_while_model_hangs": ("<= 200", lambda v: v <= 200),
    "stuck_jobs": ("= 0", lambda v: v == 0),
    "lost_jobs": ("= 0", lambda v: v == 0),
    "duplicate_drafts": ("= 0", lambda v: v == 0),
    "throughput_ratio": (">= 0.9", lambda v: v >= 0.9),
}
"""Each headline figure, its bar as written, and the test of it (None: not measured)."""

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
    import numpy as np
    from sqlalchemy import insert

    from radloop.review.db import Draft, ImageRow, StudyRow, utcnow
    from radloop.review.render import image_png

    placeholder = store.data_dir / "studies" / "placeholder.png"
    if not placeholder.exists():
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        gradient = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
        placeholder.write_bytes(image_png(gradient, 128))
    findings = [_ROUTINE_FINDING, *([_INVENTED_FINDING, _OTHER_FLAGGED] if flagged else [])]
    ids = [secrets.token_hex(8) for _ in range(n)]
    studies: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for i, study_id in enumerate(ids):
        studies.append(
            {
                "id": study_id,
                "study_instance_uid": f"2.25.{secrets.randbits(96)}",
                "patient_key": f"FAULT-{study_id}",
                "study_date": datetime.date(2024, 1, 1),
                "received_at": utcnow(),
                "status": "ready",
                "pending": True,
                "urgent": False,
                "triage_reasons": [],
                "flag_count": 2 if flagged else 0,
                "out_of_scope": False,
                "scope_outcome": "accepted",
                "scope": [],
                "ood": False,
                "site": "Faults",
                "manufacturer": "Faults",
                "age": 50,
                "sex": "F",
                "view": "PA",
                "modality": "DX",
                "source": "studies/placeholder.png",
                "source_kind": "png",
                "image_stats": {"mean": 0.5, "std": 0.29, "p05": 0.05, "p95": 0.95},
            }
        )
        images.append(
            {
                "study_id": study_id,
                "position": 0,
                "sop_instance_uid": f"2.25.{secrets.randbits(96)}",
                "view": "PA",
                "rows": 128,
                "columns": 128,
                "png": "studies/placeholder.png",
            }
        )
        drafts.append(
            {
                "study_id": study_id,
                "model": "faults-bench",
                "verifier": "faults-bench",
                "text": f"FINDINGS:\nHeart and mediastinum: Cardiomegaly.\n(study {i})\n",
                "findings": findings,
                "checks": [_check(f, k) for k, f in enumerate(findings)],
                "heatmaps": {},
                "notice": None,
                "created_at": utcnow(),
            }
        )
    with store.engine.begin() as connection:
        for table, rows in ((StudyRow, studies), (ImageRow, images), (Draft, drafts)):
            connection.execute(insert(table), rows)
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


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the server exited with status {process.returncode}: {tail}")
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:g} s")


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
        _wait_ready(url, process, log)
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


def part_double_finals(scratch: Path, rounds: int = 50) -> dict[str, Any]:
    """Two radiologists sign each fresh study at the same instant."""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=False)
    tokens = _accounts(store, {"rad_a": "radiologist", "rad_b": "radiologist"})
    store.close()
    codes: list[str] = []
    winners: list[int] = []
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["rad_a"]), _client(url, tokens["rad_b"])
        for study in ids:
            version = a.get(f"/api/studies/{study}").json().get("version")
            body = {"version": version}
            answers = _together(
                [partial(c.post, f"/api/studies/{study}/sign", json=body) for c in (a, b)]
            )
            round_codes = [_status(r) for r in answers]
            codes += round_codes
            winners.append(round_codes.count("200"))
        a.close()
        b.close()
    with contextlib.closing(_db(scratch)) as db:
        finals = db.execute(
            "SELECT study_id, COUNT(*) FROM signed_reports WHERE kind = 'final' GROUP BY study_id"
        ).fetchall()
    per_study = dict(finals)
    return {
        "double_finals": sum(1 for s in ids if per_study.get(s, 0) > 1),
        "rounds": rounds,
        "studies_signed_once": sum(1 for s in ids if per_study.get(s, 0) == 1),
        "studies_unsigned": sum(1 for s in ids if per_study.get(s, 0) == 0),
        "responses": _tally(codes),
        "rounds_with_two_200": winners.count(2),
    }


def part_signed_unseen_text(scratch: Path, rounds: int = 20) -> dict[str, Any]:
    """A loads (version v), B saves other text, A signs with v: did A sign text unseen?"""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=False)
    tokens = _accounts(store, {"reader_a": "radiologist", "reader_b": "radiologist"})
    store.close()
    seen: dict[str, str] = {}
    sign_codes: list[str] = []
    save_codes: list[str] = []
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["reader_a"]), _client(url, tokens["reader_b"])
        for k, study in enumerate(ids):
            detail = a.get(f"/api/studies/{study}").json()
            seen[study] = detail.get("text", "")
            version = detail.get("version")
            other = {"text": f"B's text of round {k}: large right pneumothorax.",
                     "version": version}  # fmt: skip
            sign = {"version": version}
            if k % 2 == 0:  # in sequence: B saves, then A signs what it saw
                saved = b.put(f"/api/studies/{study}/text", json=other)
                signed = a.post(f"/api/studies/{study}/sign", json=sign)
            else:  # B's save and A's sign released together
                saved, signed = _together(
                    [
                        partial(b.put, f"/api/studies/{study}/text", json=other),
                        partial(a.post, f"/api/studies/{study}/sign", json=sign),
                    ]
                )
            save_codes.append(_status(saved))
            sign_codes.append(_status(signed))
        a.close()
        b.close()
    with contextlib.closing(_db(scratch)) as db:
        finals = db.execute(
            "SELECT study_id, text FROM signed_reports WHERE kind = 'final'"
        ).fetchall()
    # (a signed report keeps the text without its trailing whitespace)
    unseen = [s for s, text in finals if s in seen and text.strip() != seen[s].strip()]
    return {
        "signed_unseen_text": len(unseen),
        "rounds": rounds,
        "final_reports": sum(1 for s, _ in finals if s in seen),
        "sign_responses": _tally(sign_codes),
        "save_responses": _tally(save_codes),
    }


def part_lost_decisions(scratch: Path, rounds: int = 20) -> dict[str, Any]:
    """Two readers decide different findings of one study at the same instant."""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=True)
    tokens = _accounts(store, {"reader_a": "radiologist", "reader_b": "radiologist"})
    store.close()
    codes: list[str] = []
    lost = sent = refused = 0
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["reader_a"]), _client(url, tokens["reader_b"])
        for study in ids:
            detail = a.get(f"/api/studies/{study}").json()
            keys = [item["key"] for item in detail.get("items", []) if item.get("flagged")]
            keys = keys or [item["key"] for item in detail.get("items", [])]
            if len(keys) < 2:
                raise RuntimeError(f"expected two findings to decide, got {keys}")
            version = detail.get("version")
            wanted = {keys[0]: "rejected", keys[1]: "accepted"}
            answers = _together(
                [
                    partial(
                        c.post,
                        f"/api/studies/{study}/findings/{k}",
                        json={"decision": wanted[k], "version": version},
                    )
                    for c, k in ((a, keys[0]), (b, keys[1]))
                ]
            )
            round_codes = [_status(r) for r in answers]
            codes += round_codes
            after = {
                item["key"]: item.get("decision")
                for item in a.get(f"/api/studies/{study}").json().get("items", [])
            }
            for key, code in zip(keys[:2], round_codes, strict=True):
                sent += 1
                if code != "200":
                    refused += 1
                elif after.get(key) != wanted[key]:
                    lost += 1
        a.close()
        b.close()
    return {
        "lost_decisions": lost,
        "rounds": rounds,
        "decisions_sent": sent,
        "decisions_refused": refused,
        "responses": _tally(codes),
    }


# --- decompression bombs ---------------------------------------------------------------------


def _bomb(syntax: str, *, samples: int = 1) -> bytes:
    """A few kB of DICOM whose header claims 9,999 x 9,999 16-bit pixels (x ``samples``)."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless, RLELossless, generate_uid

    ds = _bomb_base()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = {"rle": RLELossless, "jpeg-ls": JPEGLSLossless}[syntax]
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored = 9999, 9999, 16, 16
    ds.HighBit, ds.SamplesPerPixel = 15, samples
    if samples == 3:
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


_BOMB_BASE: Any = None


def _bomb_base() -> Any:
    global _BOMB_BASE
    if _BOMB_BASE is None:
        import pydicom

        from radloop.study import sample_study_path

        _BOMB_BASE = pydicom.dcmread(next(sample_study_path().glob("*.dcm")))
    return copy.deepcopy(_BOMB_BASE)


def _vm_hwm_mb(pid: int) -> float | None:
    """The peak resident set (VmHWM) of a process in MiB, from /proc (Linux only)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


_DECODED = re.compile(r"=\s*([\d.]+)\s*([KMGT]i?B)")


def _decoded_mb(detail: str) -> float | None:
    """The largest decoded size a refusal names, in MiB."""
    scale = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
    sizes = [float(n) * scale[u[0]] for n, u in _DECODED.findall(detail)]
    return round(max(sizes), 1) if sizes else None


def part_bombs(scratch: Path, zipped: int = 20) -> dict[str, Any]:
    """Bombs through upload (single, zip) and STOW-RS; each must be refused with 422."""
    store = _open_store(scratch)
    tokens = _accounts(store, {"ingester": "admin"})
    store.close()
    rle, jpegls = _bomb("rle"), _bomb("jpeg-ls")
    huge = _bomb("rle", samples=3)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(zipped):
            zf.writestr(f"study{k}/IM0001.dcm", _bomb("rle" if k % 2 else "jpeg-ls"))
    boundary = "radloop-faults-boundary"

    def stow(*parts: bytes) -> tuple[bytes, dict[str, str]]:
        body = (
            b"".join(
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
                for p in parts
            )
            + f"--{boundary}--\r\n".encode()
        )
        kind = f'multipart/related; type="application/dicom"; boundary={boundary}'
        return body, {"Content-Type": kind}

    results: dict[str, dict[str, Any]] = {}
    with _server(scratch) as (url, process):
        client = _client(url, tokens["ingester"])
        before = _vm_hwm_mb(process.pid)
        sends: list[tuple[str, Callable[[], Any]]] = [
            ("upload_rle", lambda: client.post(
                "/api/upload", files=[("files", ("bomb.dcm", rle, "application/dicom"))])),
            ("upload_jpeg_ls", lambda: client.post(
                "/api/upload", files=[("files", ("bomb.dcm", jpegls, "application/dicom"))])),
            ("upload_rgb", lambda: client.post(
                "/api/upload", files=[("files", ("bomb.dcm", huge, "application/dicom"))])),
            ("upload_zip_of_20", lambda: client.post(
                "/api/upload",
                files=[("files", ("bombs.zip", archive.getvalue(), "application/zip"))])),
            ("stow_rle", lambda: client.post(
                "/dicomweb/studies", content=stow(rle)[0], headers=stow(rle)[1])),
            ("stow_three", lambda: client.post(
                "/dicomweb/studies", content=stow(rle, jpegls, huge)[0],
                headers=stow(rle, jpegls, huge)[1])),
        ]  # fmt: skip
        for name, send in sends:
            response = send()
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:500]
            results[name] = {
                "status": response.status_code,
                "bytes_sent": {
                    "upload_rle": len(rle),
                    "upload_jpeg_ls": len(jpegls),
                    "upload_rgb": len(huge),
                    "upload_zip_of_20": len(archive.getvalue()),
                    "stow_rle": len(rle),
                    "stow_three": len(rle) + len(jpegls) + len(huge),
                }[name],
                "decoded_mb": _decoded_mb(detail),
                "detail": detail[:300],
            }
        peak = _vm_hwm_mb(process.pid)
        client.close()
    with contextlib.closing(_db(scratch)) as db:
        stored = db.execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    refused = [r for r in results.values() if r["status"] == 422]
    sizes = [r["decoded_mb"] for r in refused if r["decoded_mb"] is not None]
    return {
        "bomb_peak_rss_mb": peak,
        "largest_refused_decoded_mb": max(sizes) if sizes else None,
        "refused_422": f"{len(refused)}/{len(results)}",
        "studies_stored": stored,
        "server_rss_before_mb": before,
        "sends": results,
    }


# --- audit tampering -------------------------------------------------------------------------


def _drop_triggers(db: sqlite3.Connection, table: str) -> list[str]:
    triggers = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
    ).fetchall()
    for (name,) in triggers:
        db.execute(f'DROP TRIGGER "{name}"')
    return [name for (name,) in triggers]


def _tamper_report(folder: Path) -> str:
    with contextlib.closing(_db(folder)) as db, db:
        dropped = _drop_triggers(db, "signed_reports")
        report = db.execute(
            "SELECT id FROM signed_reports WHERE kind = 'final' ORDER BY id LIMIT 1"
        ).fetchone()
        db.execute("UPDATE signed_reports SET text = 'No acute abnormality.' WHERE id = ?", report)
    return f"dropped {', '.join(dropped) or 'no triggers'}; rewrote final report {report[0]}"


def _tamper_truncate(folder: Path, n: int = 25) -> str:
    with contextlib.closing(_db(folder)) as db, db:
        _drop_triggers(db, "audit_log")
        last = db.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
        db.execute("DELETE FROM audit_log WHERE seq > ?", (last - n,))
    return f"deleted entries {last - n + 1}..{last}"


def _tamper_rechain(folder: Path) -> str:
    from radloop.review import audit

    with contextlib.closing(_db(folder)) as db, db:
        db.row_factory = sqlite3.Row
        _drop_triggers(db, "audit_log")
        rows = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY seq")]
        target = next(i for i, row in enumerate(rows) if row["action"] == "sign")
        rows[target]["detail"] = json.dumps({"text": "No acute abnormality."})
        prev = rows[target - 1]["hash"] if target else audit.GENESIS
        for row in rows[target:]:
            row["prev_hash"] = prev
            row["hash"] = audit.entry_hash(
                prev, row["seq"], row["at"], row["username"], row["action"], row["target"],
                row["detail"],
            )  # fmt: skip
            prev = row["hash"]
        db.execute("DELETE FROM audit_log")
        columns = list(rows[0])
        db.executemany(
            f"INSERT INTO audit_log ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [tuple(row[c] for c in columns) for row in rows],
        )
    return f"edited entry {rows[target]['seq']} and recomputed {len(rows) - target} hashes"


def _audit_verify(folder: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "radloop", "audit", "verify", "--data-dir", str(folder)],
        env=_clean_env(folder),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).strip().splitlines()[-1:][0][:300]


def part_audit_tamper(scratch: Path, signed: int = 3) -> dict[str, Any]:
    """Three tamperings, each on a fresh copy of a store with signed reports and history."""
    origin = scratch / "origin"
    origin.mkdir()
    store = _open_store(origin)
    ids = _drafted_studies(store, signed, flagged=False)
    tokens = _accounts(store, {"rad": "radiologist", "aud": "auditor"})
    store.close()
    with _server(origin) as (url, _):
        rad, aud = _client(url, tokens["rad"]), _client(url, tokens["aud"])
        for study in ids:
            version = rad.get(f"/api/studies/{study}").json().get("version")
            rad.post(f"/api/studies/{study}/sign", json={"version": version}).raise_for_status()
        for _ in range(30):
            aud.get("/api/worklist").raise_for_status()
        rad.close()
        aud.close()
    scenarios: dict[str, Callable[[Path], str]] = {
        "report_rewritten_with_trigger_dropped": _tamper_report,
        "last_25_entries_deleted": _tamper_truncate,
        "entry_edited_and_chain_recomputed": _tamper_rechain,
    }
    clean = scratch / "clean"
    shutil.copytree(origin, clean)
    clean_code, clean_line = _audit_verify(clean)
    detected: dict[str, bool] = {}
    details: dict[str, Any] = {}
    for name, tamper in scenarios.items():
        copy = scratch / name
        shutil.copytree(origin, copy)
        what = tamper(copy)
        code, line = _audit_verify(copy)
        detected[name] = code == 1
        details[name] = {"tampering": what, "exit_code": code, "verify_says": line}
    return {
        "audit_tamper_detected": f"{sum(detected.values())}/{len(detected)}",
        **detected,
        "untampered_copy_verifies": clean_code == 0,
        "untampered_says": clean_line,
        "scenarios": details,
    }


# --- a model that hangs ----------------------------------------------------------------------


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
    return {
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

_RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "double_finals": part_double_finals,
    "signed_unseen_text": part_signed_unseen_text,
    "lost_decisions": part_lost_decisions,
    "bombs": part_bombs,
    "audit_tamper": part_audit_tamper,
    "model_hang": part_model_hang,
    "worker_kills": part_worker_kills,
    "throughput": part_throughput,
}
_HEADLINES = {
    "double_finals": ["double_finals"],
    "signed_unseen_text": ["signed_unseen_text"],
    "lost_decisions": ["lost_decisions"],
    "bombs": ["bomb_peak_rss_mb", "largest_refused_decoded_mb"],
    "audit_tamper": ["audit_tamper_detected"],
    "model_hang": ["worklist_p95_ms_while_model_hangs"],
    "worker_kills": ["stuck_jobs", "lost_jobs", "duplicate_drafts", "failed_jobs", "kills"],
    "throughput": ["throughput_ratio"],
}


def run_faults_benchmark(
    parts: tuple[str, ...] | list[str] = PARTS,
    *,
    sizes: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen parts (``sizes``: keyword arguments per part, to make them smaller);
    the headline figures at the top level, each part's details under ``details``."""
    unknown = [p for p in parts if p not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; expected some of {list(PARTS)}")
    sizes = sizes or {}
    out: dict[str, Any] = {
        "benchmark": "faults",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "database": "sqlite",
        "parts": list(parts),
    }
    details: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for part in parts:
        if progress is not None:
            progress(f"faults: {part} ...")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"radloop-faults-{part}-") as scratch:
            try:
                result = _RUNNERS[part](Path(scratch), **sizes.get(part, {}))
            except Exception as error:  # one broken part must not hide the others
                result = {"error": f"{type(error).__name__}: {error}"[:1000]}
        seconds[part] = round(time.perf_counter() - started, 1)
        details[part] = result
        for key in _HEADLINES[part]:
            out[key] = result.get(key)
        if progress is not None:
            shown = ", ".join(f"{k} {result.get(k)}" for k in _HEADLINES[part])
            if "error" in result:
                shown = f"ERROR {result['error'][:200]}"
            progress(f"faults: {part} done in {seconds[part]} s: {shown}")
    out["bars"] = {
        key: {"bar": bar, "meets": None if out[key] is None else bool(test(out[key]))}
        for key, (bar, test) in BARS.items()
        if key in out
    }
    out["seconds"] = seconds
    out["details"] = details
    return out


def format_faults_benchmark(result: dict[str, Any]) -> str:
    lines = [f"faults ({result['database']}, {result['machine']}, {result['date']})"]
    for part in result["parts"]:
        detail = result["details"][part]
        lines.append(f"  {part} ({result['seconds'][part]} s)")
        if "error" in detail:
            lines.append(f"    ERROR {detail['error']}")
            continue
        for key in _HEADLINES[part]:
            bar = result["bars"].get(key)
            verdict = ""
            if bar is not None:
                met = {True: "meets", False: "MISSES", None: "not measured"}[bar["meets"]]
                verdict = f"  (bar {bar['bar']}: {met})"
            lines.append(f"    {key}: {result.get(key)}{verdict}")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(PARTS),
    help="Run only this part (repeat for several; default: all).",
)
def bench_faults(as_json: bool, only: tuple[str, ...]) -> None:
    """Faults: racing signers, bombs, tampering, a hung model, killed workers.

    Protocol and bars in docs/benchmarks.md; each part prints a progress line on stderr."""
    parts = only or PARTS
    result = run_faults_benchmark(parts, progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_faults_benchmark(result))
