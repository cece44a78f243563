"""``radloop bench faults``: the workstation under faults (protocol in docs/benchmarks.md).

Every part runs against real processes on loopback: ``radloop serve`` (one process) or
``radloop worker`` started as subprocesses on a fresh SQLite store in a temporary directory,
driven over HTTP as signed-in users (login cookie), and read back from the database
afterwards. Each part is bounded in rounds and in seconds, prints one progress line on
stderr, and removes its files.

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

import datetime
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from radloop.lab.bench.faults.hostile import part_audit_tamper, part_bombs
from radloop.lab.bench.faults.signoff import (
    part_double_finals,
    part_lost_decisions,
    part_signed_unseen_text,
)
from radloop.lab.bench.faults.workers import part_model_hang, part_throughput, part_worker_kills

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
