"""``radloop bench review``: the workstation under load (protocol in docs/benchmarks.md).

A store with 10,000 studies is written straight into the database (one shared placeholder
image; a tenth carry a flagged draft, one in twenty is urgent), ``radloop serve`` is started
as a separate process on loopback, and 50 concurrent signed-in clients request the worklist
page and random study pages, back to back, for 30 s. Every request goes through the whole
stack: session lookup, queries, the audit-trail append and template rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

__all__ = ["ReviewLoadResult", "bench_review", "fill_load_store", "run_review_benchmark"]

_DRAFT_FINDINGS = [
    {
        "code": "pleural_effusion",
        "presence": "present",
        "side": "right",
        "probability": 0.91,
        "verdict": "supported",
    },
    {
        "code": "mass",
        "presence": "present",
        "side": "left",
        "size_mm": 23.0,
        "probability": 0.08,
        "verdict": "unsupported",
    },
]
_DRAFT_CHECKS = [
    {
        "finding": _DRAFT_FINDINGS[0],
        "verdict": "supported",
        "reasons": [],
        "index": 0,
        "numbers": {"verifier_code": "pleural_effusion"},
        "possible_omission": False,
    },
    {
        "finding": _DRAFT_FINDINGS[1],
        "verdict": "unsupported",
        "index": 1,
        "reasons": ["the verifier gives it 0.08 (minimum 0.30)"],
        "numbers": {"verifier_code": "mass"},
        "possible_omission": False,
    },
]


@dataclass(frozen=True)
class ReviewLoadResult:
    """Latency and throughput of the load run."""

    studies: int
    clients: int
    seconds: float
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    worklist_p95_ms: float
    study_p95_ms: float
    server_workers: int
    database: str
    server_cpu_ms_per_request: float | None
    client_cpu_ms_per_request: float
    load_generator: str
    audited_views: int
    audit_chain_intact: bool
    load_average: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PLACEHOLDER = "studies/placeholder.png"


def insert_placeholder_studies(
    store: Any, studies: list[dict[str, Any]], drafts: list[dict[str, Any]], *, side: int
) -> None:
    """Write drafted studies straight into the store's tables, all showing one placeholder
    image of ``side`` pixels (written if missing).

    Each of ``studies`` gives the columns that vary (``id``, ``study_instance_uid``,
    ``patient_key``, ``received_at``, triage and demographics); the rest are those of an
    accepted PA radiograph. Each of ``drafts`` gives ``text``, ``findings`` and ``checks`` for
    the study at the same place.
    """
    import numpy as np
    from sqlalchemy import insert

    from radloop.review.db import Draft, ImageRow, StudyRow, utcnow
    from radloop.review.render import image_png

    placeholder = store.data_dir / PLACEHOLDER
    if not placeholder.exists():
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        gradient = np.linspace(0, 1, side * side, dtype=np.float32).reshape(side, side)
        placeholder.write_bytes(image_png(gradient, side))
    constant = {
        "study_date": datetime.date(2024, 1, 1),
        "status": "ready",
        "pending": True,
        "out_of_scope": False,
        "scope_outcome": "accepted",
        "scope": [],
        "ood": False,
        "view": "PA",
        "modality": "DX",
        "source": PLACEHOLDER,
        "source_kind": "png",
        "image_stats": {"mean": 0.5, "std": 0.29, "p05": 0.05, "p95": 0.95},
    }
    rows = [{**constant, **study} for study in studies]
    images = [
        {
            "study_id": study["id"],
            "position": 0,
            "sop_instance_uid": f"2.25.{secrets.randbits(96)}",
            "view": "PA",
            "rows": side,
            "columns": side,
            "png": PLACEHOLDER,
        }
        for study in studies
    ]
    now = utcnow()
    written = [
        {"heatmaps": {}, "notice": None, "created_at": now, **draft, "study_id": study["id"]}
        for study, draft in zip(studies, drafts, strict=True)
    ]
    with store.engine.begin() as connection:
        for table, chunked in ((StudyRow, rows), (ImageRow, images), (Draft, written)):
            for chunk in range(0, len(chunked), 2000):
                connection.execute(insert(table), chunked[chunk : chunk + 2000])


def fill_load_store(data_dir: Path, n: int, *, seed: int = 0) -> tuple[list[str], str]:
    """Write ``n`` studies as rows (shared placeholder image); returns (ids, a session token)."""
    from sqlalchemy import text as sql

    from radloop.review.accounts import create_session, create_user
    from radloop.review.db import User, utcnow
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store

    settings = settings_from_env(data_dir)
    store = open_store(settings)
    rng = random.Random(seed)
    start = utcnow() - datetime.timedelta(hours=n / 100)
    ids = [secrets.token_hex(8) for _ in range(n)]
    studies: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for i, study_id in enumerate(ids):
        flagged = rng.random() < 0.1
        urgent = rng.random() < 0.05
        studies.append(
            {
                "id": study_id,
                "study_instance_uid": f"2.25.{seed}{i:08d}{rng.getrandbits(40)}",
                "patient_key": f"LOAD-{i}",
                "received_at": start + datetime.timedelta(seconds=36 * i),
                "urgent": urgent,
                "triage_reasons": ["pneumothorax (always critical)"] if urgent else [],
                "flag_count": int(flagged),
                "site": f"Site {i % 4}",
                "manufacturer": "Load",
                "age": 20 + i % 60,
                "sex": "MF"[i % 2],
            }
        )
        drafts.append(
            {
                "model": "load-test",
                "verifier": "load-test",
                "text": "FINDINGS:\nPleura: Right pleural effusion.\n",
                "findings": _DRAFT_FINDINGS if flagged else _DRAFT_FINDINGS[:1],
                "checks": _DRAFT_CHECKS if flagged else _DRAFT_CHECKS[:1],
            }
        )
    insert_placeholder_studies(store, studies, drafts, side=512)
    if store.engine.dialect.name == "postgresql":
        # What autovacuum would do a minute after a bulk load: without fresh statistics the
        # planner takes 10,000 rows for a few hundred and sorts the table instead of using
        # the worklist's index, and the benchmark would measure a store nobody runs.
        with store.engine.begin() as connection:
            for name in ("studies", "images", "drafts"):
                connection.execute(sql(f"ANALYZE {name}"))
    with store.sessions() as session:
        user = create_user(
            session,
            f"load{secrets.token_hex(3)}",
            secrets.token_urlsafe(16),
            "radiologist",
            "Load Tester",
        )
        session.commit()
        token = create_session(session, settings, session.get(User, user.id) or user)
    store.close()
    return ids, token


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and its children, from /proc (Linux only)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    try:
        pids = [pid] + [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and _parent(int(p.name)) == pid
        ]
        for each in pids:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None
    return total


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _audit_state(data_dir: Path) -> tuple[int, bool]:
    """(audit entries, whether the chain verifies) of the store the server wrote to."""
    from sqlalchemy import func, select

    from radloop.review.audit import verify_chain
    from radloop.review.db import AuditEntry
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store

    store = open_store(settings_from_env(data_dir), upgrade=False)
    try:
        with store.sessions() as session:
            count = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
            _, problems = verify_chain(session, store.seal)
    finally:
        store.close()
    return int(count), not problems


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60
) -> None:
    """Until ``url``'s login page answers; raises if ``process`` exits first (with the end of
    its ``log``) or after ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"the server exited with status {process.returncode}: {tail}")
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:g} s")


class _LoadClient:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams.

    The load generator shares the machine's cores with the server, so it must cost far less
    than the server per request: an httpx client spends about as much CPU on a request as
    the server does, and the benchmark then measures the client. This one writes a fixed
    request head and reads the status line, the headers and a Content-Length (or chunked)
    body; nothing else of HTTP is needed against our own server.
    """

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.host = host
        self.port = port
        self.cookie = cookie
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Cookie: {self.cookie}\r\n\r\n".encode("latin-1")
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.read()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _load(
    url: str, token: str, ids: list[str], clients: int, seconds: float
) -> list[tuple[str, float, bool]]:
    """``clients`` signed-in clients, each requesting back to back until ``seconds`` pass."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    samples: list[tuple[str, float, bool]] = []
    stop_at = time.perf_counter() + seconds

    async def one_client(k: int) -> None:
        rng = random.Random(k)
        connection = _LoadClient(host, int(port), f"radloop_session={token}")
        try:
            while time.perf_counter() < stop_at:
                kind = "worklist" if rng.random() < 0.5 else "study"
                if kind == "worklist":
                    path = f"/?page={rng.randint(1, 20)}"
                else:
                    path = f"/studies/{rng.choice(ids)}"
                started = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(connection.get(path), 30)
                    ok = status == 200 and b"radloop" in body
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    await connection.close()
                    ok = False
                samples.append((kind, time.perf_counter() - started, ok))
        finally:
            await connection.close()

    await asyncio.gather(*(one_client(k) for k in range(clients)))
    return samples


LOAD_GENERATOR = "asyncio raw HTTP/1.1 keep-alive, one process"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)


def run_review_benchmark(
    n: int = 10_000,
    clients: int = 50,
    seconds: float = 30.0,
    workers: int = 2,
    data_dir: Path | None = None,
) -> ReviewLoadResult:
    """Fill a store, start ``radloop serve`` on loopback, run the clients; the figures.

    With PostgreSQL (``RADLOOP_DATABASE_URL``) and no ``RADLOOP_DB_SCHEMA``, the run gets a
    schema of its own, dropped afterwards, so that runs never see each other's studies.
    """
    with _own_schema():
        return _run(n, clients, seconds, workers, data_dir)


@contextlib.contextmanager
def _own_schema() -> Iterator[None]:
    url = os.environ.get("RADLOOP_DATABASE_URL", "")
    if not url.startswith("postgresql") or os.environ.get("RADLOOP_DB_SCHEMA"):
        yield
        return
    from sqlalchemy import create_engine, text

    schema = f"radloop_bench_{secrets.token_hex(4)}"
    os.environ["RADLOOP_DB_SCHEMA"] = schema
    try:
        yield
    finally:
        del os.environ["RADLOOP_DB_SCHEMA"]
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _run(
    n: int, clients: int, seconds: float, workers: int, data_dir: Path | None
) -> ReviewLoadResult:
    with tempfile.TemporaryDirectory(prefix="radloop-bench-review-") as scratch:
        folder = data_dir or Path(scratch)
        ids, token = fill_load_store(folder, n)
        port = _free_port()
        env = {**os.environ, "RADLOOP_DATA_DIR": str(folder)}
        command = [
            sys.executable,
            "-m",
            "radloop",
            "serve",
            "--data-dir",
            str(folder),
            "--port",
            str(port),
            "--no-worker",
            "--workers",
            str(workers),
        ]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process)
            asyncio.run(_load(url, token, ids, clients, min(seconds, 2.0)))  # warm-up
            audited_before, _ = _audit_state(folder)
            cpu_before = _cpu_seconds(process.pid)
            client_before = time.process_time()
            started = time.perf_counter()
            samples = asyncio.run(_load(url, token, ids, clients, seconds))
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            cpu_after = _cpu_seconds(process.pid)
            load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        finally:
            process.terminate()
            process.wait(timeout=30)
        # Every view is audited before it is answered: the trail must have grown by exactly
        # the answered views of the timed run, and its hash chain must still verify.
        audited_after, intact = _audit_state(folder)
    times = [t for _, t, _ in samples]
    database = "sqlite" if not os.environ.get("RADLOOP_DATABASE_URL") else "postgresql"
    # (the server process reads the same RADLOOP_* variables, so it opens the same database)
    return ReviewLoadResult(
        studies=n,
        clients=clients,
        seconds=round(elapsed, 1),
        requests=len(samples),
        errors=sum(not ok for *_, ok in samples),
        requests_per_s=round(len(samples) / elapsed, 1),
        p50_ms=_percentile(times, 50),
        p95_ms=_percentile(times, 95),
        p99_ms=_percentile(times, 99),
        worklist_p95_ms=_percentile([t for k, t, _ in samples if k == "worklist"], 95),
        study_p95_ms=_percentile([t for k, t, _ in samples if k == "study"], 95),
        server_workers=workers,
        database=database,
        server_cpu_ms_per_request=(
            round((cpu_after - cpu_before) * 1000 / len(samples), 2)
            if cpu_before is not None and cpu_after is not None and samples
            else None
        ),
        client_cpu_ms_per_request=round(client_cpu * 1000 / max(1, len(samples)), 2),
        load_generator=LOAD_GENERATOR,
        audited_views=audited_after - audited_before,
        audit_chain_intact=intact,
        load_average=None if load_average is None else round(load_average, 1),
    )


P95_BAR_MS = 100.0
"""The workstation's bar: p95 at most this with 50 clients and 10,000 studies on SQLite."""


def format_review_benchmark(result: ReviewLoadResult) -> str:
    verdict = (
        "meets"
        if result.p95_ms <= P95_BAR_MS
        and result.errors == 0
        and result.audit_chain_intact
        and result.audited_views == result.requests
        else "misses"
    )
    return "\n".join(
        [
            f"review workstation, {result.studies:,} studies, {result.clients} concurrent clients, "
            f"{result.seconds} s ({result.database}, {result.server_workers} server process(es))",
            f"  requests {result.requests:,} ({result.requests_per_s}/s), errors {result.errors}",
            f"  latency p50 {result.p50_ms} ms  p95 {result.p95_ms} ms  p99 {result.p99_ms} ms",
            f"  p95 worklist {result.worklist_p95_ms} ms, study page {result.study_p95_ms} ms",
            f"  CPU a request: server {result.server_cpu_ms_per_request} ms, load generator "
            f"{result.client_cpu_ms_per_request} ms ({result.load_generator}); machine load "
            f"average {result.load_average} at the end of the run",
            f"  audit trail: {result.audited_views:,} views recorded during the run, chain "
            f"{'intact' if result.audit_chain_intact else 'BROKEN'}",
            f"  {verdict} the bar (p95 <= {P95_BAR_MS:g} ms, no errors, every view audited)",
        ]
    )


@click.command()
@click.option("--studies", default=10_000, show_default=True, help="Studies in the store.")
@click.option("--clients", default=50, show_default=True, help="Concurrent clients.")
@click.option("--seconds", default=30.0, show_default=True, help="Length of the run.")
@click.option("--workers", default=2, show_default=True, help="Server processes (one a core here).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_review(studies: int, clients: int, seconds: float, workers: int, as_json: bool) -> None:
    """Load on the review workstation: worklist and study pages (docs/benchmarks.md)."""
    result = run_review_benchmark(studies, clients, seconds, workers)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(format_review_benchmark(result))
