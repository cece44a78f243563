"""The audit trail: append-only, hash-chained, so that an edited or deleted row is detectable.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own canonical JSON
(sequence number, time, user, action, target, detail). ``prev_hash`` is UNIQUE, so two writers
racing to extend the chain cannot fork it: one insert fails and is retried on the new tip.
Database triggers (see the migrations) refuse UPDATE and DELETE; :func:`verify_chain` catches
what gets past them (someone with the database file and a text editor).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radloop.review.db import AuditEntry, utcnow

try:
    import fcntl
except ImportError:  # Windows: SQLite's own locking (with polling) still keeps it correct
    fcntl = None  # type: ignore[assignment]

__all__ = ["GENESIS", "AuditProblem", "ChainWriter", "entry_hash", "record", "verify_chain"]

GENESIS = "0" * 64
_RETRIES = 20
_ADVISORY_KEY = 0x7261646C6F6F70  # "radloop"
_audit = cast(Table, AuditEntry.__table__)
# Built once: every page view appends to the chain, and building the statements cost more
# than running them.
_TIP = select(_audit.c.seq, _audit.c.hash).order_by(_audit.c.seq.desc()).limit(1)
_INSERT = insert(_audit)
_LOCK = sql("SELECT pg_advisory_xact_lock(:key)")


@dataclass(frozen=True)
class AuditProblem:
    """One place where the chain does not hold."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


def entry_hash(
    prev_hash: str, seq: int, at: str, username: str, action: str, target: str, detail: str
) -> str:
    """The chain hash of one entry (hex SHA-256)."""
    body = json.dumps([seq, at, username, action, target, detail], separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def record(
    sessions: sessionmaker[Session],
    username: str,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
    *,
    lock: threading.Lock | None = None,
) -> int:
    """Append one event in its own transaction; returns its sequence number.

    ``lock`` serialises appends within a process (the app passes one), so that threads do
    not spend their time retrying; the UNIQUE ``prev_hash`` still guards other processes.
    """
    text = _canonical(detail)
    for _ in range(_RETRIES):
        with lock or contextlib.nullcontext(), sessions() as session:
            last = session.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
            ).first()
            seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
            at = utcnow().isoformat(timespec="microseconds")
            digest = entry_hash(prev, seq, at, username, action, target[:200], text)
            session.add(
                AuditEntry(
                    seq=seq,
                    at=at,
                    username=username,
                    action=action,
                    target=target[:200],
                    detail=text,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            try:
                session.commit()
            except IntegrityError:  # another writer took this place in the chain
                session.rollback()
                continue
            return seq
    raise RuntimeError(f"could not append to the audit chain after {_RETRIES} attempts")


@dataclass
class _Pending:
    """One event waiting for its place in the chain; ``seq`` is set once it is committed."""

    username: str
    action: str
    target: str
    detail: str
    seq: int | None = None
    error: BaseException | None = None


class ChainWriter:
    """Appends for one process, with group commit.

    Every caller waits until its own event is committed (the audit of a page view is
    durable before the page is sent), but callers arriving while a transaction is being
    written queue up, and the next one of them writes the whole queue in one transaction
    (group commit): under load one commit serves dozens of views instead of each view
    holding a process-wide lock across its own transaction. No background thread: nothing
    waits in memory when the process stops, because an event's caller only returns once it
    is in the database, and a failed transaction raises in every caller it carried.

    Each transaction reads the chain's tip; when another process has extended the chain
    between that read and the insert, the insert breaks a UNIQUE constraint (seq or
    prev_hash), and the batch is rewritten on the new tip, so the chain never forks. On PostgreSQL,
    where several server processes are the normal case, each transaction takes an advisory
    lock and reads the tip fresh instead, so busy processes do not keep colliding.
    """

    batch_limit = 500

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()  # held by the thread writing a batch
        self._file_lock = _sqlite_lock_path(engine)
        self._ready = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(
        self, username: str, action: str, target: str = "", detail: Mapping[str, Any] | None = None
    ) -> int:
        """Append one event; returns its sequence number once it is committed."""
        item = _Pending(username, action, target[:200], _canonical(detail))
        with self._ready:
            self._queue.append(item)
            while self._writing and item.seq is None and item.error is None:
                self._ready.wait()
            if item.error is not None:
                raise item.error
            if item.seq is not None:
                return item.seq
            self._writing = True
            batch, self._queue = self._queue, []
        try:
            with self.lock, _locked(self._file_lock):
                for start in range(0, len(batch), self.batch_limit):
                    self._write(batch[start : start + self.batch_limit])
        except BaseException as error:
            for pending in batch:
                if pending.seq is None:
                    pending.error = error
            raise
        finally:
            with self._ready:
                self._writing = False
                self._ready.notify_all()
        assert item.seq is not None
        return item.seq

    def _write(self, batch: list[_Pending]) -> None:
        """Write ``batch`` as consecutive entries in one transaction; sets each ``seq``."""
        for _ in range(_RETRIES):
            with self.engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(_LOCK, {"key": _ADVISORY_KEY})
                # Read the tip for every transaction: a remembered tip is stale whenever
                # another server process appended meanwhile, and with two busy processes
                # that is nearly always (a failed insert and a retry per batch).
                last = connection.execute(_TIP).first()
                seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
                rows = []
                for offset, pending in enumerate(batch):
                    at = utcnow().isoformat(timespec="microseconds")
                    digest = entry_hash(
                        prev,
                        seq + offset,
                        at,
                        pending.username,
                        pending.action,
                        pending.target,
                        pending.detail,
                    )
                    rows.append(
                        {
                            "seq": seq + offset,
                            "at": at,
                            "username": pending.username,
                            "action": pending.action,
                            "target": pending.target,
                            "detail": pending.detail,
                            "prev_hash": prev,
                            "hash": digest,
                        }
                    )
                    prev = digest
                try:
                    connection.execute(_INSERT, rows)
                    connection.commit()
                except IntegrityError:  # another process extended the chain meanwhile
                    connection.rollback()
                    continue
                for offset, pending in enumerate(batch):
                    pending.seq = seq + offset
                return
        raise RuntimeError(f"could not append to the audit chain after {_RETRIES} attempts")


def _sqlite_lock_path(engine: Engine) -> Path | None:
    """The file that serialises audit appends across processes on one SQLite database.

    SQLite lets one writer in at a time and makes the others poll (sleeping 1, 2, 5, 10 ms
    ... between tries); two busy server processes appending to the chain then spend much of
    their time asleep. A blocking lock on a file next to the database hands the turn over
    the moment it is free. PostgreSQL has its advisory lock instead.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".audit-lock")


@contextlib.contextmanager
def _locked(path: Path | None) -> Iterator[None]:
    if path is None or fcntl is None:
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _canonical(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"), default=str)


def _entries(session: Session) -> Iterator[AuditEntry]:
    yield from session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()


def verify_chain(session: Session) -> tuple[int, list[AuditProblem]]:
    """Recompute the chain; returns (entries checked, problems). No problems: intact."""
    problems: list[AuditProblem] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                AuditProblem(entry.seq, f"expected entry {expected_seq} here (entries are missing)")
            )
        if entry.prev_hash != prev:
            problems.append(AuditProblem(entry.seq, "does not link to the entry before it"))
        digest = entry_hash(
            entry.prev_hash,
            entry.seq,
            entry.at,
            entry.username,
            entry.action,
            entry.target,
            entry.detail,
        )
        if digest != entry.hash:
            problems.append(
                AuditProblem(entry.seq, "its content does not match its hash (the row was edited)")
            )
        prev = entry.hash
        expected_seq = entry.seq + 1
    return count, problems
