"""Train the rib network (:mod:`.ribs`) on fractures inserted into the lab's images.

``train_ribs(RibConfig(), out)`` is the recipe of the shipped ``ribs.onnx``, the nodule
network's recipe (:mod:`.nodules_train`) with the lab's rib fracture in place of its nodule:

1. **Inserted fractures** (``rib-inserted-*.npz``): ``n_train`` lab studies are rendered
   without rib fractures (the lab's other random findings stay, nodules and masses included,
   as negatives); each study's line integral then gets ``variants`` exposures, each with 0, 1
   or 2 fractures: a site on the lateral arc of a 4th–9th rib drawn as the lab draws it
   (:func:`radloop.synth.findings.fracture_site`) and the lab's own callus there
   (:func:`~radloop.synth.findings.callus_spheres`: its chord lengths times its attenuation,
   exactly as the lab renders it), before the lab's own exposure. The break itself, under 1 %
   of the display, is left out.
2. **The lab's own fractures** (``rib-val-*.npz``): ``n_val`` studies of another seed with the
   lab's random findings, every second one with a rib fracture, for validation, the Platt
   scaling of the presence logit and the threshold — never inserted fractures there.

Training is the nodule network's: 64 × 64 patches with hard negatives, stride-8 cell targets
within the callus's radius (at least 0.75 cells).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.models.reference.data import load_dataset, render_shards
from radloop.models.reference.devices import apply_calibration
from radloop.models.reference.devices_train import fit_platt
from radloop.models.reference.metrics import auroc, best_threshold
from radloop.models.reference.nodules_train import (
    CropRecipe,
    _fit,
    _lab_job,
    _network,
    _predict,
    _sample,
    _stack,
    _study,
    _to_crop,
    export_crop_network,
    lab_entries,
)
from radloop.models.reference.ribs import RIB_NETWORK
from radloop.models.reference.train import _torch, refresh_model_card

__all__ = [
    "RIB_SEED",
    "RIB_VERSION",
    "RibConfig",
    "calibrate_ribs",
    "insert_fractures",
    "train_ribs",
]

RIB_SEED = 20_240_404
RIB_VERSION = "0.4.1"

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RibConfig(CropRecipe):
    """The rib network's recipe; the defaults reproduce the shipped weights."""

    n_train: int = 2000  # studies rendered without rib fractures, for insertion
    epochs: int = 10
    data_seed: int = RIB_SEED
    hard_per_epoch: int = 600


def insert_fractures(
    line: F32, phantom: Any, geometry: Any, rng: np.random.Generator, count: int
) -> tuple[F32, list[tuple[float, float, float, float]]]:
    """``line`` with ``count`` healing rib fractures added as the lab draws them, and each
    one's (row, col, callus diameter mm, magnification) on the image."""
    from radloop.synth.findings import callus_spheres, fracture_site
    from radloop.synth.phantom import MU_WATER_PER_MM
    from radloop.synth.projector import sphere_line_integral

    out = np.array(line, dtype=np.float32, copy=True)
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        site = fracture_site(phantom.anatomy, rng)
        if site is None:
            continue
        spheres = callus_spheres(site.positions, site.at, rng)
        for sphere in spheres:
            centre = phantom.deformation.apply_points(np.asarray(sphere.centre, np.float32))
            patch, (r0, c0, r1, c1) = sphere_line_integral(geometry, centre[0], sphere.radius_mm)
            out[r0:r1, c0:c1] += patch * np.float32(MU_WATER_PER_MM * sphere.delta_hu / 1000.0)
        at = phantom.deformation.apply_points(np.asarray(site.at, np.float32).reshape(1, 3))
        u, v, t = geometry.project(at)
        diameter = 2.0 * spheres[0].radius_mm
        placed.append((float(v[0]), float(u[0]), diameter, float(t[0])))
    return out, placed


def _make_inserted(job: tuple[int, int, str, int, str | None]) -> list[dict[str, Any]]:
    from radloop.synth.imaging import expose
    from radloop.synth.phantom import _ct_field

    seed, index, site, variants, cache = job
    study = _study(seed, index, site, cache, present=False, code="rib_fracture")
    view = next(iter(study.views.values()))
    geometry = view.geometry
    limits = _ct_field(study.phantom, geometry)
    samples = []
    for k in range(variants):
        rng = np.random.default_rng([seed, index, 1000 + k])
        count = int(rng.choice([0, 1, 2], p=[0.5, 0.38, 0.12]))
        line, placed = insert_fractures(view.line_integral, study.phantom, geometry, rng, count)
        exposure = expose(
            line, study.site, rng, pixel_mm=geometry.pixel_mm, view=geometry.view, limits=limits
        )
        entries = []
        for row, col, diameter, magnification in placed:
            r, c, s = _to_crop(row, col, geometry.rows, RIB_NETWORK)
            entries.append((r, c, diameter, diameter * magnification / geometry.pixel_mm * s))
        samples.append(_sample(exposure.display, geometry.pixel_mm, entries, RIB_NETWORK, "ribs"))
    return samples


def _make_lab(job: tuple[int, int, str, str | None]) -> list[dict[str, Any]]:
    seed, index, site, cache = job
    study = _study(seed, index, site, cache, present=None, code="rib_fracture")
    sizes = {f["id"]: float(f["details"].get("callus_mm", 0.0)) for f in study.truth["findings"]}
    view = next(iter(study.views.values()))
    spacing = study.truth["images"][0]["pixel_spacing_mm"]
    entries = lab_entries(study, "rib_fracture", RIB_NETWORK, sizes)
    return [_sample(view.exposure.display, spacing[0], entries, RIB_NETWORK, "ribs")]


def build_rib_datasets(
    config: RibConfig, data_dir: Path, progress: Any = None
) -> dict[str, list[Path]]:
    """Render (or reuse) the two sets: inserted (training) and val (the lab's own)."""
    seed, profiles, workers = config.data_seed, config.profiles, config.threads
    inserted = render_shards(
        data_dir,
        "rib-inserted",
        config.n_train,
        seed=seed,
        job=lambda i: (seed, i, profiles[i % len(profiles)], config.variants),
        make=_make_inserted,
        stack=_stack,
        workers=workers,
        progress=progress,
    )
    val = render_shards(
        data_dir,
        "rib-val",
        config.n_val,
        seed=seed + 2,
        job=functools.partial(_lab_job, seed + 2, profiles),
        make=_make_lab,
        stack=_stack,
        workers=workers,
        progress=progress,
    )
    return {"inserted": inserted, "val": val}


def validate_ribs(probabilities: npt.NDArray[np.float64], ribs: F32) -> dict[str, Any]:
    """AUROC and the F1 threshold on studies with and without the lab's own fracture."""
    y = np.asarray((ribs[:, :, 2] > 0).any(axis=1), dtype=bool)
    value = auroc(y, probabilities)
    return {
        "n_images": len(y),
        "n_fractures": int(y.sum()),
        "auroc": {"rib_fracture": None if np.isnan(value) else round(float(value), 4)},
        "thresholds": {"rib_fracture": round(best_threshold(y, probabilities), 4)},
    }


def calibrate_ribs(
    logits: npt.NDArray[np.float64], val: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Platt scaling, validation figures and threshold on the validation images the runtime
    reads (``RIB_NETWORK.readable``: finer than about 0.86 mm per pixel); the AUROC on every
    validation image, the unread ones included, is kept beside it as ``auroc_all_images``."""
    labels = np.asarray((val["ribs"][:, :, 2] > 0).any(axis=1), dtype=bool)
    read = np.asarray(val.get("readable", np.ones(len(labels), bool)), dtype=bool)
    if not read.any():
        raise ValueError("no validation image is fine enough for the rib network")
    scale, bias = fit_platt(logits[read], labels[read])
    calibration = {"rib_fracture": {"scale": round(scale, 5), "bias": round(bias, 5)}}
    calibrated = apply_calibration(logits[:, None], calibration, RIB_NETWORK.findings)[:, 0]
    probabilities = 1.0 / (1.0 + np.exp(-calibrated))
    metrics = validate_ribs(probabilities[read], val["ribs"][read])
    every = auroc(labels, probabilities)
    metrics["n_unread"] = int((~read).sum())
    metrics["auroc_all_images"] = {"rib_fracture": round(float(every), 4)}
    return calibration, metrics


def train_ribs(
    config: RibConfig, out: Path, *, data_dir: Path | None = None, log: Any = print
) -> dict[str, Any]:
    """Render the data (if needed), train, validate, calibrate, export; returns the sidecar."""
    torch = _torch()
    from tqdm import tqdm

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=config.n_train + config.n_val, unit="study", desc="render ribs") as bar:
        sets = build_rib_datasets(config, data_dir or out / "data", progress=bar.update)
    data_seconds = time.perf_counter() - started
    train = load_dataset(sets["inserted"])
    val = load_dataset(sets["val"])
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    model = _network(config)
    train_started = time.perf_counter()
    step = _fit(torch, model, config, train["crop"], train["ribs"], RIB_NETWORK)
    train_seconds = time.perf_counter() - train_started
    logits = _predict(torch, model, val["crop"])
    calibration, metrics = calibrate_ribs(logits, val)
    log(
        f"rib fracture validation (lab fractures, {metrics['n_images']} images read): AUROC "
        f"{metrics['auroc']['rib_fracture']} ({metrics['auroc_all_images']['rib_fracture']} "
        "with the unread coarse images)"
    )
    timing = (step, data_seconds, train_seconds)
    sidecar = export_crop_network(
        torch, model, config, RIB_NETWORK, out, RIB_VERSION, calibration, metrics,
        len(train["crop"]), len(val["crop"]), timing,
    )  # fmt: skip
    refresh_model_card(out)
    return sidecar
