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


GC_THRESHOLDS = (50_000, 20, 100)
"""The server processes' cyclic garbage collector: a young collection every 50,000 net
container allocations instead of Python 3.11's 700 (a page allocates thousands: rows, template
context, SQLAlchemy results), so that collections, and the full ones that follow from them,
pause requests far less often."""


def tune_gc() -> None:
    """Collect once, move everything alive now (modules, the app, its templates, engine and
    thread pools) out of the collector's reach (``gc.freeze``) and set
    :data:`GC_THRESHOLDS`. Under the review load benchmark this cut the latency tail: p99
    129-157 ms against 187-214 ms, p95 87-136 ms against 115-141 ms (docs/benchmarks.md)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
