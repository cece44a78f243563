"""Typed errors. Each says what was expected, what arrived and, where there is one, the fix.

Bad input never leaves anything half-written: the code that raises these errors validates
before it writes (see ``radloop.study``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CorruptFileError",
    "DecodedSizeError",
    "EmptyFileError",
    "FileTooLargeError",
    "ImageTooLargeError",
    "InputError",
    "MissingExtraError",
    "RadloopError",
    "UnknownFindingError",
    "UnsafeArchiveError",
    "UnsupportedFileTypeError",
    "UnsupportedTransferSyntaxError",
]


class RadloopError(Exception):
    """Base of every error radloop raises on purpose."""


class InputError(RadloopError, ValueError):
    """Input that radloop cannot accept.

    The message is built from what was expected, what arrived and an optional fix, so every
    subclass reads the same way: ``<source>: expected <expected>, got <received>. <fix>``.
    """

    def __init__(
        self,
        expected: str,
        received: str,
        *,
        source: str | Path | None = None,
        fix: str | None = None,
    ) -> None:
        self.expected = expected
        self.received = received
        self.source = None if source is None else str(source)
        self.fix = fix
        prefix = f"{self.source}: " if self.source else ""
        message = f"{prefix}expected {expected}, got {received}."
        if fix:
            message += f" {fix}"
        super().__init__(message)


class EmptyFileError(InputError):
    """A file of zero bytes."""


class CorruptFileError(InputError):
    """A file that claims a format but cannot be decoded (truncated, damaged)."""


class UnsupportedFileTypeError(InputError):
    """A file that is not DICOM, PNG or JPEG."""


class UnsupportedTransferSyntaxError(InputError):
    """DICOM pixel data in a transfer syntax radloop cannot decode."""


class ImageTooLargeError(InputError):
    """An image with more pixels on a side than the configured limit."""


class DecodedSizeError(ImageTooLargeError):
    """Pixel data whose decoded size, computed from the header, is past the configured budget
    for an image or a study: a small file that a codec would expand without bound."""


class FileTooLargeError(InputError):
    """A file, or a study's total size, over the configured byte limit."""


class UnsafeArchiveError(InputError):
    """A zip archive with path-traversal names, links or a decompression bomb."""


class UnknownFindingError(RadloopError, KeyError):
    """A finding code or term that is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingExtraError(RadloopError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install 'radloop[{extra}]'"
        )
