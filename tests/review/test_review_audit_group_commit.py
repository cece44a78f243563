"""The audit writer's group commit: many concurrent views, one chain, nothing lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest


def test_concurrent_appends_share_transactions_and_keep_the_chain(store: Any) -> None:
    """32 threads append at once: every caller gets its own committed entry, the entries
    are consecutive, the chain verifies, and fewer transactions than events were written."""
    from sqlalchemy import func, select

    from radloop.review import audit
    from radloop.review.db import AuditEntry

    writer = audit.ChainWriter(store.engine, store.seal)
    transactions = 0
    write = writer._write

    def counting(batch: list[Any]) -> None:
        nonlocal transactions
        transactions += 1
        write(batch)

    writer._write = counting  # type: ignore[method-assign]
    start = threading.Barrier(32)
    seqs: list[int] = []

    def view(k: int) -> None:
        start.wait()
        for i in range(10):
            seqs.append(writer.append(f"reader{k}", "view", f"study-{k}-{i}"))

    threads = [threading.Thread(target=view, args=(k,)) for k in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seqs) == 320 and len(set(seqs)) == 320
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 320))
    assert transactions < 320  # callers arriving during a commit were written together
    with store.sessions() as session:
        _, problems = audit.verify_chain(session, store.seal)
        targets = session.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.target.like("study-%"))
        ).scalar_one()
    assert problems == [] and targets >= 320


def test_a_failed_commit_fails_every_view_it_carried(store: Any) -> None:
    """No caller returns as if audited when its batch did not reach the database."""
    from radloop.review import audit

    writer = audit.ChainWriter(store.engine, store.seal)

    def broken(batch: list[Any]) -> None:
        raise RuntimeError("disk full")

    writer._write = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk full"):
        writer.append("reader", "view", "lost")
    del writer._write  # the real writer again
    assert writer.append("reader", "view", "kept") > 0


def test_writers_of_several_processes_take_turns_through_a_lock_file(store: Any) -> None:
    """On SQLite, appends of different processes (here: separate writers) serialise on a
    file beside the database instead of SQLite's sleep-and-retry; the chain stays whole."""
    from radloop.review import audit

    lock = audit._sqlite_lock_path(store.engine)
    if store.engine.dialect.name != "sqlite":
        assert lock is None  # PostgreSQL serialises with an advisory lock
        return
    assert lock is not None
    writers = [audit.ChainWriter(store.engine, store.seal) for _ in range(3)]
    start = threading.Barrier(12)
    seqs: list[int] = []

    def view(k: int) -> None:
        start.wait()
        for i in range(15):
            seqs.append(writers[k % 3].append(f"reader{k}", "view", f"turns-{k}-{i}"))

    threads = [threading.Thread(target=view, args=(k,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lock.exists() and lock.name.endswith(".audit-lock")
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 180))
    with store.sessions() as session:
        _, problems = audit.verify_chain(session, store.seal)
    assert problems == []
