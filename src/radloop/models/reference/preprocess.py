"""Turn an image of any size and pixel spacing into the reference model's fixed input.

With a known pixel spacing the input covers a fixed ``FIELD_MM`` square about the image
centre (cropped or padded), so one input pixel is always the same size in mm; without one the
whole image is resized. Intensities are standardised per image (zero mean, unit variance),
which removes most of the difference between sites' tone curves.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from radloop.models.reference.spec import FIELD_MM, INPUT_SIZE

__all__ = [
    "centred",
    "centred_offset",
    "field_crop",
    "preprocess",
    "resize_area",
    "standardise",
]

F32 = npt.NDArray[np.float32]


def centred_offset(n: int, want: int) -> int:
    """Where index 0 of an axis of length ``n`` lands when it is cropped or zero-padded about
    its centre to length ``want`` (negative when cropped)."""
    return max(0, (want - n) // 2) - max(0, (n - want) // 2)


def centred(pixels: npt.NDArray[np.generic], shape: tuple[int, int]) -> npt.NDArray[np.generic]:
    """``pixels`` cropped or zero-padded about its centre to ``shape``."""
    if pixels.shape == shape:
        return pixels
    out = np.zeros(shape, dtype=pixels.dtype)
    dr, dc = centred_offset(pixels.shape[0], shape[0]), centred_offset(pixels.shape[1], shape[1])
    h, w = min(pixels.shape[0], shape[0]), min(pixels.shape[1], shape[1])
    r0, c0 = max(0, -dr), max(0, -dc)  # where the kept part starts in pixels
    out[r0 + dr : r0 + dr + h, c0 + dc : c0 + dc + w] = pixels[r0 : r0 + h, c0 : c0 + w]
    return out


def field_crop(
    pixels: npt.NDArray[np.generic],
    spacing_mm: tuple[float, float] | None,
    field_mm: float = FIELD_MM,
) -> npt.NDArray[np.generic]:
    """The ``field_mm`` square about the image centre (zero-padded where the image is smaller)."""
    if spacing_mm is None or min(spacing_mm) <= 0:
        return pixels
    return centred(pixels, (round(field_mm / spacing_mm[0]), round(field_mm / spacing_mm[1])))


def resize_area(pixels: npt.NDArray[np.generic], size: int) -> F32:
    """Area-average (box filter) resize of a 2-D array to ``size`` × ``size``."""
    image = PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    resized = image.resize((size, size), PILImage.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32)


def standardise(pixels: F32) -> F32:
    mean = float(pixels.mean())
    std = float(pixels.std())
    return ((pixels - mean) / max(std, 1e-3)).astype(np.float32)


def preprocess(
    pixels: npt.NDArray[np.generic],
    spacing_mm: tuple[float, float] | None,
    size: int = INPUT_SIZE,
    field_mm: float = FIELD_MM,
) -> F32:
    """Float32 ``size`` square (default ``INPUT_SIZE``), standardised, from display pixels in
    [0, 1]; a model's sidecar gives its own ``input.size`` and ``input.field_mm``."""
    return standardise(resize_area(field_crop(pixels, spacing_mm, field_mm), size))
