"""The audit trail: append-only, hash-chained, so that an edited or deleted row is detectable.

Each entry's hash is HMAC-SHA256, keyed with the store's audit key (kept outside the
database), over the previous entry's hash and the entry's own canonical JSON (sequence
number, time, user, action, target, detail): without the key, an edited entry and every
later hash cannot be recomputed to match. Entries written before the store had a key are
plain SHA-256; the anchor file's first line says from which entry on the chain is keyed.
After every append the head (sequence number and hash) is appended to the anchor file, also
outside the database, so that deleting the last entries is detected. A signature's audit
entry carries the SHA-256 of the signed report (:func:`report_hash`), so a rewritten report
no longer matches the chain. ``prev_hash`` is UNIQUE, so two writers
racing to extend the chain cannot fork it: one insert fails and is retried on the new tip.
Database triggers (see the migrations) refuse UPDATE and DELETE; :func:`verify_chain` catches
what gets past them (someone with the database file and a text editor).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from radloop.errors import InputError
from radloop.review.db import AuditEntry, SignedReport, utcnow

try:
    import fcntl
except ImportError:  # Windows: SQLite's own locking (with polling) still keeps it correct
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENESIS",
    "AuditProblem",
    "AuditSeal",
    "ChainWriter",
    "entry_hash",
    "record",
    "report_hash",
    "verify_chain",
]

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
        return f"entry {self.seq}: {self.problem}" if self.seq else self.problem


@dataclass(frozen=True)
class AuditSeal:
    """What makes the chain hold beyond the database: the HMAC key and the anchor file.

    ``keyed_from`` is the first entry written with the key (entries before it are plain
    SHA-256, from before the store had a key), as the anchor file's first line records it.
    """

    key: bytes
    anchor: Path

    @classmethod
    def open(
        cls, key: bytes | None, key_file: Path | None, anchor: Path, engine: Engine
    ) -> AuditSeal:
        """The seal of a store: the key given, read from ``key_file``, or generated there.

        A generated key (the first start) is written with mode 0600; a missing anchor file is
        started with the entry from which the chain is keyed (the next one).
        """
        if key is None:
            assert key_file is not None
            if not key_file.exists():
                key_file.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileExistsError):  # another process made it first
                    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(descriptor, "w") as handle:
                        handle.write(secrets.token_hex(32) + "\n")
            key = key_file.read_text(encoding="utf-8").strip().encode("utf-8")
            if len(key) < 32:
                raise InputError(
                    "an audit key of at least 32 characters", f"{len(key)}", source=key_file
                )
        seal = cls(key, anchor)
        if not anchor.exists():
            # A new store, or one from before the key: keyed from the next entry on. (A
            # deleted anchor restarted this way leaves the keyed entries before it failing
            # their plain SHA-256 check, so the deletion still shows.)
            with engine.connect() as connection:
                last = connection.execute(_TIP).first()
            seal._start_anchor(1 if last is None else last[0] + 1)
        return seal

    def _start_anchor(self, keyed_from: int) -> None:
        self.anchor.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(self.anchor, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"keyed-from {keyed_from}\n")

    def anchor_head(self, seq: int, digest: str) -> None:
        """Append the chain's head to the anchor file (append-only; one line per append)."""
        descriptor = os.open(self.anchor, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, f"{seq} {digest}\n".encode("ascii"))
        finally:
            os.close(descriptor)

    def read_anchor(self) -> tuple[int | None, dict[int, str]]:
        """(the first keyed entry or None if the header is missing, anchored heads by seq)."""
        if not self.anchor.exists():
            return None, {}
        keyed_from: int | None = None
        heads: dict[int, str] = {}
        for number, line in enumerate(self.anchor.read_text(encoding="ascii").splitlines()):
            parts = line.split()
            if number == 0 and len(parts) == 2 and parts[0] == "keyed-from":
                keyed_from = int(parts[1])
            elif len(parts) == 2 and parts[0].isdigit():
                heads[int(parts[0])] = parts[1]
        return keyed_from, heads


def entry_hash(
    prev_hash: str,
    seq: int,
    at: str,
    username: str,
    action: str,
    target: str,
    detail: str,
    key: bytes | None = None,
) -> str:
    """The chain hash of one entry: hex HMAC-SHA256 with ``key``, plain SHA-256 without."""
    body = json.dumps([seq, at, username, action, target, detail], separators=(",", ":"))
    message = (prev_hash + body).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def report_hash(report: SignedReport) -> str:
    """SHA-256 of a signed report or addendum as stored (text, findings, flags, signer, time)."""
    signed_at = report.signed_at
    if signed_at.tzinfo is None:  # SQLite hands back naive datetimes; every stored time is UTC
        signed_at = signed_at.replace(tzinfo=datetime.UTC)
    body = json.dumps(
        [
            report.id,
            report.study_id,
            report.kind,
            report.text,
            report.findings,
            report.flags,
            report.signed_by,
            report.signed_by_name,
            signed_at.isoformat(),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def record(
    sessions: sessionmaker[Session],
    username: str,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
    *,
    lock: threading.Lock | None = None,
    seal: AuditSeal | None = None,
) -> int:
    """Append one event in its own transaction; returns its sequence number.

    ``lock`` serialises appends within a process (the app passes one), so that threads do
    not spend their time retrying; the UNIQUE ``prev_hash`` still guards other processes.
    ``seal`` keys the hash and anchors the new head (a store's ``seal``).
    """
    text = _canonical(detail)
    for _ in range(_RETRIES):
        with lock or contextlib.nullcontext(), sessions() as session:
            last = session.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
            ).first()
            seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
            at = utcnow().isoformat(timespec="microseconds")
            key = seal.key if seal else None
            digest = entry_hash(prev, seq, at, username, action, target[:200], text, key)
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
            if seal is not None:
                seal.anchor_head(seq, digest)
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

    def __init__(self, engine: Engine, seal: AuditSeal | None = None) -> None:
        self.engine = engine
        self.seal = seal
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
                        self.seal.key if self.seal else None,
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
                if self.seal is not None:
                    self.seal.anchor_head(seq + len(batch) - 1, prev)
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


def verify_chain(session: Session, seal: AuditSeal | None = None) -> tuple[int, list[AuditProblem]]:
    """Recompute the chain; returns (entries checked, problems). No problems: intact.

    With the store's ``seal``: entries from the anchor's ``keyed-from`` on must carry the
    keyed hash, every head in the anchor file must still be in the chain (deleting the last
    entries is detected), and every signed report must match the hash its signature's entry
    recorded. Without one, the plain SHA-256 chain of older stores is checked.
    """
    problems: list[AuditProblem] = []
    keyed_from, heads = seal.read_anchor() if seal else (None, {})
    if seal is not None and keyed_from is None:
        problems.append(
            AuditProblem(0, f"the anchor file {seal.anchor} is missing or lost its first line")
        )
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                AuditProblem(entry.seq, f"expected entry {expected_seq} here (entries are missing)")
            )
        if entry.prev_hash != prev:
            problems.append(AuditProblem(entry.seq, "does not link to the entry before it"))
        keyed = seal is not None and (keyed_from is None or entry.seq >= keyed_from)
        digest = entry_hash(
            entry.prev_hash,
            entry.seq,
            entry.at,
            entry.username,
            entry.action,
            entry.target,
            entry.detail,
            seal.key if seal is not None and keyed else None,
        )
        if not hmac.compare_digest(digest, entry.hash):
            problems.append(
                AuditProblem(entry.seq, "its content does not match its hash (the row was edited)")
            )
        anchored = heads.get(entry.seq)
        if anchored is not None and anchored != entry.hash:
            problems.append(AuditProblem(entry.seq, "its hash differs from the anchored head"))
        prev = entry.hash
        expected_seq = entry.seq + 1
        last_seq = entry.seq
    if heads and max(heads) > last_seq:
        problems.append(
            AuditProblem(
                0,
                f"the chain ends at entry {last_seq} but the anchor file records entry "
                f"{max(heads)}: the last entries were deleted",
            )
        )
    if seal is not None:
        problems.extend(_unmatched_reports(session, keyed_from or 1))
    return count, problems


def _unmatched_reports(session: Session, keyed_from: int) -> list[AuditProblem]:
    """Signed reports whose content no signature entry of the chain recorded.

    A report signed before the chain was keyed (its study's signature entries all older
    than ``keyed_from``, which recorded no report hash) is not checked, nor one whose study
    has no signature entry at all (signed by code calling :func:`worksheet.sign` directly,
    not through the workstation, which audits every signature).
    """
    signatures: dict[str, list[tuple[int, str]]] = {}
    rows = session.execute(
        select(AuditEntry.seq, AuditEntry.target, AuditEntry.detail).where(
            AuditEntry.action.in_(("sign", "addendum"))
        )
    )
    for seq, target, detail in rows:
        recorded = str(json.loads(detail or "{}").get("report_hash", ""))
        signatures.setdefault(target, []).append((seq, recorded))
    problems = []
    for report in session.execute(select(SignedReport).order_by(SignedReport.id)).scalars():
        entries = signatures.get(report.study_id, [])
        if not entries or all(seq < keyed_from for seq, _ in entries):
            continue
        if report_hash(report) not in {recorded for _, recorded in entries}:
            problems.append(
                AuditProblem(
                    0,
                    f"signed report {report.id} ({report.kind}) of study {report.study_id} "
                    "does not match the report its signature recorded (rewritten, or signed "
                    "without an audit entry)",
                )
            )
    return problems
