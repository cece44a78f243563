"""Pictures for the viewer: display PNGs of study images, heatmap overlays, pixel statistics.

The originals stay untouched on disk; the viewer gets 8-bit greyscale PNGs of the display-ready
pixels (``radloop.study.Image.pixels``, already through the Modality/VOI LUTs), and window,
level and invert are applied in the browser on those.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["heatmap_png", "image_png", "image_stats"]


def _png(array: npt.NDArray[np.uint8], compress_level: int = 6) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    # H x W → L, H x W x 4 → RGBA
    PILImage.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def image_png(pixels: npt.NDArray[np.floating[Any]], max_side: int) -> bytes:
    """An 8-bit greyscale PNG of [0, 1] pixels, shrunk so that no side exceeds ``max_side``."""
    from PIL import Image as PILImage

    grey = np.round(np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    picture = PILImage.fromarray(grey)
    if max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# A perceptually ordered warm ramp (transparent → red → yellow), enough for an overlay.
_STOPS = np.array(
    [[0.0, 0, 0, 0, 0], [0.35, 180, 0, 0, 90], [0.7, 255, 120, 0, 160], [1.0, 255, 255, 60, 200]],
    dtype=np.float32,
)


HEATMAP_MAX_SIDE = 512
"""Heatmaps are smooth: kept at most this many pixels a side, the viewer scales them to the
image (a full-resolution overlay costs the worker ten times the encoding for nothing seen)."""


def heatmap_png(heatmap: npt.NDArray[np.floating[Any]]) -> bytes:
    """An RGBA PNG of a non-negative heatmap normalised to its maximum (transparent at 0),
    at most :data:`HEATMAP_MAX_SIDE` pixels a side."""
    values = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, None)
    if values.ndim == 2 and max(values.shape) > HEATMAP_MAX_SIDE:
        # Block means over whole blocks (the last partial row/column of blocks is dropped).
        f = -(-max(values.shape) // HEATMAP_MAX_SIDE)
        h, w = values.shape[0] // f * f, values.shape[1] // f * f
        values = values[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    peak = float(values.max()) if values.size else 0.0
    scaled = values / peak if peak > 0 else values
    channels = [np.interp(scaled, _STOPS[:, 0], _STOPS[:, k]) for k in range(1, 5)]
    rgba = np.round(np.stack(channels, axis=-1)).astype(np.uint8)
    return _png(rgba, compress_level=1)  # a smooth overlay: fast deflate loses little


def image_stats(pixels: npt.NDArray[np.floating[Any]]) -> dict[str, float]:
    """Mean, standard deviation and 5th/95th percentiles of [0, 1] pixels (drift monitoring)."""
    values = np.asarray(pixels, dtype=np.float64).ravel()
    p05, p95 = np.percentile(values, [5, 95])
    return {
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()), 6),
        "p05": round(float(p05), 6),
        "p95": round(float(p95), 6),
    }
