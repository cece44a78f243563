"""Train the lung network (:mod:`.lungs`): nodules and rib fractures inserted into lab images.

``train_lungs(LungConfig(), out)`` is the recipe of the shipped ``lungs.onnx``. It joins the
nodule recipe (:mod:`.nodules_train`) and the rib recipe (:mod:`.ribs_train`), which rendered
their own lab studies, into one set of renders and one network with two output channels:

1. **Inserted** (``lung-inserted-*.npz``): ``n_train`` lab studies are rendered without
   nodules and rib fractures (the lab's other random findings stay, masses included, as
   negatives); each study's line integral then gets ``variants`` exposures, each with 0–2
   nodules (:func:`.nodules_train.insert_nodules`: a ball's chord length times its
   attenuation, in the lungs) and, independently, 0–2 healing rib fractures
   (:func:`.ribs_train.insert_fractures`: the lab's own callus at a site the lab would
   choose), before the lab's own exposure, scatter, blur, noise and tone curve.
2. **Lab** (``lung-lab-*.npz``): ``n_lab`` studies of another seed with the lab's own nodules
   (every second study) and rib fractures (every second pair of studies), for training.
3. **Validation** (``lung-val-*.npz``): ``n_val`` such studies of a third seed, for the
   validation figures, the per-finding Platt scaling and thresholds — never inserted objects.
   Rib fractures are validated on the images the network reads for them (finer than about
   0.86 mm per pixel: the ``standard`` and ``community`` profiles).

Training is the crop networks' patch training with hard negatives: 64 × 64 patches centred on
objects of both kinds, random patches, and the most object-like places (either channel) of
crops free of both; stride-8 cell targets per channel within each object's radius.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.training import require_torch
from radloop.lab.training.reference.card import refresh_model_card
from radloop.lab.training.reference.data import load_dataset, render_shards, stack_fields
from radloop.lab.training.reference.data import worker_anatomy as _anatomy
from radloop.lab.training.reference.devices_train import fit_platt
from radloop.lab.training.reference.nodules_train import (
    CropRecipe,
    _fit,
    _network,
    _nodule_rows,
    _predict,
    _to_crop,
    export_crop_network,
    insert_nodules,
    lab_entries,
    validate_nodules,
)
from radloop.lab.training.reference.ribs_train import insert_fractures, validate_ribs
from radloop.models.reference.devices import apply_calibration
from radloop.models.reference.lungs import LUNG_NETWORK
from radloop.stats import auroc, sigmoid

__all__ = ["LUNG_SEED", "LUNG_VERSION", "LungConfig", "build_lung_datasets", "train_lungs"]

LUNG_SEED = 20_240_505
LUNG_VERSION = "0.6.0"
_COUNTS = ([0, 1, 2], [0.5, 0.38, 0.12])  # objects of each kind per inserted exposure

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LungConfig(CropRecipe):
    """The lung network's recipe; the defaults reproduce the shipped weights."""

    n_train: int = 2000  # studies rendered without nodules or rib fractures, for insertion
    n_lab: int = 600  # studies with the lab's own nodules and fractures, for training
    epochs: int = 6
    variants: int = 4  # exposures per study; 4 keep the whole recipe under 60 min
    data_seed: int = LUNG_SEED
    hard_per_epoch: int = 600


def _study(
    seed: int, index: int, site: str, cache: str | None, nodule: bool, fracture: bool
) -> Any:
    """Lab study ``index`` (frontal only): its random findings other than nodules and rib
    fractures, plus one nodule and one rib fracture where asked."""
    from radloop.lab.synth import make_study
    from radloop.lab.synth.lab import sample_specs
    from radloop.lab.synth.variation import profile

    rng = np.random.default_rng([seed, index, 7])
    drop = ("nodule", "rib_fracture")
    codes = [s.code for s in sample_specs(seed, index, rng) if s.code not in drop]
    codes += [code for code, wanted in zip(drop, (nodule, fracture), strict=True) if wanted]
    frontal_only = dataclasses.replace(profile(site), lateral=False)
    return make_study(_anatomy(cache), seed, index, site=frontal_only, codes=codes)


def _sample(
    display: F32,
    pixel_mm: float,
    nodules: list[tuple[float, float, float, float]],
    ribs: list[tuple[float, float, float, float]],
) -> dict[str, Any]:
    """One sample: the crop (float16), each kind's object rows, and per finding whether the
    runtime reads it on this image (``reads``: nodule, rib fracture)."""
    spacing = (pixel_mm, pixel_mm)
    unread = LUNG_NETWORK.unread(display, spacing)
    return {
        "crop": LUNG_NETWORK.read(display, spacing).astype(np.float16),
        "nodules": _nodule_rows(nodules),
        "ribs": _nodule_rows(ribs),
        "frontal": np.asarray(True),
        "reads": np.asarray([code not in unread for code in LUNG_NETWORK.findings]),
    }


def _make_inserted(job: tuple[int, int, str, int, str | None]) -> list[dict[str, Any]]:
    from radloop.lab.synth.imaging import expose
    from radloop.lab.synth.phantom import _ct_field

    seed, index, site, variants, cache = job
    study = _study(seed, index, site, cache, nodule=False, fracture=False)
    view = next(iter(study.views.values()))
    geometry = view.geometry
    anatomy = study.phantom.anatomy
    centre = study.phantom.deformation.apply_points(np.asarray(anatomy.lung_centre, np.float32))
    magnification = geometry.magnification_at(np.asarray(centre).reshape(3))
    lungs = np.zeros(view.line_integral.shape, bool)
    for mask in view.lung_masks.values():
        lungs |= mask
    limits = _ct_field(study.phantom, geometry)
    size, pixel_mm = geometry.rows, geometry.pixel_mm
    samples = []
    for k in range(variants):
        rng = np.random.default_rng([seed, index, 1000 + k])
        n_nodules, n_fractures = (int(rng.choice(_COUNTS[0], p=_COUNTS[1])) for _ in range(2))
        line, nodules = insert_nodules(
            view.line_integral, lungs, pixel_mm, magnification, rng, n_nodules
        )
        line, fractures = insert_fractures(line, study.phantom, geometry, rng, n_fractures)
        exposure = expose(
            line, study.site, rng, pixel_mm=pixel_mm, view=geometry.view, limits=limits
        )
        entries: tuple[list[tuple[float, float, float, float]], ...] = ([], [])
        for row, col, diameter in nodules:
            r, c, s = _to_crop(row, col, size, LUNG_NETWORK)
            entries[0].append((r, c, diameter, diameter * magnification / pixel_mm * s))
        for row, col, diameter, mag in fractures:
            r, c, s = _to_crop(row, col, size, LUNG_NETWORK)
            entries[1].append((r, c, diameter, diameter * mag / pixel_mm * s))
        samples.append(_sample(exposure.display, pixel_mm, *entries))
    return samples


def _make_lab(job: tuple[int, int, str, str | None]) -> list[dict[str, Any]]:
    seed, index, site, cache = job
    study = _study(seed, index, site, cache, nodule=index % 2 == 0, fracture=index // 2 % 2 == 0)
    findings = study.truth["findings"]
    nodule_mm = {f["id"]: float(f.get("size_mm") or 0) for f in findings}
    callus_mm = {f["id"]: float(f["details"].get("callus_mm", 0.0)) for f in findings}
    view = next(iter(study.views.values()))
    spacing = study.truth["images"][0]["pixel_spacing_mm"]
    return [
        _sample(
            view.exposure.display,
            spacing[0],
            lab_entries(study, "nodule", LUNG_NETWORK, nodule_mm),
            lab_entries(study, "rib_fracture", LUNG_NETWORK, callus_mm),
        )
    ]


def _lab_job(seed: int, profiles: tuple[str, ...], index: int) -> tuple[int, int, str]:
    return seed, index, profiles[index % len(profiles)]


def build_lung_datasets(
    config: LungConfig, data_dir: Path, progress: Any = None
) -> dict[str, list[Path]]:
    """Render (or reuse) the three sets: inserted and lab (training), val (lab, third seed)."""
    seed, profiles, workers = config.data_seed, config.profiles, config.threads
    sets = {
        "inserted": render_shards(
            data_dir,
            "lung-inserted",
            config.n_train,
            seed=seed,
            job=lambda i: (seed, i, profiles[i % len(profiles)], config.variants),
            make=_make_inserted,
            stack=stack_fields,
            workers=workers,
            progress=progress,
        )
    }
    for name, n, s in (("lab", config.n_lab, seed + 1), ("val", config.n_val, seed + 2)):
        sets[name] = render_shards(
            data_dir,
            f"lung-{name}",
            n,
            seed=s,
            job=functools.partial(_lab_job, s, profiles),
            make=_make_lab,
            stack=stack_fields,
            workers=workers,
            progress=progress,
        )
    return sets


def calibrate_lungs(
    logits: npt.NDArray[np.float64], val: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per finding: Platt scaling, validation figures and F1 threshold on the validation
    images the network reads for it; for rib fractures also the AUROC on every image."""
    calibration: dict[str, Any] = {}
    reads = np.asarray(val["reads"], dtype=bool)
    keys = ("nodules", "ribs")
    for k, (code, key) in enumerate(zip(LUNG_NETWORK.findings, keys, strict=True)):
        labels = np.asarray((val[key][:, :, 2] > 0).any(axis=1), dtype=bool)
        read = reads[:, k]
        if not read.any():
            raise ValueError(f"no validation image is fine enough to read {code}")
        scale, bias = fit_platt(logits[read, k], labels[read])
        calibration[code] = {"scale": round(scale, 5), "bias": round(bias, 5)}
    calibrated = apply_calibration(logits, calibration, LUNG_NETWORK.findings)
    probabilities = sigmoid(calibrated, limit=None)
    nodules = validate_nodules(probabilities[reads[:, 0], 0], val["nodules"][reads[:, 0]])
    ribs = validate_ribs(probabilities[reads[:, 1], 1], val["ribs"][reads[:, 1]])
    has_fracture = (val["ribs"][:, :, 2] > 0).any(axis=1)
    metrics = {
        "n_images": len(logits),
        "n_nodules": nodules["n_nodules"],
        "n_fractures": ribs["n_fractures"],
        "n_read": {"nodule": nodules["n_images"], "rib_fracture": ribs["n_images"]},
        "auroc": {**nodules["auroc"], **ribs["auroc"]},
        "auroc_by_size": {"nodule": nodules["auroc_by_size"]},
        "auroc_all_images": {
            "rib_fracture": round(float(auroc(has_fracture, probabilities[:, 1])), 4)
        },
        "thresholds": {**nodules["thresholds"], **ribs["thresholds"]},
    }
    return calibration, metrics


def train_lungs(
    config: LungConfig, out: Path, *, data_dir: Path | None = None, log: Any = print
) -> dict[str, Any]:
    """Render the data (if needed), train, validate, calibrate, export; returns the sidecar."""
    torch = require_torch("radloop train-reference")
    from tqdm import tqdm

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    total = config.n_train + config.n_lab + config.n_val
    with tqdm(total=total, unit="study", desc="render lungs") as bar:
        sets = build_lung_datasets(config, data_dir or out / "data", progress=bar.update)
    data_seconds = time.perf_counter() - started
    train = [load_dataset(sets[name]) for name in ("inserted", "lab") if sets[name]]
    crops = np.concatenate([d["crop"] for d in train])
    objects = [np.concatenate([d[key] for d in train]) for key in ("nodules", "ribs")]
    val = load_dataset(sets["val"])
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    model = _network(config, outputs=len(LUNG_NETWORK.findings))
    train_started = time.perf_counter()
    step = _fit(torch, model, config, crops, objects, LUNG_NETWORK)
    train_seconds = time.perf_counter() - train_started
    calibration, metrics = calibrate_lungs(_predict(torch, model, val["crop"]), val)
    log(
        f"lung network validation (the lab's own objects): AUROC {metrics['auroc']} "
        f"(nodules by size {metrics['auroc_by_size']['nodule']}; rib fractures on "
        f"{metrics['n_read']['rib_fracture']} images read, "
        f"{metrics['auroc_all_images']['rib_fracture']} on all)"
    )
    timing = (step, data_seconds, train_seconds)
    sidecar = export_crop_network(
        torch, model, config, LUNG_NETWORK, out, LUNG_VERSION, calibration, metrics,
        len(crops), len(val["crop"]), timing,
    )  # fmt: skip
    refresh_model_card(out)
    return sidecar
