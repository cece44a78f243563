"""``synth:test`` and ``synth:PATH``: studies of the synthetic lab with their exact truth.

``synth:test`` is a fixed held-out test split: ``n`` studies (default 120) rendered on first
use from :data:`EVAL_SEED`, a seed that training (``data.TRAIN_SEED``) and the benchmarks never
use, on the ``enhanced`` site profile, which training never used (as ``radloop bench
reference`` does). Several profiles may be named; the studies are split evenly over them and
each profile is a site. The rendering is cached (``cache_dir``, default
``~/.cache/radloop/eval``) and reused. ``synth:PATH`` reads a folder written by ``radloop synth
make``.

Each case carries the truth of ``truth.json``: a label for every finding type the lab inserts,
the present findings with side, zones, lobes, vertebral level and size, zone labels, and for
sized lesions (nodule, mass, pneumothorax) the size and the contrast measured on the rendered
image (:func:`lesion_contrast`), which is how sensitivity is broken down by size and contrast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.evaluate.datasets import check_options, register_dataset, require_folder
from radloop.evaluate.errors import DatasetError
from radloop.evaluate.pipeline import default_cache_dir
from radloop.evaluate.types import Case, Lesion
from radloop.lab.synth.findings import FINDING_TYPES
from radloop.study import Study
from radloop.vocabulary import Zone

__all__ = [
    "EVAL_PROFILE",
    "EVAL_SEED",
    "SIZED",
    "SyntheticDataset",
    "case_from_truth",
    "lesion_contrast",
    "render_test_split",
]

EVAL_SEED = 990_001
EVAL_PROFILE = "enhanced"
SIZED = ("nodule", "mass", "pneumothorax")
_UNZONED = frozenset({"cardiomegaly", "endotracheal_tube", "central_venous_catheter"})
_RING_PX = 12


def lesion_contrast(display: npt.NDArray[Any], mask: npt.NDArray[np.bool_]) -> float | None:
    """|mean inside the mask − mean of a ring around it| in percent of the display range.

    The ring is the mask dilated by 12 px minus the mask. This is the lesion's conspicuity on
    the displayed image: a faint nodule over dense anatomy scores low whatever its HU.
    """
    from PIL import Image as PILImage
    from PIL import ImageFilter

    if not mask.any():
        return None
    grown = PILImage.fromarray(mask.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(2 * _RING_PX + 1)
    )
    ring = (np.asarray(grown) > 0) & ~mask
    if not ring.any():
        return None
    values = display.astype(np.float64)
    scale = 255.0 if display.dtype == np.uint8 else 1.0
    return round(abs(float(values[mask].mean() - values[ring].mean())) / scale * 100.0, 3)


def _read_png(path: Path) -> npt.NDArray[Any]:
    from PIL import Image as PILImage

    with PILImage.open(path) as image:
        return np.asarray(image)


def _lesions(folder: Path, truth: Mapping[str, Any]) -> tuple[Lesion, ...]:
    image = truth["images"][0] if truth.get("images") else {}
    by_id = {entry["id"]: entry for entry in image.get("findings", [])}
    display = None
    out = []
    for item in truth.get("findings", []):
        if item.get("presence") != "present" or item["code"] not in SIZED:
            continue
        contrast = None
        mask_name = by_id.get(item["id"], {}).get("mask")
        if mask_name and image.get("preview") and (folder / mask_name).is_file():
            if display is None:
                display = _read_png(folder / image["preview"])
            contrast = lesion_contrast(display, _read_png(folder / mask_name) > 0)
        size = item.get("size_mm")
        out.append(Lesion(item["code"], item.get("side"), float(size) if size else None, contrast))
    return tuple(out)


def case_from_truth(
    folder: Path, truth: Mapping[str, Any], site: str | None = None, case_id: str | None = None
) -> Case:
    """The case of one rendered study folder (``dicom/`` and ``truth.json``)."""
    from radloop.lab.synth.truth import truth_findings

    present = {f["code"] for f in truth.get("findings", []) if f.get("presence") == "present"}
    zone_labels: dict[str, dict[str, int]] = {}
    for code in FINDING_TYPES:
        if code in _UNZONED:
            continue
        zones = {
            z
            for f in truth.get("findings", [])
            if f["code"] == code and f.get("presence") == "present"
            for z in f.get("zones") or []
        }
        if code in present and not zones:
            continue  # present but not visible on the frontal image: zones unknown
        zone_labels[code] = {z.value: int(z.value in zones) for z in Zone}
    patient = truth.get("patient", {})
    image = truth["images"][0] if truth.get("images") else {}
    return Case(
        case_id=case_id or str(truth.get("study_id", folder.name)),
        source=str(folder / "dicom"),
        labels={code: int(code in present) for code in FINDING_TYPES},
        findings=truth_findings(dict(truth)),
        zone_labels=zone_labels,
        lesions=_lesions(folder, truth),
        attributes={
            "age": patient.get("age_years"),
            "sex": patient.get("sex"),
            "site": site or truth.get("profile"),
            "view": image.get("view"),
        },
    )


def render_test_split(
    n: int,
    profiles: tuple[str, ...],
    cache_dir: Path,
    *,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Render (once) and return the study folders of the held-out split."""
    from radloop.lab.synth.study_writer import make_dataset

    folders: list[Path] = []
    counts = [n // len(profiles) + (i < n % len(profiles)) for i in range(len(profiles))]
    for offset, (profile, k) in enumerate(zip(profiles, counts, strict=True)):
        if k == 0:
            continue
        seed = EVAL_SEED + 10 * offset
        out = cache_dir / f"synth-test-{seed}-{profile}-{k}"
        manifest_path = out / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if progress:
                progress(k)
        else:
            partial = out.with_name(out.name + ".partial")
            if partial.exists():
                import shutil

                shutil.rmtree(partial)
            manifest = make_dataset(
                k, seed, partial, profile=profile, workers=workers, progress=progress
            )
            partial.rename(out)  # nothing half-written is ever read as a split
        folders.extend(out / entry["path"] for entry in manifest["studies"])
    return folders


class SyntheticDataset:
    """Studies of the synthetic lab read from their folders."""

    image_based = True
    codes: tuple[str, ...] = FINDING_TYPES

    def __init__(self, name: str, folders: list[Path], description: str) -> None:
        self.name = name
        self.description = description
        self._folders = folders

    def cases(self) -> list[Case]:
        truths = [json.loads((f / "truth.json").read_text(encoding="utf-8")) for f in self._folders]
        ids = [str(t.get("study_id", f.name)) for t, f in zip(truths, self._folders, strict=True)]
        if len(set(ids)) < len(ids):
            # Splits of several profiles number their studies alike: name them by split.
            ids = [f"{f.parent.name}-{i}" for f, i in zip(self._folders, ids, strict=True)]
        return [
            case_from_truth(folder, truth, case_id=case_id)
            for folder, truth, case_id in zip(self._folders, truths, ids, strict=True)
        ]

    def load_study(self, case: Case) -> Study:
        from radloop.study import load_study

        return load_study(case.source)


def _folders_of(root: Path) -> list[Path]:
    manifest = root / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text(encoding="utf-8"))["studies"]
        return [root / e["path"] for e in entries]
    found = sorted(p.parent for p in root.rglob("truth.json"))
    if not found:
        raise DatasetError(
            "a folder written by `radloop synth make` (manifest.json or */truth.json)",
            f"{root} with neither",
            source=root,
        )
    return found


@register_dataset("synth")
def open_synthetic(
    path: str,
    *,
    n: int | str = 120,
    profiles: str = EVAL_PROFILE,
    cache_dir: str | Path | None = None,
    workers: int | str = 2,
    progress: Callable[[int], None] | None = None,
    **others: Any,
) -> SyntheticDataset:
    """The synthetic lab: ``synth:test`` (held-out split, rendered once) or a folder."""
    check_options(others, {"n", "profiles", "cache_dir", "workers"}, "synth")
    if path != "test":
        root = require_folder(path, "studies written by `radloop synth make`")
        return SyntheticDataset(
            f"synth:{path}", _folders_of(root), "synthetic lab studies with exact truth"
        )
    count = int(n)
    if count < 1:
        raise DatasetError("n >= 1 test studies", str(n))
    names = tuple(p.strip() for p in str(profiles).split(",") if p.strip())
    from radloop.lab.synth import PROFILES

    unknown = [p for p in names if p not in PROFILES]
    if unknown or not names:
        raise DatasetError(f"site profiles among {', '.join(PROFILES)}", repr(profiles))
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    folders = render_test_split(count, names, cache, workers=int(workers), progress=progress)
    description = (
        f"held-out synthetic test split: {count} studies from seed {EVAL_SEED} (never used in "
        f"training) on site profile(s) {', '.join(names)}; truth is exact"
    )
    return SyntheticDataset("synth:test", folders, description)
