"""Run the exported reference network with onnxruntime (no torch needed).

``ReferenceRuntime(onnx_path, sidecar_path).run(images)`` preprocesses radloop ``Image``
objects to the model's fixed input (``preprocess.preprocess`` at the sidecar's ``input.size``
and ``input.field_mm``, so a model trained at another resolution keeps working), runs one
batch and returns one :class:`ReferenceOutput` per image: probabilities, zone probabilities,
heatmaps (upsampled to image coordinates on demand), decoded regressions, view probabilities
and the embedding. Where the network calls a nodule on an image of known pixel spacing, the
nodule's diameter is measured on the full-resolution image by :mod:`.caliper` about the
heatmap's peak and replaces the regression head's guess (``measured`` names what was measured).
Where the model folder also holds crop networks — the device network (``devices.onnx``,
:mod:`.devices`: endotracheal tube and central line) and the lung network (``lungs.onnx``,
:mod:`.lungs`: nodule and rib fracture) — their readings (probability, tip distance, heatmap)
replace the main network's for their findings, and their validation figures and thresholds
replace theirs in the sidecar; a finding an image is too coarse for is ``unassessed``. A rib
fracture's zones come from the lung network's heatmap peak, a nodule's from the caliper.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.models.reference.caliper import Caliper
from radloop.models.reference.devices import (
    DEVICE_NETWORK,
    CropNetwork,
    CropRuntime,
    merge_output,
    merge_sidecar,
)
from radloop.models.reference.lungs import LUNG_NETWORK, ZONE_DIAMETER_MM
from radloop.models.reference.nodules import nodule_zones
from radloop.models.reference.preprocess import centred, centred_offset, preprocess
from radloop.models.reference.spec import (
    FIELD_MM,
    FINDINGS,
    INPUT_SIZE,
    REGRESSIONS,
    VIEWS,
    ZONES,
)
from radloop.stats import sigmoid
from radloop.study import Image
from radloop.vocabulary import Zone

__all__ = [
    "CROP_NETWORKS",
    "MIN_RELIABLE_AUROC",
    "ReferenceOutput",
    "ReferenceRuntime",
    "assessed_findings",
    "reliable_findings",
]

F32 = npt.NDArray[np.float32]


MIN_RELIABLE_AUROC = 0.9
"""A finding type is reported only when the model's validation AUROC for it reaches this:
below it, a threshold picked for F1 claims the finding on most studies (hallucination)."""


def reliable_findings(sidecar: Mapping[str, Any]) -> frozenset[str]:
    """Finding types the model may report: validation AUROC ≥ ``MIN_RELIABLE_AUROC``.

    A sidecar without validation figures (a model trained elsewhere) reports every type.
    """
    auroc: Mapping[str, float] | None = sidecar.get("validation", {}).get("auroc")
    if not auroc:
        return frozenset(FINDINGS)
    return frozenset(code for code in FINDINGS if auroc.get(code, 0.0) >= MIN_RELIABLE_AUROC)


def assessed_findings(output: ReferenceOutput, sidecar: Mapping[str, Any]) -> frozenset[str]:
    """The finding types one reading may speak about: reportable for the model
    (:func:`reliable_findings`) and read on this image (not in ``output.unassessed``)."""
    return reliable_findings(sidecar) - output.unassessed


@dataclass(frozen=True)
class ReferenceOutput:
    """The reference network's reading of one image."""

    probabilities: dict[str, float]
    zone_probabilities: dict[str, dict[Zone, float]]
    heatmaps: F32  # (findings, h, w) probabilities on the network's field
    regressions: dict[str, float]  # decoded: ctr, tip distances (mm), sizes (mm, ml, HU)
    view_probabilities: dict[str, float]
    embedding: F32
    image_shape: tuple[int, int]
    pixel_spacing_mm: tuple[float, float] | None
    field_mm: float = FIELD_MM
    measured: dict[str, str] = field(default_factory=dict)  # regression name -> how
    unassessed: frozenset[str] = frozenset()  # finding types this image could not be read for
    peaks: dict[str, tuple[float, float]] = field(default_factory=dict)  # finer than heatmaps

    @property
    def view(self) -> str:
        return max(self.view_probabilities, key=lambda v: self.view_probabilities[v])

    @property
    def frontal(self) -> bool:
        return self.view != "LL"

    def field_px(self) -> tuple[int, int]:
        """The detector field's size in this image's pixels (rows, columns)."""
        rows, cols = self.image_shape
        spacing = self.pixel_spacing_mm
        if spacing is None:
            return rows, cols
        return round(self.field_mm / spacing[0]), round(self.field_mm / spacing[1])

    def peak(self, code: str) -> tuple[float, float]:
        """Image (row, column) where ``code`` peaks: a crop network's own (finer) peak where
        one read it (``peaks``), else the centre of the heatmap cell where it peaks."""
        if code in self.peaks:
            return self.peaks[code]
        small = self.heatmaps[FINDINGS.index(code)]
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(small)), small.shape))
        # Cell centre in the field's pixels, then undo preprocess.field_crop's crop or pad.
        grids = zip((i, j), small.shape, self.field_px(), self.image_shape, strict=True)
        at = [(k + 0.5) * f / n + centred_offset(f, m) for k, n, f, m in grids]
        return at[0], at[1]

    def heatmap(self, code: str, shape: tuple[int, int] | None = None) -> F32:
        """The heatmap of finding ``code`` upsampled to image coordinates (or ``shape``)."""
        from PIL import Image as PILImage

        small = self.heatmaps[FINDINGS.index(code)]
        rows, cols = shape or self.image_shape
        field = (rows, cols) if shape is not None else self.field_px()
        big = PILImage.fromarray(small.astype(np.float32), mode="F").resize(
            (field[1], field[0]), PILImage.Resampling.BILINEAR
        )
        # Undo the centred crop or pad of preprocess.field_crop.
        full = np.asarray(big, dtype=np.float32)
        return np.asarray(centred(full, (rows, cols)), dtype=np.float32)


CROP_NETWORKS: tuple[CropNetwork, ...] = (DEVICE_NETWORK, LUNG_NETWORK)
"""Crop networks a model folder may hold beside the main one, merged in this order."""


def _crop_runtime(directory: Path, network: CropNetwork, threads: int) -> CropRuntime | None:
    """A crop network beside the main one (``{name}.onnx`` + ``{name}.json``), if any."""
    onnx_path, sidecar_path = directory / network.onnx, directory / network.sidecar
    present = [p.is_file() for p in (onnx_path, sidecar_path)]
    if not any(present):
        return None
    if not all(present):
        have, lack = (onnx_path, sidecar_path) if present[0] else (sidecar_path, onnx_path)
        raise ValueError(
            f"expected the {network.name} network's {lack.name} beside {have.name} in "
            f"{directory}, found only the latter: copy both files of `radloop "
            "train-reference` or neither"
        )
    return CropRuntime(onnx_path, sidecar_path, network=network, threads=threads)


class ReferenceRuntime:
    """An onnxruntime session over ``reference.onnx`` with its ``reference.json`` sidecar."""

    def __init__(self, onnx_path: Path, sidecar_path: Path, *, threads: int = 2) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session: Any = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.sidecar: dict[str, Any] = json.loads(sidecar_path.read_text())
        if list(self.sidecar["findings"]) != list(FINDINGS):
            raise ValueError(
                f"expected a sidecar for findings {list(FINDINGS)}, "
                f"got {self.sidecar['findings']} in {sidecar_path}"
            )
        self.crops = [
            crop
            for network in CROP_NETWORKS
            if (crop := _crop_runtime(sidecar_path.parent, network, threads)) is not None
        ]
        for crop in self.crops:
            self.sidecar = merge_sidecar(self.sidecar, crop.sidecar, crop.network)
        # Nodules read by a crop network are placed where the caliper finds them.
        self.zones_from_caliper = any("nodule" in c.network.findings for c in self.crops)
        # Rib fractures read by a crop network are placed where its heatmap peaks.
        self.zones_from_peak = any("rib_fracture" in c.network.findings for c in self.crops)
        geometry = self.sidecar.get("input", {})
        self.input_size = int(geometry.get("size", INPUT_SIZE))
        self.field_mm = float(geometry.get("field_mm", FIELD_MM))
        # Nodules are measured only where the model may report them at all.
        self.caliper = Caliper() if "nodule" in reliable_findings(self.sidecar) else None
        self.measure_from = float(self.sidecar.get("thresholds", {}).get("nodule", 0.5))

    def raw(self, batch: F32) -> dict[str, npt.NDArray[Any]]:
        """The network's outputs by name for a preprocessed (B, 1, S, S) batch."""
        names = [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, {"image": batch})
        return dict(zip(names, values, strict=True))

    def run(self, images: Sequence[Image]) -> list[ReferenceOutput]:
        if not images:
            return []
        batch = np.stack(
            [
                preprocess(im.pixels, im.pixel_spacing_mm, self.input_size, self.field_mm)
                for im in images
            ]
        )[:, None]
        raw = self.raw(batch.astype(np.float32))
        presence, zones, heatmaps = (
            np.asarray(sigmoid(raw[name]), dtype=np.float32)
            for name in ("presence", "zones", "heatmaps")
        )
        view = np.exp(raw["view"] - raw["view"].max(axis=1, keepdims=True))
        view /= view.sum(axis=1, keepdims=True)
        outputs = []
        for i, image in enumerate(images):
            outputs.append(
                ReferenceOutput(
                    probabilities={c: float(presence[i, k]) for k, c in enumerate(FINDINGS)},
                    zone_probabilities={
                        c: {z: float(zones[i, k, j]) for j, z in enumerate(ZONES)}
                        for k, c in enumerate(FINDINGS)
                    },
                    heatmaps=heatmaps[i],
                    regressions={
                        r.name: r.decode(float(raw["regression"][i, j]))
                        for j, r in enumerate(REGRESSIONS)
                    },
                    view_probabilities={v: float(view[i, j]) for j, v in enumerate(VIEWS)},
                    embedding=np.asarray(raw["embedding"][i], dtype=np.float32),
                    image_shape=image.shape,
                    pixel_spacing_mm=image.pixel_spacing_mm,
                    field_mm=self.field_mm,
                )
            )
        for crop in self.crops:
            readings = crop.run(images)
            outputs = [
                merge_output(o, r, crop.network) for o, r in zip(outputs, readings, strict=True)
            ]
        return [
            self._measure(self._place_fracture(output, image), image)
            for output, image in zip(outputs, images, strict=True)
        ]

    def _place_fracture(self, output: ReferenceOutput, image: Image) -> ReferenceOutput:
        """The lung network's fracture: its zones about the heatmap's peak, each zone's
        probability the fracture's (the whole-image network's zone heads never saw one)."""
        spacing = image.pixel_spacing_mm
        if not self.zones_from_peak or spacing is None or "rib_fracture" in output.unassessed:
            return output
        zones = nodule_zones(output.peak("rib_fracture"), ZONE_DIAMETER_MM, image.shape, spacing)
        p = float(output.probabilities["rib_fracture"])
        placed = {z: (p if z in zones else 0.0) for z in ZONES}
        return dataclasses.replace(
            output, zone_probabilities={**output.zone_probabilities, "rib_fracture": placed}
        )

    def _measure(self, output: ReferenceOutput, image: Image) -> ReferenceOutput:
        """The nodule's diameter by caliper where a nodule is called and the spacing known."""
        spacing = image.pixel_spacing_mm
        if self.caliper is None or spacing is None or "nodule" in output.unassessed:
            return output
        if output.probabilities["nodule"] < self.measure_from:
            return output
        reading = self.caliper.measure(image.pixels, spacing, output.peak("nodule"))
        if reading is None:
            return output
        regressions = {**output.regressions, "nodule_mm": reading.diameter_mm}
        measured = {**output.measured, "nodule_mm": f"caliper (NCC {reading.ncc:.2f})"}
        zone_probabilities = output.zone_probabilities
        if self.zones_from_caliper:
            # The lung network's nodule: its zones from where the caliper found it.
            zones = nodule_zones(reading.centre_rc, reading.diameter_mm, image.shape, spacing)
            placed = {z: (1.0 if z in zones else 0.0) for z in ZONES}
            zone_probabilities = {**zone_probabilities, "nodule": placed}
        return dataclasses.replace(
            output,
            regressions=regressions,
            measured=measured,
            zone_probabilities=zone_probabilities,
        )
