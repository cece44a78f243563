"""The acquisition classifier: frontal radiograph, lateral radiograph, CT/MR slice or other.

Three small convolutional networks on a 64 × 64 area-averaged, standardised copy of the
image, their probabilities averaged inside one ONNX graph, run with onnxruntime (no torch
needed); the image and its mirror image are averaged too. Trained only on images made from one
CT (:mod:`radloop.lab.training.scope.synth`, ``radloop train-scope``); the shipped weights and their
recipe are in ``radloop/data/scope/``, the card in docs/safety.md. It looks only at pixels, so
the scope guard lets it decide when DICOM tags do not say what an image is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from radloop.errors import InputError

__all__ = [
    "SHIPPED_DIR",
    "AcquisitionClassifier",
    "AcquisitionModel",
    "AcquisitionPrediction",
    "load_acquisition_classifier",
    "thumbnail",
]

F32 = npt.NDArray[np.float32]
SHIPPED_DIR = "data/scope"
ONNX_NAME = "acquisition.onnx"
SIDECAR_NAME = "acquisition.json"


def thumbnail(pixels: npt.NDArray[Any], size: int) -> F32:
    """``size``² area average of an H × W image, standardised (zero mean, unit variance).

    Standardising removes the site's brightness and contrast; the network sees shape.
    """
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < 2:
        raise InputError("a 2-D greyscale image", f"an array of shape {a.shape}")
    small = np.asarray(
        PILImage.fromarray(np.ascontiguousarray(a), mode="F").resize(
            (size, size), PILImage.Resampling.BOX
        ),
        dtype=np.float32,
    )
    out: F32 = ((small - small.mean()) / max(float(small.std()), 1e-3)).astype(np.float32)
    return out


@dataclass(frozen=True)
class AcquisitionPrediction:
    """Class probabilities of one image (keys from the sidecar's ``classes``)."""

    probabilities: Mapping[str, float]

    @property
    def label(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.label])


@runtime_checkable
class AcquisitionModel(Protocol):
    """What the scope guard needs of an acquisition classifier (the shipped one or another)."""

    def predict_one(self, pixels: npt.NDArray[Any]) -> AcquisitionPrediction:
        """Class probabilities of an image (or of its 128² area-averaged copy)."""
        ...


class AcquisitionClassifier:
    """An onnxruntime session over ``acquisition.onnx`` and its ``acquisition.json`` card."""

    def __init__(self, onnx_path: Path, sidecar_path: Path, *, threads: int = 1) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.sidecar: dict[str, Any] = json.loads(sidecar_path.read_text(encoding="utf-8"))
        self.classes: tuple[str, ...] = tuple(self.sidecar["classes"])
        self.size = int(self.sidecar["input_size"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def predict(self, images: Sequence[npt.NDArray[Any]]) -> list[AcquisitionPrediction]:
        """Probabilities for each image (pixels H × W in [0, 1], higher = brighter)."""
        if not images:
            return []
        small = np.stack([thumbnail(im, self.size) for im in images])[:, None]
        # Each image and its mirror image: a view does not change when flipped left-right.
        batch = np.concatenate([small, small[..., ::-1]])
        (logits,) = self._session.run(["logits"], {"image": np.ascontiguousarray(batch)})
        z = logits - logits.max(axis=1, keepdims=True)
        both = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        p = 0.5 * (both[: len(images)] + both[len(images) :])
        return [
            AcquisitionPrediction({c: float(row[k]) for k, c in enumerate(self.classes)})
            for row in p
        ]

    def predict_one(self, pixels: npt.NDArray[Any]) -> AcquisitionPrediction:
        return self.predict([pixels])[0]


@lru_cache(maxsize=4)
def _load(directory: str | None) -> AcquisitionClassifier:
    if directory is None:
        base = Path(str(resources.files("radloop"))) / SHIPPED_DIR
    else:
        base = Path(directory)
    onnx_path, sidecar_path = base / ONNX_NAME, base / SIDECAR_NAME
    for path in (onnx_path, sidecar_path):
        if not path.is_file():
            raise InputError(
                f"{ONNX_NAME} and {SIDECAR_NAME} in {base}",
                f"no {path.name}",
                fix="Train one with `radloop train-scope --out DIR`.",
            )
    return AcquisitionClassifier(onnx_path, sidecar_path)


def load_acquisition_classifier(directory: Path | None = None) -> AcquisitionClassifier:
    """The shipped classifier, or one written by ``radloop train-scope`` to ``directory``.

    Loaded once per process and directory.
    """
    return _load(None if directory is None else str(directory.resolve()))
