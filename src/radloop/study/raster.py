"""Read PNG and JPEG radiographs.

These carry no DICOM header, so there is no spacing, view or patient data; grey levels are
taken as stored (higher = brighter) and scaled by the sample depth (8 bit by 255, 12 bit by
4095, 16 bit by 65535). Colour is reduced to ITU-R BT.601 luma, as for DICOM colour images.
Pillow reads PNG and 8-bit JPEG; JPEG that Pillow cannot read (12- and 16-bit, lossless
process 14, JPEG-LS) goes to libjpeg, the decoder pydicom uses for the same data.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from radloop.errors import (
    CorruptFileError,
    ImageTooLargeError,
    InputError,
    UnsupportedFileTypeError,
)
from radloop.study.budget import DecodeBudget
from radloop.study.types import Image, IngestLimits

__all__ = ["RASTER_FORMATS", "jpeg_frame_header", "raster_format", "read_raster"]

RASTER_FORMATS = ("PNG", "JPEG")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # PNG spec 5.2
_JPEG_SOI = b"\xff\xd8\xff"  # ITU-T T.81 B.1.1.3: SOI marker, then the next marker
# Start of Frame markers (ITU-T T.81 B.1.1.3, T.87 for JPEG-LS's SOF55); Pillow decodes the
# 8-bit baseline, extended and progressive ones.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_PILLOW_SOF = frozenset({0xC0, 0xC1, 0xC2})
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_GREY_MODES = ("1", "L", "LA", *_SIXTEEN_BIT_MODES)


def raster_format(data: bytes) -> str | None:
    """``"PNG"`` or ``"JPEG"`` from the file signature, else None."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(_JPEG_SOI):
        return "JPEG"
    return None


def jpeg_frame_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(SOF marker, precision, rows, columns) from a JPEG's frame header, or None."""
    i = 2  # after SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                return None
            rows = int.from_bytes(data[i + 5 : i + 7], "big")
            columns = int.from_bytes(data[i + 7 : i + 9], "big")
            return marker, data[i + 4], rows, columns
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _read_with_libjpeg(
    data: bytes, source: Path, precision: int
) -> tuple[npt.NDArray[np.float32], str]:
    from libjpeg.utils import decode  # imported late: only needed for non-8-bit JPEG

    # libjpeg fills a truncated scan with grey instead of failing, so look for the EOI marker
    # (T.81 B.1.1.3) that ends every complete codestream, past any 00 or FF padding.
    if not data.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
        raise CorruptFileError(
            f"a complete {precision}-bit JPEG codestream ending in EOI (FFD9)",
            f"{len(data)} bytes ending {data[-2:].hex(' ')}; the file may be truncated",
            source=source,
        )
    try:
        values: npt.NDArray[Any] = decode(data)
    except (RuntimeError, ValueError) as exc:
        raise CorruptFileError(
            f"a complete {precision}-bit JPEG codestream",
            f"data libjpeg rejects ({exc})",
            source=source,
        ) from exc
    photometric = "MONOCHROME2"
    grey = values.astype(np.float64)
    if grey.ndim == 3:
        grey = grey[..., :3] @ np.array([0.299, 0.587, 0.114])
        photometric = "RGB"
    full_scale = float(2**precision - 1)
    return (grey / full_scale).clip(0.0, 1.0).astype(np.float32), photometric


def _too_large(width: int, height: int, source: Path, limits: IngestLimits) -> None:
    if max(width, height) > limits.max_side_px:
        raise ImageTooLargeError(
            f"an image of at most {limits.max_side_px} px a side",
            f"{height} rows x {width} columns",
            source=source,
            fix="Raise IngestLimits.max_side_px if images this large are expected.",
        )


def _jpeg_components(data: bytes) -> int:
    """Nf, the number of image components, from the frame header (ITU-T T.81 B.2.2)."""
    i = 2
    while i + 10 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        if marker in _SOF_MARKERS:
            return max(data[i + 9], 1)
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return 1


def _pillow_sample_bytes(mode: str) -> int:
    """Bytes per band of a Pillow mode once loaded."""
    if mode in ("I;16", "I;16B", "I;16L"):
        return 2
    if mode in ("I", "F"):
        return 4
    return 1


def _to_grey(picture: PILImage.Image, source: Path) -> tuple[npt.NDArray[np.float32], int]:
    """(pixels in [0, 1], bits per sample)."""
    mode = picture.mode
    if mode in _SIXTEEN_BIT_MODES:
        values: npt.NDArray[Any] = np.asarray(picture)
        # Pillow opens 16-bit greyscale PNG as "I;16" (or "I" in older versions).
        return (values.astype(np.float64) / 65535.0).clip(0.0, 1.0).astype(np.float32), 16
    if mode == "F":
        raise UnsupportedFileTypeError(
            "8- or 16-bit integer samples",
            "32-bit floating-point samples",
            source=source,
        )
    grey = picture.convert("L")
    return (np.asarray(grey, dtype=np.float32) / np.float32(255.0)), 8


def read_raster(
    data: bytes,
    source: Path,
    limits: IngestLimits,
    *,
    sop_instance_uid: str,
    series_instance_uid: str,
    study_instance_uid: str = "",
    budget: DecodeBudget | None = None,
) -> Image:
    """Decode one PNG or JPEG; the size comes from the header before any pixel is decoded.

    ``budget`` counts decoded bytes across the images of one load call, per
    ``study_instance_uid`` (a fresh one if None).
    """
    charge = (budget or DecodeBudget(limits)).charge
    header = jpeg_frame_header(data) if raster_format(data) == "JPEG" else None
    if header is not None and (header[0] not in _PILLOW_SOF or header[1] != 8):
        _, bits, rows, columns = header
        _too_large(columns, rows, source, limits)
        components = _jpeg_components(data)
        sample_bytes = (bits + 7) // 8
        charge(
            rows * columns * components * sample_bytes,
            study=study_instance_uid,
            shape=f"{rows} rows x {columns} columns x {components} component(s) x {bits} bits",
            source=source,
        )
        pixels, photometric = _read_with_libjpeg(data, source, bits)
        return _image(pixels, source, photometric, bits, sop_instance_uid, series_instance_uid)
    try:
        # Image.open reads only the header; pixels are decoded by load() below. Pillow's own
        # bomb guard (Image.MAX_IMAGE_PIXELS) is process-global, so it is left alone and our
        # per-call limit is checked first.
        with PILImage.open(io.BytesIO(data), formats=RASTER_FORMATS) as picture:
            width, height = picture.size
            _too_large(width, height, source, limits)
            bands = len(picture.getbands())
            sample_bytes = _pillow_sample_bytes(picture.mode)
            charge(
                width * height * bands * sample_bytes,
                study=study_instance_uid,
                shape=f"{height} rows x {width} columns x {bands} band(s) x "
                f"{8 * sample_bytes} bits",
                source=source,
            )
            picture.load()
            oriented = ImageOps.exif_transpose(picture)
            photometric = "MONOCHROME2" if picture.mode in _GREY_MODES else "RGB"
            pixels, bits = _to_grey(oriented, source)
    except InputError:
        raise  # our own checks above; InputError is also a ValueError
    except PILImage.DecompressionBombError as exc:
        raise ImageTooLargeError(
            "an image under Pillow's decompression-bomb limit",
            str(exc),
            source=source,
        ) from exc
    except UnidentifiedImageError as exc:
        raise CorruptFileError(
            "a PNG or JPEG image that Pillow can read",
            "a file with a PNG or JPEG signature but an unreadable header",
            source=source,
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's "truncated" and codec errors
        raise CorruptFileError(
            "a complete PNG or JPEG image",
            f"data Pillow cannot decode ({exc})",
            source=source,
        ) from exc
    return _image(pixels, source, photometric, bits, sop_instance_uid, series_instance_uid)


def _image(
    pixels: npt.NDArray[np.float32],
    source: Path,
    photometric: str,
    bits: int,
    sop_instance_uid: str,
    series_instance_uid: str,
) -> Image:
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    pixels.flags.writeable = False
    return Image(
        pixels=pixels,
        source=source,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        pixel_spacing_mm=None,
        spacing_source=None,
        photometric=photometric,
        view_position=None,
        bits=bits,
    )
