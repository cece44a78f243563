"""Hostile input and a hostile database: decompression bombs and audit-trail tampering."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radloop.lab.bench.faults.common import (
    _accounts,
    _clean_env,
    _client,
    _db,
    _drafted_studies,
    _open_store,
    _server,
)


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
