"""Optional packages of the synthetic lab, imported when first used.

They are reached through ``importlib`` so a missing one raises ``MissingExtraError`` naming
the ``synth`` extra, and so type checking does not depend on their stubs.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

from radloop.errors import MissingExtraError

__all__ = ["ndimage", "nibabel", "optional", "worker_pool"]


def optional(module: str, package: str, feature: str, extra: str = "synth") -> Any:
    """Import ``module`` or raise the typed error naming the extra that brings ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(package, extra, feature) from None


def ndimage() -> Any:
    return optional("scipy.ndimage", "scipy", "The synthetic lab")


def nibabel() -> Any:
    return optional("nibabel", "nibabel", "Reading the anatomy CT (NIfTI)")


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Any]:
    """A ``spawn`` process pool whose workers run BLAS on one thread each.

    Each worker is meant to fill one core; BLAS's own threads on top of that oversubscribe
    the cores and, for the small matrix products here, halve throughput. The thread limits
    are set only while the workers start (they inherit them) and then restored.
    """
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            os.environ[name] = "1"
        pool = multiprocessing.get_context("spawn").Pool(workers)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    with pool:
        yield pool
