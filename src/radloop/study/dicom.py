"""Read one DICOM image into a display-ready ``Image`` (PS3.3 C.7.6.3, C.11).

The grey-level pipeline is the standard one, in order: Modality LUT or Rescale Slope /
Intercept (C.11.1), VOI LUT or Window Center / Width (C.11.2), then the MONOCHROME1 inversion
that a Presentation LUT of INVERSE stands for (C.7.6.3.1.2, C.11.6), so higher is brighter.
Every check that needs only the header runs before a byte of pixel data is decoded.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset

# Imported from the defining modules: pydicom.pixels re-exports without __all__ (mypy).
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.uid import UID

from radloop.errors import (
    CorruptFileError,
    ImageTooLargeError,
    UnsupportedFileTypeError,
    UnsupportedTransferSyntaxError,
)
from radloop.study.budget import DecodeBudget
from radloop.study.metadata import (
    clinical_context_from_dataset,
    pixel_spacing_from_dataset,
    study_metadata_from_dataset,
    synthetic_uid,
)
from radloop.study.types import Image, ImageRecord, IngestLimits

__all__ = ["is_dicom", "parse_dicom", "read_dicom"]

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
# pydicom decodes every YBR variant to RGB (PS3.3 C.7.6.3.1.2), so these all arrive as RGB.
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
# ITU-R BT.601 luma, the weights Pillow's convert("L") uses, so DICOM and PNG colour agree.
_LUMA = np.array([0.299, 0.587, 0.114])
_DECODER_FIX = (
    "Install the decoders with: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg "
    "pylibjpeg-rle"
)


def is_dicom(data: bytes) -> bool:
    """A DICOM file: a 128-byte preamble then ``DICM`` (PS3.10 7.1)."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_dicom(data: bytes, source: Path) -> Dataset:
    """Parse DICOM bytes, mapping any pydicom failure to ``CorruptFileError``."""
    try:
        return dcmread(io.BytesIO(data))
    # pydicom raises a dozen exception types on damaged input; each means the same here.
    except Exception as exc:
        raise CorruptFileError(
            "a readable DICOM Part 10 file (PS3.10 7)",
            f"a file pydicom cannot parse ({type(exc).__name__}: {exc})",
            source=source,
        ) from exc


def _check_pixel_data_present(ds: Dataset, source: Path) -> None:
    if "PixelData" in ds:
        return
    sop_class = ds.get("SOPClassUID")
    sop_name = UID(str(sop_class)).name if sop_class else None
    if sop_name and "Image Storage" not in sop_name:
        raise UnsupportedFileTypeError(
            "a DICOM image with Pixel Data (7FE0,0010)",
            f"a {sop_name} object, which has no pixel data",
            source=source,
            fix="Load the image files of the study, not its reports or other objects.",
        )
    raise CorruptFileError(
        "a DICOM image with Pixel Data (7FE0,0010)",
        "a dataset that ends before its pixel data; the file may be truncated",
        source=source,
    )


def _check_transfer_syntax(ds: Dataset, source: Path) -> None:
    file_meta = getattr(ds, "file_meta", None)
    transfer_syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if not transfer_syntax:
        raise CorruptFileError(
            "a Transfer Syntax UID (0002,0010) in the file meta information",
            "none",
            source=source,
        )
    syntax = UID(str(transfer_syntax))
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(
            "an uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000 transfer syntax",
            f"{syntax} ({syntax.name})" if syntax.name != syntax else f"unknown UID {syntax}",
            source=source,
            fix="Convert the file to a still-image transfer syntax, e.g. with dcmtk's dcmdjpeg.",
        ) from exc
    if not decoder.is_available:
        raise UnsupportedTransferSyntaxError(
            f"a decoder installed for {syntax.name}",
            "none of its plugins importable",
            source=source,
            fix=_DECODER_FIX,
        )


def _check_header(ds: Dataset, source: Path, limits: IngestLimits) -> tuple[int, int, str]:
    rows, columns = _as_int(ds.get("Rows")), _as_int(ds.get("Columns"))
    if not rows or not columns or rows <= 0 or columns <= 0:
        raise CorruptFileError(
            "positive Rows (0028,0010) and Columns (0028,0011)",
            f"Rows={ds.get('Rows')!r}, Columns={ds.get('Columns')!r}",
            source=source,
        )
    if max(rows, columns) > limits.max_side_px:
        raise ImageTooLargeError(
            f"DICOM pixel data of at most {limits.max_side_px} px a side",
            f"{rows} rows x {columns} columns",
            source=source,
            fix="Raise IngestLimits.max_side_px if images this large are expected.",
        )
    _check_transfer_syntax(ds, source)
    frames = _as_int(ds.get("NumberOfFrames", 1)) or 1
    if frames > 1:
        raise UnsupportedFileTypeError(
            "a single-frame image, as radiographs are",
            f"{frames} frames",
            source=source,
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in _MONOCHROME + _COLOUR:
        raise UnsupportedFileTypeError(
            f"Photometric Interpretation (0028,0004) one of {', '.join(_MONOCHROME + _COLOUR)}",
            repr(photometric or None),
            source=source,
        )
    return rows, columns, photometric


def _decoded_bytes(ds: Dataset, rows: int, columns: int) -> tuple[int, str]:
    """Rows x Columns x Number of Frames x Samples per Pixel x Bits Allocated / 8 (PS3.5 8.1),
    the size of the pixel data once decoded, whatever the transfer syntax compresses it to."""
    frames = max(_as_int(ds.get("NumberOfFrames", 1)) or 1, 1)
    samples = max(_as_int(ds.get("SamplesPerPixel", 1)) or 1, 1)
    bits = max(_as_int(ds.get("BitsAllocated")) or 16, 1)
    decoded = (rows * columns * frames * samples * bits + 7) // 8
    shape = (
        f"{rows} rows x {columns} columns x {frames} frame(s) x {samples} sample(s) x {bits} bits"
    )
    return decoded, shape


def _probe_range(ds: Dataset, window_only: bool) -> tuple[float, float]:
    """The VOI output range, found by sending probe values through the same transform.

    A window clips values far outside it to the ends of its output range (PS3.3 C.11.2.1.2);
    a VOI LUT maps every input to one of its entries (C.11.2.1.1), so all entries are probed.
    """
    probe: npt.NDArray[Any]
    if window_only:
        probe = np.array([-1e12, 1e12])
    else:
        descriptor = ds.VOILUTSequence[0].LUTDescriptor
        entries, first = int(descriptor[0]) or 65536, int(descriptor[1])  # 0 means 2**16
        probe = np.arange(first, first + entries, dtype=np.int64)
    ends = np.asarray(apply_voi_lut(probe, ds, index=0, prefer_lut=True), dtype=np.float64)
    return float(ends.min()), float(ends.max())


def _grey_levels(stored: npt.NDArray[Any], ds: Dataset, source: Path) -> npt.NDArray[np.float64]:
    values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    has_lut = "VOILUTSequence" in ds
    has_window = "WindowCenter" in ds and "WindowWidth" in ds
    if not (has_lut or has_window):
        # No VOI in the file: show the full range of the data, as viewers do.
        low, high = float(values.min()), float(values.max())
    else:
        try:
            if has_lut:
                # A VOI LUT is indexed by integer values (C.11.2.1.1).
                values = np.rint(values).astype(np.int64)
            low, high = _probe_range(ds, window_only=not has_lut)
            values = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), np.float64)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise CorruptFileError(
                "a valid VOI LUT or Window Center / Width (PS3.3 C.11.2)",
                f"values pydicom rejects ({exc})",
                source=source,
            ) from exc
    if high <= low:
        return np.zeros(values.shape, dtype=np.float64)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _decode(ds: Dataset, source: Path, rows: int, columns: int) -> npt.NDArray[Any]:
    try:
        stored: npt.NDArray[Any] = ds.pixel_array
    except Exception as exc:  # each decoder plugin raises its own types
        raise CorruptFileError(
            f"decodable pixel data for {rows} x {columns} px",
            f"data the decoder rejects ({type(exc).__name__}: {exc})",
            source=source,
        ) from exc
    if stored.shape[:2] != (rows, columns):
        raise CorruptFileError(
            f"pixel data of {rows} rows x {columns} columns",
            f"an array of shape {stored.shape}",
            source=source,
        )
    return stored


def _uid(ds: Dataset, keyword: str, *fallback: str) -> str:
    value = str(ds.get(keyword, "")).strip()
    # Type 1 everywhere, yet missing from some real files: fall back as for PNG and JPEG.
    return value or synthetic_uid(*fallback)


def read_dicom(
    data: bytes,
    source: Path,
    limits: IngestLimits,
    *,
    folder: str,
    budget: DecodeBudget | None = None,
) -> ImageRecord:
    """Decode one single-frame DICOM image; raise a ``radloop.errors.InputError`` subclass
    naming the expectation if it cannot be read safely.

    ``folder`` keys the synthetic UIDs given to a file that lacks its study or series UID.
    ``budget`` counts decoded bytes across the images of one load call (a fresh one if None).
    """
    ds = parse_dicom(data, source)
    _check_pixel_data_present(ds, source)
    rows, columns, photometric = _check_header(ds, source, limits)
    decoded, shape = _decoded_bytes(ds, rows, columns)
    study_uid = _uid(ds, "StudyInstanceUID", "study", folder)
    (budget or DecodeBudget(limits)).charge(decoded, study=study_uid, shape=shape, source=source)
    stored = _decode(ds, source, rows, columns)
    bits = _as_int(ds.get("BitsStored")) or 8 * stored.dtype.itemsize
    if photometric in _COLOUR:
        full_scale = float(2**bits - 1)
        grey = np.clip(stored[..., :3].astype(np.float64) @ _LUMA / full_scale, 0.0, 1.0)
    else:
        grey = _grey_levels(stored, ds, source)
        if photometric == "MONOCHROME1":
            # MONOCHROME1: the minimum value is displayed as white (PS3.3 C.7.6.3.1.2).
            grey = 1.0 - grey
    pixels = np.ascontiguousarray(grey, dtype=np.float32)
    pixels.flags.writeable = False
    spacing, spacing_source = pixel_spacing_from_dataset(ds)
    view = str(ds.get("ViewPosition", "")).strip() or None
    image = Image(
        pixels=pixels,
        source=source,
        sop_instance_uid=_uid(ds, "SOPInstanceUID", "image", str(source)),
        series_instance_uid=_uid(ds, "SeriesInstanceUID", "series", folder),
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        photometric=photometric,
        view_position=view,
        bits=bits,
    )
    return ImageRecord(
        image=image,
        study_instance_uid=study_uid,
        series_number=_as_int(ds.get("SeriesNumber")),
        instance_number=_as_int(ds.get("InstanceNumber")),
        metadata=study_metadata_from_dataset(ds),
        context=clinical_context_from_dataset(ds),
    )
