"""The out-of-distribution reference: where the reference model's embeddings usually lie.

The OOD score of an image is the Mahalanobis distance of the reference model's embedding to
the embeddings of its training distribution (:class:`radloop.safety.MahalanobisScorer`, Lee
et al., NeurIPS 2018). radloop ships no such reference yet, so one is fitted on first use: 60
synthetic studies of the three training site profiles (``standard``, ``portable``,
``community``) from :data:`OOD_SEED`, a seed used nowhere else, embedded by the verifier. Two
thirds fit the mean and covariance; the threshold is the 99th percentile of the scores of the
other third (scores of the fitting images themselves are optimistic: with fewer images than
embedding dimensions every unseen image would look far). The fit is cached next to the
held-out split. A reference in the model's sidecar (key ``ood``) or given as a file takes
precedence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OOD_PROFILES", "OOD_SEED", "load_ood_scorer", "reference_ood_scorer"]

OOD_SEED = 990_101
OOD_PROFILES = ("standard", "portable", "community")


def load_ood_scorer(path: Path) -> Any:
    """A Mahalanobis scorer saved as JSON (``MahalanobisScorer.to_json``)."""
    from radloop.safety import MahalanobisScorer

    return MahalanobisScorer.from_json(json.loads(path.read_text(encoding="utf-8")))


def reference_ood_scorer(
    verifier: Any,
    cache_dir: Path,
    *,
    n: int = 60,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """The OOD scorer for the reference verifier (see the module docstring)."""
    from radloop.safety import MahalanobisScorer

    model = getattr(verifier, "_model", None)
    sidecar = getattr(model, "sidecar", {}) or {}
    if isinstance(sidecar.get("ood"), dict):
        return MahalanobisScorer.from_json(sidecar["ood"])
    name = f"ood-v2-{verifier.verifier_id}-{OOD_SEED}-{n}.json"
    cached = cache_dir / name
    if cached.is_file():
        return load_ood_scorer(cached)
    from radloop.study import load_study
    from radloop.synth.study_writer import make_dataset

    embeddings = []
    per = [n // len(OOD_PROFILES) + (i < n % len(OOD_PROFILES)) for i in range(len(OOD_PROFILES))]
    root = cache_dir / f"ood-reference-{OOD_SEED}-{n}"
    for offset, (profile, k) in enumerate(zip(OOD_PROFILES, per, strict=True)):
        out = root / profile
        manifest_path = out / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        else:
            manifest = make_dataset(
                k, OOD_SEED + offset, out, profile=profile, workers=workers, progress=progress
            )
        for entry in manifest["studies"]:
            output = verifier.verify(load_study(out / entry["path"] / "dicom"))
            if output.embedding is not None:
                embeddings.append(np.asarray(output.embedding, dtype=np.float64).ravel())
    x = np.vstack(embeddings)
    held_out = np.arange(len(x)) % 3 == 2
    fitted = MahalanobisScorer.fit(x[~held_out])
    threshold = float(np.quantile([fitted.score(row) for row in x[held_out]], 0.99))
    scorer = MahalanobisScorer(fitted.mean, fitted.precision, threshold)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(scorer.to_json()), encoding="utf-8")
    tmp.replace(cached)
    return scorer
