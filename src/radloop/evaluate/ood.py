"""The OOD reference the evaluation uses for the reference verifier.

The reference shipped beside the model's weights (``reference-ood.json``, see
:mod:`radloop.lab.training.ood`) when there is one; otherwise one is fitted on first use
the same way on 60 studies and cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radloop.lab.training.ood import OOD_PROFILES, OOD_SEED, fit_ood_reference
from radloop.safety.scope import MahalanobisScorer

__all__ = ["OOD_PROFILES", "OOD_SEED", "reference_ood_scorer"]


def reference_ood_scorer(
    verifier: Any,
    cache_dir: Path,
    *,
    n: int = 60,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """The OOD scorer for the reference verifier (see the module docstring)."""
    shipped = verifier.ood_scorer() if hasattr(verifier, "ood_scorer") else None
    if shipped is not None:
        return shipped
    name = f"ood-v2-{verifier.verifier_id}-{OOD_SEED}-{n}.json"
    cached = cache_dir / name
    if cached.is_file():
        return MahalanobisScorer.from_file(cached)
    scorer, _ = fit_ood_reference(
        verifier,
        cache_dir / f"ood-reference-{OOD_SEED}-{n}",
        n=n,
        workers=workers,
        progress=progress,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(scorer.to_json()), encoding="utf-8")
    tmp.replace(cached)
    return scorer
