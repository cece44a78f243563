"""Render the lung-fields network's training set: lab films with exact lung, heart and opacity.

Each study is drawn from the lab (:func:`radloop.lab.synth.lab.make_study`) on a random body
(the lab's deformation of the CT: scale, smooth warps, pose) with a random mix of findings, at a
random detector size (340–430 mm: a 35 × 43 cm cassette to a 43 × 43 cm flat panel, so the
field reaches the shoulders, neck and upper abdomen the CT holds). What is cached per study is
the **line integral** (not a processed image), so every training epoch can expose it again
through randomised physics (:mod:`radloop.lab.synth.randomize` where it exists), and the
exact maps projected from the CT's label map:

- ``right`` / ``left``: the lung field as annotators outline one on a film (the v7labs
  convention: the lung behind the heart included, down to the diaphragm's contour) — the
  lung's projection less where the ray also crosses an organ below the diaphragm (liver,
  spleen, stomach, bowel, kidneys): the posterior costophrenic recesses lie behind them and
  are not drawn on films;
- ``heart``: the heart's projection (the enlarged heart where the study has cardiomegaly);
- ``opacity``: where a ray crosses consolidation, edema or pleural fluid within the lungs'
  projection.

Rendering runs in a process pool; each shard is an ``.npz`` named by its seed and range, so a
second run reuses it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "OPACITY_CODES",
    "LungFieldSample",
    "adaptation_films",
    "lung_field_sample",
    "render_lung_fields",
]

F32 = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]

OPACITY_CODES = ("consolidation", "edema", "pleural_effusion")
CACHE_VERSION = 2  # in the shard names: a change of what is rendered renders anew
_HIDING = (
    "liver",
    "spleen",
    "stomach",
    "colon",
    "small_bowel",
    "duodenum",
    "pancreas",
    "kidney_left",
    "kidney_right",
    "gallbladder",
)
_CODE_P = {
    "consolidation": 0.4,
    "pleural_effusion": 0.35,
    "edema": 0.25,
    "cardiomegaly": 0.3,
    "pneumothorax": 0.1,
    "endotracheal_tube": 0.15,
    "central_venous_catheter": 0.15,
    "mass": 0.08,
}


@dataclass(frozen=True, eq=False)
class LungFieldSample:
    """One frontal film's line integral, collimation limits and exact maps."""

    line: F32
    limits: tuple[int, int, int, int]
    pixel_mm: float
    profile: str
    right: Bool
    left: Bool
    heart: Bool
    opacity: Bool


def _codes(rng: np.random.Generator) -> list[str]:
    if rng.random() < 0.2:
        return []
    return [code for code, p in _CODE_P.items() if rng.random() < p]


def lung_field_sample(seed: int, index: int, size: int = 256) -> LungFieldSample:
    """Study ``index`` of ``seed``: a random lab body, findings and detector, at ``size``²."""
    from radloop.lab.synth import phantom as ph
    from radloop.lab.synth.anatomy import load_anatomy
    from radloop.lab.synth.lab import make_study
    from radloop.lab.synth.variation import PROFILES

    rng = np.random.default_rng([seed, index, 7])
    anatomy = load_anatomy()
    names = [n for n in PROFILES if n != "enhanced"]
    base = PROFILES[names[int(rng.integers(len(names)))]]
    site = dataclasses.replace(
        base, size=size, lateral=False, detector_mm=float(rng.uniform(340.0, 430.0))
    )
    study = make_study(anatomy, seed, index, site=site, codes=_codes(rng), size=size)
    view = next(iter(study.views.values()))
    phantom = study.phantom
    merged, plan = ph._plan(phantom, view.geometry)
    obliquity = view.geometry.obliquity()
    volume = np.float32(anatomy.voxel_volume_mm3)

    def path_mask(voxels: npt.NDArray[np.int32]) -> Bool:
        points, counts = merged.accumulate(anatomy, voxels)
        if points.size == 0:
            return np.zeros(view.line_integral.shape, dtype=bool)
        return (plan.image(counts * volume, points) * obliquity) >= ph.MASK_PATH_MM

    present = [n for n in _HIDING if n in anatomy.structures]
    hidden = path_mask(np.flatnonzero(anatomy.mask(*present)).astype(np.int32))
    lungs = view.lung_masks["right"] | view.lung_masks["left"]
    opacity = np.zeros_like(lungs)
    for finding in phantom.findings:
        if finding.code in OPACITY_CODES and finding.id in view.masks:
            opacity |= view.masks[finding.id]
    return LungFieldSample(
        line=view.line_integral.astype(np.float32),
        limits=ph._ct_field(phantom, view.geometry),
        pixel_mm=float(view.geometry.pixel_mm),
        profile=base.name,
        right=view.lung_masks["right"] & ~hidden,
        left=view.lung_masks["left"] & ~hidden & ~view.lung_masks["right"],
        heart=view.heart_mask,
        opacity=opacity & lungs,
    )


def _render_one(args: tuple[int, int, int]) -> LungFieldSample:
    return lung_field_sample(*args)


def _shard_path(folder: Path, seed: int, start: int, stop: int, size: int) -> Path:
    return folder / f"lungfields{CACHE_VERSION}-{seed}-{start:05d}-{stop:05d}-{size}.npz"


def _save(path: Path, samples: list[LungFieldSample]) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        line=np.stack([s.line for s in samples]).astype(np.float16),
        limits=np.asarray([s.limits for s in samples], dtype=np.int32),
        pixel_mm=np.asarray([s.pixel_mm for s in samples], dtype=np.float32),
        profile=np.asarray([s.profile for s in samples]),
        right=np.stack([s.right for s in samples]),
        left=np.stack([s.left for s in samples]),
        heart=np.stack([s.heart for s in samples]),
        opacity=np.stack([s.opacity for s in samples]),
    )
    tmp.replace(path)


def _load(path: Path) -> Iterator[LungFieldSample]:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for i in range(arrays["line"].shape[0]):
        yield LungFieldSample(
            line=arrays["line"][i].astype(np.float32),
            limits=tuple(int(v) for v in arrays["limits"][i]),  # type: ignore[arg-type]
            pixel_mm=float(arrays["pixel_mm"][i]),
            profile=str(arrays["profile"][i]),
            right=arrays["right"][i],
            left=arrays["left"][i],
            heart=arrays["heart"][i],
            opacity=arrays["opacity"][i],
        )


def render_lung_fields(
    folder: Path,
    n: int,
    *,
    seed: int,
    size: int = 256,
    workers: int = 2,
    shard: int = 50,
    progress: Callable[[int, int], Any] | None = None,
) -> list[LungFieldSample]:
    """``n`` samples of ``seed``, rendered in shards of ``shard`` (cached in ``folder``)."""
    from radloop.lab.synth._deps import worker_pool

    folder.mkdir(parents=True, exist_ok=True)
    out: list[LungFieldSample] = []
    started = time.monotonic()
    for start in range(0, n, shard):
        stop = min(n, start + shard)
        path = _shard_path(folder, seed, start, stop, size)
        if not path.is_file():
            jobs = [(seed, i, size) for i in range(start, stop)]
            with worker_pool(workers) as pool:
                samples = list(pool.map(_render_one, jobs))
            _save(path, samples)
        out.extend(_load(path))
        if progress is not None:
            progress(len(out), n)
    del started
    return out


def adaptation_films(folder: Path, limit: int) -> list[F32]:
    """Unlabelled frontal films of the patients none of whose films carries a lung outline."""
    from PIL import Image

    from radloop.context.labcsv import read_rows

    rows = read_rows(folder)
    outlined = {r.get("patient_id") or r.get("patientid") for r in rows if r.get("lung_mask")}
    films = []
    for row in rows:
        patient = row.get("patient_id") or row.get("patientid")
        view = (row.get("projection") or row.get("view") or "").lower()
        if patient in outlined or view not in ("pa", "ap", "ap supine", "ap semi erect"):
            continue
        with Image.open(folder / row["image"]) as image:
            films.append(np.asarray(image.convert("F"), dtype=np.float32) / 255.0)
        if len(films) >= limit:
            break
    return films
