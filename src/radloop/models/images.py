"""Images in and out of model requests: 8-bit PNG data URLs and PIL images.

Pixels are radloop's float32 [0, 1] (higher is brighter); models see 8-bit grey levels, the
depth every MLLM image processor expects.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from radloop.errors import InputError
from radloop.study import Image

__all__ = ["from_data_url", "image_from_pixels", "to_data_url", "to_pil"]

_DATA_URL_HEADER = re.compile(r"data:image/[a-z0-9.+-]+;base64", re.IGNORECASE)


def image_from_pixels(
    pixels: npt.NDArray[np.floating], *, source: str = "<memory>", uid: str = ""
) -> Image:
    """A radloop ``Image`` from an H x W array in [0, 1] (no spacing or DICOM identity)."""
    array = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    if array.ndim != 2:
        raise InputError("an H x W grey-level array", f"an array of shape {array.shape}")
    array.setflags(write=False)
    return Image(
        pixels=array,
        source=Path(source),
        sop_instance_uid=uid,
        series_instance_uid="",
        pixel_spacing_mm=None,
        spacing_source=None,
        photometric="MONOCHROME2",
        view_position=None,
        bits=8,
    )


def to_pil(image: Image, *, max_side: int | None = None) -> PILImage.Image:
    """An 8-bit grey PIL image, shrunk (aspect kept) so no side exceeds ``max_side``."""
    grey = np.round(np.clip(image.pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    pil = PILImage.fromarray(grey, mode="L")
    if max_side is not None and max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
        pil = pil.resize(size, PILImage.Resampling.LANCZOS)
    return pil


def to_data_url(image: Image, *, max_side: int | None = None) -> str:
    """A ``data:image/png;base64,...`` URL of the image, as OpenAI-compatible servers take."""
    buffer = io.BytesIO()
    to_pil(image, max_side=max_side).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def from_data_url(url: str, *, max_bytes: int = 32 * 1024 * 1024, max_side: int = 10_000) -> Image:
    """Decode a base64 PNG or JPEG data URL into a radloop ``Image``.

    Only data URLs are accepted: a model server that fetched ``http(s)`` image URLs would let
    any client make it reach the network.
    """
    comma = url.find(",")
    if comma < 0 or _DATA_URL_HEADER.fullmatch(url[:comma]) is None:
        shown = url[:40] + ("..." if len(url) > 40 else "")
        raise InputError("a base64 image data URL (data:image/png;base64,...)", repr(shown))
    payload = url[comma + 1 :]
    if len(payload) * 3 // 4 > max_bytes:
        raise InputError(f"an image of at most {max_bytes} bytes", f"about {len(payload) * 3 // 4}")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("valid base64 after 'base64,'", "characters outside base64") from None
    try:
        with PILImage.open(io.BytesIO(raw)) as pil:
            if max(pil.size) > max_side:
                raise InputError(f"an image of at most {max_side} pixels a side", str(pil.size))
            grey = np.asarray(pil.convert("L"), dtype=np.float32) / 255.0
    except (OSError, PILImage.DecompressionBombError) as error:
        raise InputError("a PNG or JPEG image", f"undecodable data ({error})") from None
    return image_from_pixels(grey, source="<data-url>")
