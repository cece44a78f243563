"""The lung-fields network: the film's own lung fields, heart and opacity, from any frontal film.

Zones, sides and the cardiothoracic ratio come from where *this* film's lungs are, not from
fixed image geometry. A small U-Net (:mod:`radloop.lab.training.lungfields`) reads the whole
image resized to a square (no pixel spacing needed: real films are cut and scaled every way)
after per-image histogram equalisation, and gives four maps:

- ``right`` / ``left``: each lung's field as annotators outline it (the lung's projection,
  behind the heart included, less where it lies behind the organs below the diaphragm);
- ``heart``: the heart's projection;
- ``opacity``: where consolidation, edema or pleural fluid lies over a lung field.

It is trained on the synthetic lab only (exact masks projected from the CT's label map) with
strong domain randomisation; its real-film figures are in docs/benchmarks.md
(``radloop bench sim2real``). Zones follow docs/architecture.md and the Brixia score: each
lung's field split into thirds of its craniocaudal extent (A–C right upper to lower, D–F
left). This module needs only numpy and onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from radloop.vocabulary import Side, Zone

__all__ = [
    "LUNG_FIELDS_ONNX",
    "LungFields",
    "LungFieldsRuntime",
    "equalise",
    "load_lung_fields",
    "widest_row",
    "zone_map",
]

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]

LUNG_FIELDS_ONNX = "lungfields.onnx"
ZONE_ORDER: tuple[Zone, ...] = (
    Zone.RIGHT_UPPER,
    Zone.RIGHT_MIDDLE,
    Zone.RIGHT_LOWER,
    Zone.LEFT_UPPER,
    Zone.LEFT_MIDDLE,
    Zone.LEFT_LOWER,
)
"""Zone ``k`` of :func:`zone_map` is ``ZONE_ORDER[k - 1]`` (Brixia A–F)."""


def equalise(pixels: npt.NDArray[Any]) -> F32:
    """Histogram equalisation to [0, 1]: each pixel's mid-rank among the image's pixels.

    Any monotone tone curve, LUT, gamma or window of any site maps to the same image, so the
    network never sees a site's grey levels. Equal values share one rank (flat borders stay
    flat).
    """
    x = np.asarray(pixels, dtype=np.float32)
    values, inverse, counts = np.unique(x.ravel(), return_inverse=True, return_counts=True)
    if values.size < 2:
        return np.full(x.shape, 0.5, dtype=np.float32)
    below = np.cumsum(counts) - counts  # pixels strictly darker than each value
    mid = below + (counts - 1) / 2.0
    scaled = mid / max(float(mid[-1]), 1.0)
    scaled = (scaled - scaled[0]) / max(float(scaled[-1] - scaled[0]), 1e-12)
    out: F32 = scaled[inverse].reshape(x.shape).astype(np.float32)
    return out


def _lung_thirds(lung: Bool) -> tuple[int, int] | None:
    """The rows that split a lung's craniocaudal extent into thirds (apex to lowest row)."""
    rows = np.flatnonzero(lung.any(axis=1))
    if rows.size == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    third = (bottom - top) / 3.0
    return round(top + third), round(top + 2 * third)


def zone_map(right: Bool, left: Bool) -> I8:
    """0 outside the lung fields, ``k`` in zone ``ZONE_ORDER[k - 1]`` (thirds of each lung)."""
    out = np.zeros(right.shape, dtype=np.int8)
    for base, lung in ((0, right), (3, left)):
        cuts = _lung_thirds(lung)
        if cuts is None:
            continue
        band = np.full(lung.shape[0], 3, dtype=np.int8)
        band[: cuts[1]] = 2
        band[: cuts[0]] = 1
        out[lung] = (base + band[:, None] * np.ones_like(lung, dtype=np.int8))[lung]
    return out


def widest_row(mask: Bool) -> tuple[int, int, int]:
    """The widest row of a mask: (width in pixels, row, first column); (0, -1, -1) if empty.

    The cardiothoracic ratio's widths: the lab's truth (``radloop.lab.synth.truth``) and the
    lung-fields reading measure the heart and the thorax with this one rule."""
    if not mask.any():
        return 0, -1, -1
    rows = np.flatnonzero(mask.any(axis=1))
    first = np.argmax(mask[rows], axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[rows, ::-1], axis=1)
    widths = last - first + 1
    i = int(np.argmax(widths))
    return int(widths[i]), int(rows[i]), int(first[i])


@dataclass(frozen=True, eq=False)
class LungFields:
    """One film's reading, every map at the film's own size.

    ``right`` and ``left`` are the patient's right and left lung (the right lung is on the
    image's left, as on every frontal film); ``opacity`` is a probability per pixel.
    """

    right: Bool
    left: Bool
    heart: Bool
    opacity: F32
    embedding: F32 = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    domain_distance: float | None = None
    domain_threshold: float | None = None

    @property
    def in_domain(self) -> bool:
        """Whether the film lies where the network was fitted (lab and unlabelled real
        films): the Mahalanobis distance of its embedding at most the reference's threshold."""
        if self.domain_distance is None or self.domain_threshold is None:
            return False
        return self.domain_distance <= self.domain_threshold

    @property
    def lungs(self) -> Bool:
        return self.right | self.left

    def zones(self) -> I8:
        return zone_map(self.right, self.left)

    def zone_scores(self) -> dict[Zone, float]:
        """Mean opacity probability over each zone's field (NaN where a zone is empty)."""
        zones = self.zones()
        out: dict[Zone, float] = {}
        for k, zone in enumerate(ZONE_ORDER, start=1):
            inside = zones == k
            out[zone] = float(self.opacity[inside].mean()) if inside.any() else float("nan")
        return out

    def side_scores(self) -> dict[Side, float]:
        """Mean opacity probability over each lung's field (NaN where a lung is missing)."""
        return {
            Side.RIGHT: float(self.opacity[self.right].mean()) if self.right.any() else np.nan,
            Side.LEFT: float(self.opacity[self.left].mean()) if self.left.any() else np.nan,
        }

    def ctr(self) -> float | None:
        """Cardiothoracic ratio: the heart's widest row over the lung fields' widest row."""
        thorax, heart = widest_row(self.lungs)[0], widest_row(self.heart)[0]
        if thorax == 0 or heart == 0 or not self.right.any() or not self.left.any():
            return None
        return heart / thorax


def _resize(array: F32, shape: tuple[int, int]) -> F32:
    """Bilinear resize of a float map to ``shape`` (rows, cols)."""
    image = PILImage.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(image.resize((shape[1], shape[0]), PILImage.Resampling.BILINEAR))


def _one_field(mask: Bool) -> Bool:
    """A lung field or the heart as one simply connected region: the largest component with
    its holes filled (dense opacity inside a lung is still lung)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = np.asarray(labels == (1 + int(np.argmax(sizes))))
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)


def fields_of(maps: F32) -> tuple[Bool, Bool, Bool]:
    """Right lung, left lung and heart from their probability maps (channels 0–2): each one
    region with its holes filled, and the left lung without what the right lung took."""
    right = _one_field(maps[0] >= 0.5)
    return right, _one_field(maps[1] >= 0.5) & ~right, _one_field(maps[2] >= 0.5)


def thorax_background(fields: LungFields) -> Bool:
    """The thorax outside the lung fields: the lungs' bounding box less the lungs."""
    lungs = fields.lungs
    rows, cols = np.flatnonzero(lungs.any(axis=1)), np.flatnonzero(lungs.any(axis=0))
    box = np.zeros_like(lungs)
    if rows.size and cols.size:
        box[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
    return box & ~lungs


def match_grey_levels(image: F32, where: Bool, reference: F32, reference_where: Bool) -> F32:
    """``image`` mapped monotonically so that its pixels in ``where`` have the distribution
    of ``reference``'s in ``reference_where`` (quantile matching, percentiles 0–100)."""
    q = np.linspace(0.0, 1.0, 101)
    source = np.quantile(image[where], q)
    source = np.maximum.accumulate(source + np.arange(q.size) * 1e-7)  # strictly rising
    target = np.quantile(reference[reference_where], q)
    out: F32 = np.interp(image, source, target).astype(np.float32)
    return out


def rank_in(reference: F32, image: F32) -> F32:
    """Each pixel of ``image`` as its mid-rank among ``reference``'s pixels, in [0, 1]: the
    histogram equalisation of ``reference`` applied to another image."""
    ordered = np.sort(reference.ravel())
    below = np.searchsorted(ordered, image, side="left")
    upto = np.searchsorted(ordered, image, side="right")
    out: F32 = ((below + upto) / (2.0 * max(ordered.size, 1))).astype(np.float32)
    return out


class LungFieldsRuntime:
    """An onnxruntime session over ``lungfields.onnx`` and its sidecar ``lungfields.json``."""

    def __init__(self, onnx_path: Path, sidecar_path: Path, *, threads: int = 2) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.sidecar: dict[str, Any] = json.loads(sidecar_path.read_text())
        self.size = int(self.sidecar["input"]["size"])
        self.channels: list[str] = list(self.sidecar["outputs"])
        expected = ["right", "left", "heart", "opacity"]
        if self.channels != expected:
            raise ValueError(f"expected lung-fields outputs {expected}, got {self.channels}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session: Any = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.version = str(self.sidecar.get("version", "unknown"))
        self.ood: Any = None
        if "ood" in self.sidecar:
            from radloop.models.ood import MahalanobisScorer

            self.ood = MahalanobisScorer.from_dict(self.sidecar["ood"])

    def input_of(self, pixels: npt.NDArray[Any]) -> F32:
        """The network's input: the whole film resized to a square, histogram-equalised."""
        small = _resize(np.asarray(pixels, dtype=np.float32), (self.size, self.size))
        return equalise(small)[None, None]

    def read(self, pixels: npt.NDArray[Any]) -> LungFields:
        """Read one frontal film given as a 2-D array (display pixels, bright = dense)."""
        if pixels.ndim != 2 or min(pixels.shape) < 16:
            raise ValueError(f"expected a 2-D film at least 16 px a side, got {pixels.shape}")
        return self._read(pixels, self.input_of(pixels))

    def read_pair(
        self, prior: npt.NDArray[Any], current: npt.NDArray[Any]
    ) -> tuple[LungFields, LungFields]:
        """A prior and a current film read on one grey scale, so that a change of opacity is
        not equalised away.

        Each film is read alone first (its lung fields). Then the current film's grey levels
        are mapped so that the thorax outside its lung fields (mediastinum, heart, ribs,
        diaphragm: what opacity of the lungs does not change) has the prior's distribution
        there, which takes out exposure and processing, and the mapped film is equalised by
        the *prior's* histogram instead of its own. The current film's opacity is read from
        that input, on its own lung fields. Whiter lungs against an unchanged mediastinum
        then read as more opacity, where equalising each film alone would hide a bilateral
        change.
        """
        before, alone = self.read(prior), self.read(current)
        return before, self.on_scale_of(prior, before, current, alone)

    def on_scale_of(
        self,
        prior: npt.NDArray[Any],
        before: LungFields,
        current: npt.NDArray[Any],
        alone: LungFields,
    ) -> LungFields:
        """``alone`` (the current film read by itself) with its opacity read again on the
        prior's grey scale (:meth:`read_pair`); ``before`` is the prior's reading."""
        ref, own = thorax_background(before), thorax_background(alone)
        if not ref.any() or not own.any():
            return alone
        mapped = match_grey_levels(np.asarray(current, np.float32), own,
                                   np.asarray(prior, np.float32), ref)  # fmt: skip
        scale = _resize(np.asarray(prior, dtype=np.float32), (self.size, self.size))
        x = rank_in(scale, _resize(mapped, (self.size, self.size)))[None, None]
        return replace(alone, opacity=self._opacity(current, x))

    def _opacity(self, pixels: npt.NDArray[Any], x: F32) -> F32:
        """The opacity map of input ``x`` at the film's size."""
        maps = self.session.run(None, {"image": x})[0]
        probs = 1.0 / (1.0 + np.exp(-maps[0][3].astype(np.float32)))
        return _resize(probs, (int(pixels.shape[0]), int(pixels.shape[1]))).astype(np.float32)

    def _read(self, pixels: npt.NDArray[Any], x: F32) -> LungFields:
        maps, embedding = self.session.run(None, {"image": x})
        probs = 1.0 / (1.0 + np.exp(-maps[0].astype(np.float32)))
        vector = np.asarray(embedding[0], dtype=np.float32)
        distance = None if self.ood is None else self.ood.score(vector)
        shape = (int(pixels.shape[0]), int(pixels.shape[1]))
        full = [_resize(p, shape) for p in probs]
        right, left, heart = fields_of(np.stack(full[:3]))
        return LungFields(
            right=right,
            left=left,
            heart=heart,
            opacity=full[3].astype(np.float32),
            embedding=vector,
            domain_distance=distance,
            domain_threshold=None if self.ood is None else self.ood.threshold,
        )


@cache
def load_lung_fields(model_dir: str | None = None) -> LungFieldsRuntime | None:
    """The shipped lung-fields network (or the one in ``model_dir``); ``None`` if absent."""
    from radloop.models.builtin import shipped_model_dir

    base = Path(model_dir) if model_dir else shipped_model_dir()
    onnx_path, sidecar = base / LUNG_FIELDS_ONNX, base / "lungfields.json"
    if not onnx_path.is_file() or not sidecar.is_file():
        return None
    return LungFieldsRuntime(onnx_path, sidecar)
