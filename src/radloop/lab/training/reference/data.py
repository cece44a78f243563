"""The reference model's training set: synthetic studies as compact ``.npz`` shards.

Each study of the synthetic lab becomes one frontal sample (image at the network's input
size, finding presence, presence per lung zone, heatmap targets from the truth masks and the
regression targets) and, on the ``standard`` profile, one lateral sample (view label only).
Training uses the ``standard``, ``portable`` and ``community`` profiles and seed
``TRAIN_SEED``; the benchmark holds out the ``enhanced`` profile and its own seeds.
Shards are written atomically and reused, so an interrupted run resumes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.models.reference.preprocess import field_crop, resize_area
from radloop.models.reference.spec import (
    FINDINGS,
    HEATMAP_SIZE,
    INPUT_SIZE,
    REGRESSIONS,
    VIEWS,
    ZONES,
)

__all__ = [
    "SHARD_SIZE",
    "TRAIN_PROFILES",
    "TRAIN_SEED",
    "Sample",
    "build_dataset",
    "load_dataset",
    "render_shards",
    "stack_fields",
    "study_samples",
    "worker_anatomy",
]

TRAIN_SEED = 20_240_101
TRAIN_PROFILES: tuple[str, ...] = ("standard", "portable", "community")
SHARD_SIZE = 100
_Job = tuple[int, int, str, str | None]


@dataclass
class Sample:
    """One training image and its targets (``*_mask`` say which targets apply)."""

    image: npt.NDArray[np.float16]  # INPUT_SIZE², display intensities in [0, 1]
    view: int
    frontal: bool
    presence: npt.NDArray[np.float32]  # (findings,)
    zones: npt.NDArray[np.float32]  # (findings, zones)
    heatmaps: npt.NDArray[np.float16]  # (findings, HEATMAP_SIZE, HEATMAP_SIZE), mask share
    regression: npt.NDArray[np.float32]  # (regressions,), encoded
    regression_mask: npt.NDArray[np.float32]


def _regression_value(name: str, finding: dict[str, Any], image: dict[str, Any]) -> float | None:
    details = finding.get("details") or {}
    if name in {"ett_tip_mm", "cvc_tip_mm"}:
        return finding.get("tip_distance_mm")
    if name in {"nodule_mm", "mass_mm", "pneumothorax_rim_mm"}:
        return finding.get("size_mm")
    if name in {"effusion_ml", "consolidation_ml"}:
        return details.get("volume_ml")
    if name == "edema_hu":
        return details.get("hu_increase")
    return None


def study_samples(study: Any) -> list[Sample]:
    """The samples of one ``PhantomStudy``: its frontal image and, if any, its lateral."""
    samples = []
    truth = study.truth
    by_id = {f["id"]: f for f in truth["findings"]}
    for image_truth, rendered in zip(truth["images"], study.views.values(), strict=True):
        spacing = tuple(image_truth["pixel_spacing_mm"])
        display = rendered.exposure.display
        image = resize_area(field_crop(display, spacing), INPUT_SIZE).astype(np.float16)
        view = VIEWS.index(image_truth["view"])
        frontal = image_truth["view"] != "LL"
        presence = np.zeros(len(FINDINGS), np.float32)
        zones = np.zeros((len(FINDINGS), len(ZONES)), np.float32)
        heatmaps = np.zeros((len(FINDINGS), HEATMAP_SIZE, HEATMAP_SIZE), np.float16)
        regression = np.zeros(len(REGRESSIONS), np.float32)
        regression_mask = np.zeros(len(REGRESSIONS), np.float32)
        if frontal:
            for entry in image_truth["findings"]:
                k = FINDINGS.index(entry["code"])
                presence[k] = 1.0
                for zone in entry.get("zones", []):
                    zones[k, [z.value for z in ZONES].index(zone)] = 1.0
                mask = rendered.masks.get(entry["id"])
                if mask is not None and mask.any():
                    cropped = field_crop(mask.astype(np.float32), spacing)
                    heatmaps[k] = np.maximum(heatmaps[k], resize_area(cropped, HEATMAP_SIZE))
                for j, reg in enumerate(REGRESSIONS):
                    if reg.finding == entry["code"]:
                        value = _regression_value(reg.name, by_id[entry["id"]], image_truth)
                        if value is not None and math.isfinite(value):
                            regression[j] = reg.encode(float(value))
                            regression_mask[j] = 1.0
            ctr = image_truth.get("ctr")
            if ctr is not None and math.isfinite(ctr):
                regression[0] = REGRESSIONS[0].encode(float(ctr))
                regression_mask[0] = 1.0
        samples.append(
            Sample(image, view, frontal, presence, zones, heatmaps, regression, regression_mask)
        )
    return samples


_ANATOMY: Any = None


def worker_anatomy(cache: str | None) -> Any:
    """The lab's anatomy, loaded once per worker process (from the shard folder's cache)."""
    from radloop.lab.synth import load_anatomy

    global _ANATOMY
    if _ANATOMY is None:
        _ANATOMY = load_anatomy(cache_dir=Path(cache) if cache else None)
    return _ANATOMY


def _make(job: _Job) -> list[Sample]:
    from radloop.lab.synth import make_study

    seed, index, profile, cache = job
    return study_samples(make_study(worker_anatomy(cache), seed, index, site=profile))


def _stack(samples: list[Sample]) -> dict[str, npt.NDArray[Any]]:
    return {
        "image": np.stack([s.image for s in samples]),
        "view": np.asarray([s.view for s in samples], np.int64),
        "frontal": np.asarray([s.frontal for s in samples], bool),
        "presence": np.stack([s.presence for s in samples]),
        "zones": np.stack([s.zones for s in samples]),
        "heatmaps": np.stack([s.heatmaps for s in samples]),
        "regression": np.stack([s.regression for s in samples]),
        "regression_mask": np.stack([s.regression_mask for s in samples]),
    }


def stack_fields(samples: Sequence[Mapping[str, Any]]) -> dict[str, npt.NDArray[Any]]:
    """Samples given as arrays by name, stacked name by name: a shard of ``render_shards``
    for the crop networks."""
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def build_dataset(
    out: Path,
    n: int,
    *,
    seed: int = TRAIN_SEED,
    profiles: tuple[str, ...] = TRAIN_PROFILES,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Render ``n`` studies (profiles in turn) into shards of ``SHARD_SIZE`` under ``out``.

    Existing shards are kept, so a second call only renders what is missing.
    """
    return render_shards(
        out, "shard", n, seed=seed, job=lambda i: (seed, i, profiles[i % len(profiles)]),
        make=_make, stack=_stack, workers=workers, progress=progress,
    )  # fmt: skip


def render_shards(
    out: Path,
    prefix: str,
    n: int,
    *,
    seed: int,
    job: Callable[[int], tuple[Any, ...]],
    make: Callable[[Any], list[Any]],
    stack: Callable[[list[Any]], dict[str, npt.NDArray[Any]]],
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Render studies ``0 … n-1`` into ``out/{prefix}-{seed}-{start}-{stop}.npz`` shards.

    ``job(i)`` is study ``i``'s (seed, index, profile); ``make`` (a module-level function, run
    in worker processes) turns ``job + (anatomy cache,)`` into samples and ``stack`` a shard's
    samples into arrays. Shards are written atomically; existing ones are kept.
    """
    from radloop.lab.synth._deps import worker_pool
    from radloop.lab.synth.anatomy import load_anatomy

    out.mkdir(parents=True, exist_ok=True)
    cache = out / "anatomy"
    load_anatomy(cache_dir=cache)
    shards = []
    workers = max(1, workers or os.cpu_count() or 1)
    todo: list[tuple[Path, list[_Job]]] = []
    for start in range(0, n, SHARD_SIZE):
        stop = min(n, start + SHARD_SIZE)
        path = out / f"{prefix}-{seed}-{start:06d}-{stop:06d}.npz"
        shards.append(path)
        jobs: list[_Job] = [(*job(i), str(cache)) for i in range(start, stop)]
        if path.exists():
            if progress:
                progress(len(jobs))
            continue
        todo.append((path, jobs))
    if not todo:
        return shards

    def write(path: Path, results: list[list[Any]]) -> None:
        tmp = path.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = stack([s for r in results for s in r])
        np.savez(tmp, **arrays)
        tmp.replace(path)

    if workers == 1:
        for path, pending in todo:
            results = []
            for one in pending:
                results.append(make(one))
                if progress:
                    progress(1)
            write(path, results)
    else:
        with worker_pool(workers) as pool:
            for path, pending in todo:
                results = []
                for result in pool.imap(make, pending):
                    results.append(result)
                    if progress:
                        progress(1)
                write(path, results)
    return shards


def load_dataset(shards: list[Path]) -> dict[str, npt.NDArray[Any]]:
    """All shards' arrays concatenated, plus ``study``: the index of each sample's study."""
    parts: dict[str, list[npt.NDArray[Any]]] = {}
    study: list[npt.NDArray[np.int64]] = []
    offset = 0
    for path in shards:
        with np.load(path) as data:
            frontal = data["frontal"]
            ids = np.cumsum(frontal) - 1 + offset
            offset += int(frontal.sum())
            study.append(ids.astype(np.int64))
            for key in data.files:
                parts.setdefault(key, []).append(data[key])
    merged = {key: np.concatenate(values) for key, values in parts.items()}
    merged["study"] = np.concatenate(study)
    return merged


if __name__ == "__main__":  # python -m radloop.lab.training.reference.data OUT N
    import sys

    from tqdm import tqdm

    target, count = Path(sys.argv[1]), int(sys.argv[2])
    with tqdm(total=count, unit="study") as bar:

        def advance(k: int) -> None:
            bar.update(k)

        build_dataset(target, count, progress=advance)
