"""The app's lifespan: the request thread pool's size and the in-process drafting worker."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI

from radloop.review.deps import AppContext

__all__ = ["Lifespan"]


class Lifespan:
    """Sizes the request thread pool, starts the in-process drafting worker with the app
    and stops it at shutdown."""

    def __init__(self, ctx: AppContext, enabled: bool) -> None:
        self.ctx = ctx
        self.enabled = enabled

    @contextlib.asynccontextmanager
    async def __call__(self, _app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # Synchronous endpoints run in this pool. AnyIO's default of 40 threads lets 40
        # requests fight over one GIL at once: each is slowed by all the others and the
        # last ones wait longest (a long latency tail at the same throughput). A few
        # threads keep the processor busy while one waits on the database, and the rest
        # of the requests queue in arrival order.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = self.ctx.settings.request_threads
        if getattr(_app.state, "tune_gc", False):  # a server process of `radloop serve`
            from radloop.review.app import tune_gc

            tune_gc()
        if not self.enabled:
            yield
            return
        from radloop.review.worker import DraftingWorker

        stop = threading.Event()
        worker = DraftingWorker(self.ctx.store)
        self.ctx.worker = worker
        thread = threading.Thread(
            target=worker.serve, args=(stop,), daemon=True, name="radloop-drafting"
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            worker.wake.set()
            thread.join(timeout=10)
