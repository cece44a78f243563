"""The ask box's own bounded pool: questions to the drafting model never hold request threads.

A question is a model call that may take seconds, or never return when the model server
hangs. On the few request threads (``Settings.request_threads``) four such calls would stall
every page. :class:`AskPool` runs each question in a thread of its own, at most
``ask_threads`` of them at once and at most ``ask_per_user`` for any one user; past either
limit a question is refused at once (:class:`AskRefusedError`: 503 or 429), never queued.
The endpoint awaits the answer off the request threads and gives up after ``ask_timeout_s``
(504). A thread whose model call hangs stays counted until the call returns, so hung calls
cannot pile up past the limit.

The threads are daemon threads started per question (a model call dwarfs starting a thread),
not a :class:`concurrent.futures.ThreadPoolExecutor`: the executor's threads are joined when
the interpreter exits, so one hung model call would keep the server from stopping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["AskPool", "AskRefusedError"]

T = TypeVar("T")


class AskRefusedError(Exception):
    """A question refused before it reached the model: ``status`` 429 or 503, and why."""

    def __init__(self, status: int, message: str, action: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.action = action


class AskPool:
    """At most ``threads`` questions at once, at most ``per_user`` of them by one user."""

    def __init__(self, threads: int, per_user: int) -> None:
        self.threads = max(1, threads)
        self.per_user = max(1, per_user)
        self._lock = threading.Lock()
        self._running = 0
        self._by_user: dict[str, int] = {}
        self._closed = False

    def submit(self, user: str, call: Callable[[], T]) -> Future[T]:
        """Start ``call`` for ``user`` in a thread of its own; its result comes in the future.

        Raises :class:`AskRefusedError` at once (nothing started) when ``user`` already has
        ``per_user`` questions in flight (429) or every thread is busy (503).
        """
        with self._lock:
            if self._closed:
                raise AskRefusedError(
                    503, "the workstation is shutting down; ask again shortly", "refused_ask_closed"
                )
            mine = self._by_user.get(user, 0)
            if mine >= self.per_user:
                raise AskRefusedError(
                    429,
                    f"you already have {mine} question(s) waiting for the model, the most one "
                    "user may have; wait for an answer before asking another",
                    "refused_ask_per_user",
                )
            if self._running >= self.threads:
                raise AskRefusedError(
                    503,
                    f"all {self.threads} question slots are busy (the model is slow or not "
                    "answering); try again in a minute",
                    "refused_ask_full",
                )
            self._running += 1
            self._by_user[user] = mine + 1
        future: Future[T] = Future()
        thread = threading.Thread(
            target=self._run, args=(user, call, future), daemon=True, name="radloop-ask"
        )
        try:
            thread.start()
        except BaseException:
            self._release(user)
            raise
        return future

    def _run(self, user: str, call: Callable[[], Any], future: Future[Any]) -> None:
        try:
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
        finally:
            self._release(user)

    def _release(self, user: str) -> None:
        with self._lock:
            self._running -= 1
            left = self._by_user.get(user, 1) - 1
            if left > 0:
                self._by_user[user] = left
            else:
                self._by_user.pop(user, None)

    def in_flight(self) -> tuple[int, dict[str, int]]:
        """(questions running, of them by user), hung ones included."""
        with self._lock:
            return self._running, dict(self._by_user)

    def close(self) -> None:
        """Refuse new questions; running ones are not waited for (a hung call may never end,
        and its daemon thread does not keep the process alive)."""
        with self._lock:
            self._closed = True
