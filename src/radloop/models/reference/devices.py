"""The device network: tubes and lines read at full resolution from a mediastinal crop.

The whole-image network sees the chest at 1.6 mm per pixel, where a 2 mm catheter or the
radiopaque stripe of an endotracheal tube covers a fifth of a pixel; it never learned them
(validation AUROC 0.59 and 0.54). The device network reads a fixed crop of the detector field
instead — the upper 55 % of the field's height and its central 40 % (trachea, carina, superior
vena cava, brachiocephalic veins), at about 0.69 mm per pixel — and predicts, per device:

- ``presence`` (B, 2) logits: the most device-like cell (multiple-instance max over cells),
  Platt-scaled by the sidecar's ``presence_calibration`` (fitted on the validation split);
- ``cells``    (B, 2, 18, 13) logits on the crop's stride-16 grid (trained on the device
  masks), pasted into the main heatmap so the viewer and the verifier see where it lies;
- ``tips``     (B, 2) encoded tip-to-carina distances (``spec.REGRESSIONS``' encoding),
  read from per-cell regression maps weighted by where the device is.

This module needs only numpy and onnxruntime; :mod:`.devices_train` builds and trains the
network with torch. :class:`DeviceRuntime` runs ``devices.onnx`` and
:func:`merge_output` / :func:`merge_sidecar` fold its reading into the main network's, so
everything downstream (thresholds, reportable types, the verifier) is unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from radloop.models.reference.preprocess import field_crop
from radloop.models.reference.spec import FIELD_MM, FINDINGS, REGRESSIONS, Regression
from radloop.study import Image

__all__ = [
    "CELL_STRIDE",
    "CROP",
    "CROP_SHAPE",
    "DEVICES",
    "DEVICE_ONNX",
    "DEVICE_REGRESSIONS",
    "DEVICE_SIDECAR",
    "DeviceOutput",
    "DeviceRuntime",
    "apply_calibration",
    "crop_box",
    "device_crop",
    "merge_output",
    "merge_sidecar",
    "paste_cells",
    "readable",
]

F32 = npt.NDArray[np.float32]

DEVICES: tuple[str, ...] = ("endotracheal_tube", "central_venous_catheter")
DEVICE_REGRESSIONS: tuple[Regression, ...] = tuple(
    next(r for r in REGRESSIONS if r.finding == code) for code in DEVICES
)
DEVICE_ONNX = "devices.onnx"
DEVICE_SIDECAR = "devices.json"

# The crop, as fractions of the detector field: (top, bottom, left, right).
CROP: tuple[float, float, float, float] = (0.02, 0.57, 0.30, 0.70)
CROP_SHAPE: tuple[int, int] = (288, 208)  # rows, columns: about 0.69 mm per pixel at 360 mm
CELL_STRIDE = 16
CELLS: tuple[int, int] = (CROP_SHAPE[0] // CELL_STRIDE, CROP_SHAPE[1] // CELL_STRIDE)


def _sigmoid(x: npt.NDArray[Any]) -> F32:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -60, 60))), dtype=np.float32)


def crop_box(shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the crop in a field of ``shape``."""
    rows, cols = shape
    top, bottom, left, right = CROP
    return round(top * rows), round(bottom * rows), round(left * cols), round(right * cols)


def _resize(pixels: npt.NDArray[Any], shape: tuple[int, int]) -> F32:
    """Area average when shrinking, bilinear when enlarging, to ``shape`` (rows, columns)."""
    image = PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    shrink = pixels.shape[0] >= shape[0] and pixels.shape[1] >= shape[1]
    method = PILImage.Resampling.BOX if shrink else PILImage.Resampling.BILINEAR
    return np.asarray(image.resize((shape[1], shape[0]), method), dtype=np.float32)


def device_crop(
    pixels: npt.NDArray[Any],
    spacing_mm: tuple[float, float] | None,
    field_mm: float = FIELD_MM,
) -> F32:
    """The device network's input: the crop of the field, ``CROP_SHAPE``, display units.

    The network flattens the background and scales the contrast itself, so the crop is
    passed as it is (display intensities in [0, 1]). Masks go through the same function.
    """
    field = field_crop(np.asarray(pixels), spacing_mm, field_mm)
    r0, r1, c0, c1 = crop_box((int(field.shape[0]), int(field.shape[1])))
    return _resize(np.asarray(field[r0:r1, c0:c1], dtype=np.float32), CROP_SHAPE)


MIN_SOURCE_SHARE = 0.7
"""The device network reads an image only where the crop's source region has at least this
share of ``CROP_SHAPE``'s pixels along each axis (at most about 1.4× enlargement: 1.0 mm per
source pixel or finer at the 360 mm field). Its coarsest training images (the ``portable``
profile, 0.94 mm per pixel) are enlarged 1.36×; on 1.4 mm images it called catheters on 23
of 28 catheter-free lab studies."""


def readable(
    pixels: npt.NDArray[Any], spacing_mm: tuple[float, float] | None, field_mm: float = FIELD_MM
) -> bool:
    """Whether an image is fine enough for the device network (see ``MIN_SOURCE_SHARE``)."""
    rows, cols = np.asarray(pixels).shape[:2]
    if spacing_mm is not None and min(spacing_mm) > 0:
        rows, cols = round(field_mm / spacing_mm[0]), round(field_mm / spacing_mm[1])
    r0, r1, c0, c1 = crop_box((rows, cols))
    wide_enough = (c1 - c0) >= MIN_SOURCE_SHARE * CROP_SHAPE[1]
    return (r1 - r0) >= MIN_SOURCE_SHARE * CROP_SHAPE[0] and wide_enough


def paste_cells(cells: F32, size: int) -> F32:
    """A crop cell map (rows, cols) placed in an all-zero ``size`` square field heatmap."""
    out = np.zeros((size, size), np.float32)
    r0, r1, c0, c1 = crop_box((size, size))
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = _max_resize(cells, (r1 - r0, c1 - c0))
    return out


def _max_resize(cells: F32, shape: tuple[int, int]) -> F32:
    """Each output cell takes the maximum of the input cells it overlaps, so a thin device's
    peak probability (the study's probability) survives the change of grid."""

    def spans(n_in: int, n_out: int) -> list[slice]:
        edges = np.linspace(0.0, n_in, n_out + 1)
        return [slice(int(np.floor(a)), max(int(np.ceil(b)), int(np.floor(a)) + 1))
                for a, b in pairwise(edges)]  # fmt: skip

    rows, cols = spans(cells.shape[0], shape[0]), spans(cells.shape[1], shape[1])
    return np.asarray([[cells[r, c].max() for c in cols] for r in rows], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class DeviceOutput:
    """The device network's reading of one image."""

    probabilities: dict[str, float]
    cells: F32  # (devices, rows, cols) probabilities on the crop's grid
    tips_mm: dict[str, float]  # regression name -> decoded tip-to-carina distance


def apply_calibration(
    logits: npt.NDArray[Any], calibration: Mapping[str, Mapping[str, float]]
) -> npt.NDArray[np.float64]:
    """Presence logits (B, devices) after each device's Platt scaling (identity if absent)."""
    scale = np.asarray([calibration.get(c, {}).get("scale", 1.0) for c in DEVICES])
    bias = np.asarray([calibration.get(c, {}).get("bias", 0.0) for c in DEVICES])
    return np.asarray(np.asarray(logits, np.float64) * scale + bias, dtype=np.float64)


class DeviceRuntime:
    """An onnxruntime session over ``devices.onnx`` with its ``devices.json`` sidecar."""

    def __init__(self, onnx_path: Path, sidecar_path: Path, *, threads: int = 2) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.sidecar: dict[str, Any] = json.loads(sidecar_path.read_text())
        if list(self.sidecar.get("devices", [])) != list(DEVICES):
            raise ValueError(
                f"expected a device sidecar for {list(DEVICES)}, "
                f"got {self.sidecar.get('devices')} in {sidecar_path}"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session: Any = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.field_mm = float(self.sidecar.get("input", {}).get("field_mm", FIELD_MM))

    def run(self, images: Sequence[Image]) -> list[DeviceOutput | None]:
        """One reading per image; ``None`` for an image too coarse to read (``readable``)."""
        fine = [i for i, im in enumerate(images)
                if readable(im.pixels, im.pixel_spacing_mm, self.field_mm)]  # fmt: skip
        out: list[DeviceOutput | None] = [None] * len(images)
        for i, reading in zip(fine, self._run([images[i] for i in fine]), strict=True):
            out[i] = reading
        return out

    def _run(self, images: Sequence[Image]) -> list[DeviceOutput]:
        if not images:
            return []
        batch = np.stack(
            [device_crop(im.pixels, im.pixel_spacing_mm, self.field_mm) for im in images]
        )[:, None]
        presence, cells, tips = self.session.run(
            ["presence", "cells", "tips"], {"crop": batch.astype(np.float32)}
        )
        calibration = self.sidecar.get("presence_calibration", {})
        p, c = _sigmoid(apply_calibration(presence, calibration)), _sigmoid(cells)
        return [
            DeviceOutput(
                probabilities={code: float(p[i, k]) for k, code in enumerate(DEVICES)},
                cells=c[i],
                tips_mm={
                    r.name: r.decode(float(tips[i, k])) for k, r in enumerate(DEVICE_REGRESSIONS)
                },
            )
            for i in range(len(images))
        ]


def merge_output(output: Any, devices: DeviceOutput | None) -> Any:
    """A :class:`~.runtime.ReferenceOutput` with the device network's reading of its devices:
    probability, tip distance and heatmap (the crop's cells pasted into the field grid).
    Without a reading (an image too coarse) the devices are marked ``unassessed``: the
    whole-image network's guesses for them are not to be reported or used as evidence."""
    if devices is None:
        return dataclasses.replace(output, unassessed=output.unassessed | frozenset(DEVICES))
    heatmaps = np.array(output.heatmaps, copy=True)
    for k, code in enumerate(DEVICES):
        heatmaps[FINDINGS.index(code)] = paste_cells(devices.cells[k], heatmaps.shape[-1])
    measured = {**output.measured, **{name: "device network" for name in devices.tips_mm}}
    return dataclasses.replace(
        output,
        probabilities={**output.probabilities, **devices.probabilities},
        regressions={**output.regressions, **devices.tips_mm},
        heatmaps=heatmaps,
        measured=measured,
    )


def merge_sidecar(main: Mapping[str, Any], devices: Mapping[str, Any]) -> dict[str, Any]:
    """The main sidecar with the device network's thresholds and validation figures for the
    devices, so reportability (``reliable_findings``) and thresholds follow the network that
    actually reads them; the model's version becomes the device sidecar's."""
    merged = copy.deepcopy(dict(main))
    validation = devices.get("validation", {})
    merged.setdefault("thresholds", {}).update(devices.get("thresholds", {}))
    merged_validation = merged.setdefault("validation", {})
    merged_validation.setdefault("auroc", {}).update(validation.get("auroc", {}))
    merged_validation.setdefault("regression_mae", {}).update(validation.get("regression_mae", {}))
    auroc = [v for v in merged_validation["auroc"].values() if v is not None]
    if auroc:
        merged_validation["macro_auroc"] = round(float(np.mean(auroc)), 4)
    merged["devices"] = dict(devices)
    if "version" in devices:
        merged["version"] = devices["version"]
    return merged
