"""Builders for small DICOM, PNG and JPEG files. Nothing is downloaded: bundled pydicom test
files are found with ``download=False`` and everything else is generated here.

A module of its own, not ``conftest``: every test folder has a ``conftest`` and only one of
them can be imported under that name when several folders run together."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)


def bundled(name: str) -> Path:
    """A test file shipped inside the pydicom wheel; never fetched from the network."""
    found = get_testdata_file(name, download=False)
    assert found is not None, f"{name} is not bundled with this pydicom"
    return Path(str(found))


def uid(*parts: str) -> str:
    return str(generate_uid(entropy_srcs=["radloop tests", *parts]))


def ramp(rows: int = 32, columns: int = 48, bits: int = 12) -> npt.NDArray[np.uint16]:
    """A left-to-right ramp over the full stored range, plus row texture so it is 2-D."""
    full = 2**bits - 1
    columns_ramp = np.linspace(0, full, columns)
    image = np.tile(columns_ramp, (rows, 1))
    rounded: npt.NDArray[np.uint16] = np.rint(image).astype(np.uint16)
    return rounded


def make_dataset(
    pixels: npt.NDArray[Any] | None = None,
    *,
    study: str = "study-a",
    series: str = "series-1",
    instance: int = 1,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    **attributes: Any,
) -> Dataset:
    """An uncompressed single-frame DX image with a patient, ready to save."""
    array = ramp(bits=bits_stored) if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = UID(uid(study, series, str(instance)))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid(study)
    ds.SeriesInstanceUID = uid(study, series)
    ds.SeriesNumber = int(series.rsplit("-", 1)[-1]) if series[-1].isdigit() else 1
    ds.InstanceNumber = instance
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = "ID-12345"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.PatientAge = "054Y"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = array.shape[:2]
    ds.BitsAllocated = 16 if array.dtype.itemsize > 1 else 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if np.issubdtype(array.dtype, np.signedinteger) else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = array.tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def raster_bytes(array: npt.NDArray[Any], fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()
