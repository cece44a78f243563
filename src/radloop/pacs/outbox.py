"""Send on sign: an outbox row in the signer's transaction, a sender thread afterwards.

:func:`queue_on_sign` makes a store's sessions write a ``pacs_outbox`` row for every signed
report or addendum they insert, in the same flush, so the row exists exactly when the
signature does (a rolled-back signature leaves none). Nothing in the sign path knows about
the PACS and signing never waits on it: :class:`OutboxSender` sends the rows afterwards
(woken by the commit, and every few seconds for retries), in the server process, and
``radloop pacs poll --every`` and ``radloop pacs listen`` send what is due as well.

:func:`review_extension` is the workstation extension (entry point group
``radloop.review.extensions``): with ``RADLOOP_PACS_SEND_ON_SIGN=1`` it installs both in the
app; otherwise it does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from radloop.pacs.config import PacsConfig
from radloop.review.db import SignedReport, utcnow
from radloop.review.store import Store

__all__ = ["OutboxSender", "queue_on_sign", "review_extension"]

log = logging.getLogger("radloop.pacs.outbox")


def queue_on_sign(
    sessions: sessionmaker[Session], on_commit: Callable[[], None] | None = None
) -> None:
    """Write a ``pacs_outbox`` row beside every :class:`SignedReport` these sessions insert;
    ``on_commit`` is called after a transaction that wrote one commits."""
    from radloop.pacs.tables import PacsOutbox

    def before_flush(session: Session, _context: Any, _instances: Any) -> None:
        signed = [obj for obj in session.new if isinstance(obj, SignedReport)]
        for report in signed:
            session.add(
                PacsOutbox(
                    study_id=report.study_id,
                    event=report.kind,
                    state="pending",
                    attempts=0,
                    created_at=utcnow(),
                )
            )
        if signed:
            session.info["pacs_outbox"] = True

    def after_commit(session: Session) -> None:
        if session.info.pop("pacs_outbox", False) and on_commit is not None:
            on_commit()

    def after_rollback(session: Session) -> None:
        session.info.pop("pacs_outbox", None)

    event.listen(sessions, "before_flush", before_flush)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_soft_rollback", lambda s, _previous: after_rollback(s))


class OutboxSender:
    """A thread that sends the outbox's due reports when woken, and every ``every_s``."""

    def __init__(self, store: Store, config: PacsConfig, every_s: float = 5.0) -> None:
        self.store = store
        self.config = config
        self.every_s = every_s
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[Any]:
        from radloop.pacs.send import send_pending

        return send_pending(self.store, self.config)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database went away for a moment: try again
                log.exception("sending signed reports to the PACS")
            self.wake.wait(self.every_s)
            self.wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="radloop-pacs-send")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def review_extension(app: Any, ctx: Any) -> None:
    """With ``RADLOOP_PACS_SEND_ON_SIGN=1``: an outbox row with every signature, and a sender
    that runs with the app (started and stopped by its lifespan)."""
    config = PacsConfig.from_env()  # a bad setting stops the server at start, not at a sign
    if not config.send_on_sign:
        return
    sender = OutboxSender(ctx.store, config)
    queue_on_sign(ctx.store.sessions, sender.wake.set)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            sender.start()
            try:
                yield state
            finally:
                sender.stop()

    app.router.lifespan_context = lifespan
