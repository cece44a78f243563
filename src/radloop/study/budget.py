"""How many bytes the images of one load call will decode to, counted from their headers.

A codec can expand a few kilobytes into gigabytes (a 25 KB JPEG-LS DICOM of 9,999 x 9,999
zeros), which the file-size and zip-ratio limits cannot see. Each image's decoded size is
charged here before its pixel data is decoded, against a per-image and a per-study budget
(``IngestLimits.max_decoded_bytes_per_image`` and ``max_decoded_bytes_per_study``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from radloop.errors import DecodedSizeError
from radloop.study.types import IngestLimits

__all__ = ["DecodeBudget"]


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MiB ({size:,} bytes)"


class DecodeBudget:
    """Decoded bytes charged per study in one load call; raises ``DecodedSizeError``."""

    def __init__(self, limits: IngestLimits) -> None:
        self._limits = limits
        self._spent: defaultdict[str, int] = defaultdict(int)

    def charge(self, decoded: int, *, study: str, shape: str, source: Path) -> None:
        """Count ``decoded`` bytes (``shape`` says how they were computed) for ``study``."""
        per_image = self._limits.max_decoded_bytes_per_image
        if decoded > per_image:
            raise DecodedSizeError(
                f"pixel data that decodes to at most {_mib(per_image)} an image",
                f"{shape} = {_mib(decoded)} once decoded",
                source=source,
                fix="Raise IngestLimits.max_decoded_bytes_per_image if images this large "
                "are expected.",
            )
        total = self._spent[study] + decoded
        per_study = self._limits.max_decoded_bytes_per_study
        if total > per_study:
            raise DecodedSizeError(
                f"a study whose images decode to at most {_mib(per_study)} in all",
                f"{_mib(total)} with this image ({shape})",
                source=source,
                fix="Raise IngestLimits.max_decoded_bytes_per_study if studies this large "
                "are expected.",
            )
        self._spent[study] = total
