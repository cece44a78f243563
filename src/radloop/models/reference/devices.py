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
network with torch. :class:`CropRuntime` runs ``devices.onnx`` and
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

from radloop.models.reference.preprocess import centred_offset, field_crop
from radloop.models.reference.spec import FIELD_MM, FINDINGS, REGRESSIONS, Regression
from radloop.stats import sigmoid
from radloop.study import Image

__all__ = [
    "CELL_STRIDE",
    "CROP",
    "CROP_SHAPE",
    "DEVICES",
    "DEVICE_NETWORK",
    "DEVICE_REGRESSIONS",
    "CropNetwork",
    "CropRuntime",
    "DeviceOutput",
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

# The crop, as fractions of the detector field: (top, bottom, left, right).
CROP: tuple[float, float, float, float] = (0.02, 0.57, 0.30, 0.70)
CROP_SHAPE: tuple[int, int] = (288, 208)  # rows, columns: about 0.69 mm per pixel at 360 mm
CELL_STRIDE = 16
CELLS: tuple[int, int] = (CROP_SHAPE[0] // CELL_STRIDE, CROP_SHAPE[1] // CELL_STRIDE)


MIN_SOURCE_SHARE = 0.7
"""A crop network reads an image only where the crop's source region has at least this
share of its input's pixels along each axis (at most about 1.4× enlargement: 1.0 mm per
source pixel or finer at the 360 mm field). The device network's coarsest training images
(the ``portable`` profile, 0.94 mm per pixel) are enlarged 1.36×; on 1.4 mm images it called
catheters on 23 of 28 catheter-free lab studies."""


@dataclasses.dataclass(frozen=True)
class CropNetwork:
    """A network that reads one fixed crop of the detector field for some finding types.

    Its ONNX file takes ``crop`` (B, 1, *shape) in display units and gives ``presence``
    (B, findings) logits, ``cells`` (B, findings, *cells) logits on the crop's stride grid and,
    when it has regressions, ``tips`` (B, regressions) encoded values. Its files are
    ``{name}.onnx`` and ``{name}.json`` beside ``reference.onnx``.
    """

    name: str
    findings: tuple[str, ...]
    crop: tuple[float, float, float, float]  # top, bottom, left, right: fractions of the field
    shape: tuple[int, int]  # rows, columns
    stride: int
    regressions: tuple[Regression, ...] = ()
    min_share: float = MIN_SOURCE_SHARE  # see MIN_SOURCE_SHARE
    title: str = ""  # how ``measured`` names it ("device network"); default "{name} network"
    # Finding types that need a finer image than ``min_share``: (code, their min_share).
    finding_min_share: tuple[tuple[str, float], ...] = ()

    @property
    def cells(self) -> tuple[int, int]:
        return self.shape[0] // self.stride, self.shape[1] // self.stride

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("presence", "cells", "tips") if self.regressions else ("presence", "cells")

    @property
    def onnx(self) -> str:
        return f"{self.name}.onnx"

    @property
    def sidecar(self) -> str:
        return f"{self.name}.json"

    def box(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the crop in a field of ``shape``."""
        rows, cols = shape
        top, bottom, left, right = self.crop
        return round(top * rows), round(bottom * rows), round(left * cols), round(right * cols)

    def read(
        self,
        pixels: npt.NDArray[Any],
        spacing_mm: tuple[float, float] | None,
        field_mm: float = FIELD_MM,
    ) -> F32:
        """The network's input: its crop of the field at ``shape``, in display units.

        The network flattens the background and scales the contrast itself, so the crop is
        passed as it is (display intensities in [0, 1]). Masks go through the same function.
        """
        field = field_crop(np.asarray(pixels), spacing_mm, field_mm)
        r0, r1, c0, c1 = self.box((int(field.shape[0]), int(field.shape[1])))
        return _resize(np.asarray(field[r0:r1, c0:c1], dtype=np.float32), self.shape)

    def readable(
        self,
        pixels: npt.NDArray[Any],
        spacing_mm: tuple[float, float] | None,
        field_mm: float = FIELD_MM,
    ) -> bool:
        """Whether an image is fine enough for the network (see ``MIN_SOURCE_SHARE``): the
        crop's source region has at least ``min_share`` of the input's pixels on each axis."""
        return self._source_share(pixels, spacing_mm, field_mm) >= self.min_share

    def unread(
        self,
        pixels: npt.NDArray[Any],
        spacing_mm: tuple[float, float] | None,
        field_mm: float = FIELD_MM,
    ) -> frozenset[str]:
        """The finding types this image is too coarse for (``finding_min_share``; all of them
        when the network does not read it at all)."""
        share = self._source_share(pixels, spacing_mm, field_mm)
        if share < self.min_share:
            return frozenset(self.findings)
        return frozenset(code for code, need in self.finding_min_share if share < need)

    def _source_share(
        self, pixels: npt.NDArray[Any], spacing_mm: tuple[float, float] | None, field_mm: float
    ) -> float:
        """The crop's source pixels over its input pixels, on the scarcer axis."""
        rows, cols = np.asarray(pixels).shape[:2]
        if spacing_mm is not None and min(spacing_mm) > 0:
            rows, cols = round(field_mm / spacing_mm[0]), round(field_mm / spacing_mm[1])
        r0, r1, c0, c1 = self.box((rows, cols))
        return min((r1 - r0) / self.shape[0], (c1 - c0) / self.shape[1])

    def peak(self, cells: F32, field: tuple[int, int]) -> tuple[float, float]:
        """Where a cell map (rows, cols) peaks, in the pixels of a field of ``field`` (rows,
        columns): the probability-weighted centre of the 3 × 3 cells about its highest cell,
        which places an object between cells where a pasted heatmap's cell centre cannot."""
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(cells)), cells.shape))
        rows = slice(max(0, i - 1), min(cells.shape[0], i + 2))
        cols = slice(max(0, j - 1), min(cells.shape[1], j + 2))
        weights = np.asarray(cells[rows, cols], dtype=np.float64)
        ii, jj = np.mgrid[rows, cols]
        total = float(weights.sum())
        ci = float((weights * ii).sum()) / total if total > 0 else float(i)
        cj = float((weights * jj).sum()) / total if total > 0 else float(j)
        r0, r1, c0, c1 = self.box(field)
        # Cell centre in crop pixels, then in field pixels (the crop is resized from the box).
        y = (ci + 0.5) * self.stride - 0.5
        x = (cj + 0.5) * self.stride - 0.5
        return (
            r0 + (y + 0.5) * (r1 - r0) / self.shape[0] - 0.5,
            c0 + (x + 0.5) * (c1 - c0) / self.shape[1] - 0.5,
        )

    def paste(self, cells: F32, size: int) -> F32:
        """A crop cell map (rows, cols) placed in an all-zero ``size`` square field heatmap."""
        out = np.zeros((size, size), np.float32)
        r0, r1, c0, c1 = self.box((size, size))
        if r1 > r0 and c1 > c0:
            out[r0:r1, c0:c1] = _max_resize(cells, (r1 - r0, c1 - c0))
        return out


def _resize(pixels: npt.NDArray[Any], shape: tuple[int, int]) -> F32:
    """Area average when shrinking, bilinear when enlarging, to ``shape`` (rows, columns)."""
    image = PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    shrink = pixels.shape[0] >= shape[0] and pixels.shape[1] >= shape[1]
    method = PILImage.Resampling.BOX if shrink else PILImage.Resampling.BILINEAR
    return np.asarray(image.resize((shape[1], shape[0]), method), dtype=np.float32)


DEVICE_NETWORK = CropNetwork(
    "devices", DEVICES, CROP, CROP_SHAPE, CELL_STRIDE, DEVICE_REGRESSIONS, title="device network"
)


def crop_box(shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the device crop in a field of ``shape``."""
    return DEVICE_NETWORK.box(shape)


def device_crop(
    pixels: npt.NDArray[Any],
    spacing_mm: tuple[float, float] | None,
    field_mm: float = FIELD_MM,
) -> F32:
    """The device network's input (:meth:`CropNetwork.read`)."""
    return DEVICE_NETWORK.read(pixels, spacing_mm, field_mm)


def readable(
    pixels: npt.NDArray[Any], spacing_mm: tuple[float, float] | None, field_mm: float = FIELD_MM
) -> bool:
    """Whether an image is fine enough for the device network (see ``MIN_SOURCE_SHARE``)."""
    return DEVICE_NETWORK.readable(pixels, spacing_mm, field_mm)


def paste_cells(cells: F32, size: int) -> F32:
    """A device cell map placed in an all-zero ``size`` square field heatmap."""
    return DEVICE_NETWORK.paste(cells, size)


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
    """A crop network's reading of one image."""

    probabilities: dict[str, float]
    cells: F32  # (findings, rows, cols) probabilities on the crop's grid
    tips_mm: dict[str, float]  # regression name -> decoded value (tip-to-carina distance)
    unread: frozenset[str] = frozenset()  # findings the image is too coarse for


def apply_calibration(
    logits: npt.NDArray[Any],
    calibration: Mapping[str, Mapping[str, float]],
    findings: Sequence[str] = DEVICES,
) -> npt.NDArray[np.float64]:
    """Presence logits (B, findings) after each finding's Platt scaling (identity if absent)."""
    scale = np.asarray([calibration.get(c, {}).get("scale", 1.0) for c in findings])
    bias = np.asarray([calibration.get(c, {}).get("bias", 0.0) for c in findings])
    return np.asarray(np.asarray(logits, np.float64) * scale + bias, dtype=np.float64)


class CropRuntime:
    """An onnxruntime session over a crop network's ONNX file with its sidecar."""

    def __init__(
        self,
        onnx_path: Path,
        sidecar_path: Path,
        *,
        network: CropNetwork = DEVICE_NETWORK,
        threads: int = 2,
    ) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.network = network
        self.sidecar: dict[str, Any] = json.loads(sidecar_path.read_text())
        listed = self.sidecar.get("findings", self.sidecar.get("devices", []))
        if list(listed) != list(network.findings):
            raise ValueError(
                f"expected a {network.name} sidecar for {list(network.findings)}, "
                f"got {listed} in {sidecar_path}"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session: Any = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.field_mm = float(self.sidecar.get("input", {}).get("field_mm", FIELD_MM))

    def run(self, images: Sequence[Image]) -> list[DeviceOutput | None]:
        """One reading per image; ``None`` for an image too coarse to read for any of the
        network's findings (``CropNetwork.unread``)."""
        network = self.network
        unread = [network.unread(im.pixels, im.pixel_spacing_mm, self.field_mm) for im in images]
        fine = [i for i, codes in enumerate(unread) if len(codes) < len(network.findings)]
        out: list[DeviceOutput | None] = [None] * len(images)
        readings = self._run([images[i] for i in fine], [unread[i] for i in fine])
        for i, reading in zip(fine, readings, strict=True):
            out[i] = reading
        return out

    def _run(self, images: Sequence[Image], unread: Sequence[frozenset[str]]) -> list[DeviceOutput]:
        if not images:
            return []
        network = self.network
        batch = np.stack(
            [network.read(im.pixels, im.pixel_spacing_mm, self.field_mm) for im in images]
        )[:, None]
        values = self.session.run(list(network.outputs), {"crop": batch.astype(np.float32)})
        presence, cells = values[0], values[1]
        calibration = self.sidecar.get("presence_calibration", {})
        p = np.asarray(
            sigmoid(apply_calibration(presence, calibration, network.findings)), np.float32
        )
        c = np.asarray(sigmoid(cells), dtype=np.float32)
        return [
            DeviceOutput(
                probabilities={code: float(p[i, k]) for k, code in enumerate(network.findings)},
                cells=c[i],
                tips_mm={
                    r.name: r.decode(float(values[2][i, k]))
                    for k, r in enumerate(network.regressions)
                },
                unread=unread[i],
            )
            for i in range(len(images))
        ]


def merge_output(
    output: Any, devices: DeviceOutput | None, network: CropNetwork = DEVICE_NETWORK
) -> Any:
    """A :class:`~.runtime.ReferenceOutput` with a crop network's reading of its findings:
    probability, regressions (tip distance) and heatmap (the crop's cells pasted into the
    field grid). Without a reading (an image too coarse) its findings are marked
    ``unassessed``: the whole-image network's guesses for them are not to be reported or
    used as evidence."""
    if devices is None:
        return dataclasses.replace(
            output, unassessed=output.unassessed | frozenset(network.findings)
        )
    heatmaps = np.array(output.heatmaps, copy=True)
    peaks = dict(output.peaks)  # image (row, column), from the crop's own cells
    field_px = output.field_px()
    offsets = [centred_offset(f, m) for f, m in zip(field_px, output.image_shape, strict=True)]
    read = [code for code in network.findings if code not in devices.unread]
    for k, code in enumerate(network.findings):
        if code in read:
            heatmaps[FINDINGS.index(code)] = network.paste(devices.cells[k], heatmaps.shape[-1])
            row, col = network.peak(devices.cells[k], field_px)
            peaks[code] = (row + offsets[0], col + offsets[1])
    measured = {
        **output.measured,
        **{name: network.title or f"{network.name} network" for name in devices.tips_mm},
    }
    return dataclasses.replace(
        output,
        peaks=peaks,
        probabilities={
            **output.probabilities,
            **{code: devices.probabilities[code] for code in read},
        },
        regressions={**output.regressions, **devices.tips_mm},
        heatmaps=heatmaps,
        measured=measured,
        unassessed=output.unassessed | devices.unread,
    )


def merge_sidecar(
    main: Mapping[str, Any], devices: Mapping[str, Any], network: CropNetwork = DEVICE_NETWORK
) -> dict[str, Any]:
    """The main sidecar with a crop network's thresholds and validation figures for its
    findings, so reportability (``reliable_findings``) and thresholds follow the network that
    actually reads them; the model's version becomes the newest crop sidecar's."""
    merged = copy.deepcopy(dict(main))
    validation = devices.get("validation", {})
    merged.setdefault("thresholds", {}).update(devices.get("thresholds", {}))
    merged_validation = merged.setdefault("validation", {})
    merged_validation.setdefault("auroc", {}).update(validation.get("auroc", {}))
    merged_validation.setdefault("regression_mae", {}).update(validation.get("regression_mae", {}))
    auroc = [v for v in merged_validation["auroc"].values() if v is not None]
    if auroc:
        merged_validation["macro_auroc"] = round(float(np.mean(auroc)), 4)
    merged[network.name] = dict(devices)
    if "version" in devices:
        merged["version"] = devices["version"]
    return merged
