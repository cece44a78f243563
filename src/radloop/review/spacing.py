"""What the viewer's length caliper needs: each image's pixel spacing, read from its original.

The store keeps the originals but not their spacing, so the study page reads the DICOM header
of each image (no pixel data) when it is shown. Pixel Spacing (0028,0030) is calibrated to the
patient plane; Imager Pixel Spacing (0018,1164) is at the detector and overstates anatomy by
the geometric magnification, so a length from it is said to be uncorrected (PS3.3 10.7.1.3).
A PNG or JPEG film, or an original that cannot be read, has no spacing: the caliper says px.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from radloop.review.db import ImageRow
from radloop.review.store import Store

__all__ = ["image_spacings", "spacing_of"]


def spacing_of(path: Path) -> dict[str, Any]:
    """``{"spacing_mm": [row, column] | None, "spacing_source": keyword | None,
    "spacing_note": why none}`` for one original file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from radloop.study.metadata import pixel_spacing_from_dataset

    try:
        if path.is_file():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        else:  # a member of a kept zip: ``<zip>/<member>``
            archive = next((p for p in path.parents if p.is_file()), None)
            if archive is None:
                return _none("the original file is not kept where the store says")
            member = path.relative_to(archive).as_posix()
            with zipfile.ZipFile(archive) as opened, opened.open(member) as handle:
                ds = pydicom.dcmread(handle, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, KeyError, zipfile.BadZipFile):
        return _none("the original is not a DICOM file (no pixel spacing in it)")
    spacing, source = pixel_spacing_from_dataset(ds)
    if spacing is None:
        return _none("the DICOM file has neither Pixel Spacing nor Imager Pixel Spacing")
    return {"spacing_mm": [spacing[0], spacing[1]], "spacing_source": source, "spacing_note": None}


def _none(why: str) -> dict[str, Any]:
    return {"spacing_mm": None, "spacing_source": None, "spacing_note": why}


def image_spacings(store: Store, connection: Any, study_id: str) -> dict[int, dict[str, Any]]:
    """Each image position of ``study_id`` → :func:`spacing_of` its original."""
    rows = connection.execute(
        select(ImageRow.position, ImageRow.original).where(ImageRow.study_id == study_id)
    )
    found: dict[int, dict[str, Any]] = {}
    for position, original in rows:
        if original is None:
            found[position] = _none("the store does not know this image's original file")
            continue
        try:
            path = store.path(original)
        except ValueError:
            found[position] = _none("the original's stored path leaves the data directory")
            continue
        found[position] = spacing_of(path)
    return found
