"""STOW-RS incoming reads its multipart body as a stream, part by part to disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pacskit import sample_instance

from radloop.errors import FileTooLargeError, InputError
from radloop.review.dicomweb import stream_multipart
from radloop.study import IngestLimits

BOUNDARY = "radloop-stream-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'


def _body(*parts: bytes, part_type: str = "application/dicom") -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode()
    return b"".join(head + p + b"\r\n" for p in parts) + f"--{BOUNDARY}--\r\n".encode()


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _stream(body: bytes, folder: Path, size: int = 7, **limits: int) -> list[Path]:
    return asyncio.run(
        stream_multipart(_chunks(body, size), CONTENT_TYPE, folder, IngestLimits(**limits))
    )


def test_each_part_is_written_to_disk_as_it_arrives(tmp_path: Path) -> None:
    first, second = sample_instance(), sample_instance()
    # Odd chunk sizes: boundaries and headers split across chunks.
    for size in (1, 7, 4096, 10**7):
        folder = tmp_path / str(size)
        folder.mkdir()
        files = _stream(_body(first, second), folder, size)
        assert [f.read_bytes() for f in files] == [first, second]


@pytest.mark.parametrize(
    ("body", "limits", "error", "words"),
    [
        (_body(b"x" * 2000), {"max_file_bytes": 1000}, FileTooLargeError, "at most 1,000 bytes"),
        (_body(b"a", b"b", b"c"), {"max_archive_members": 2}, InputError, "at most 2 instances"),
        (_body(b"{}", part_type="application/dicom+json"), {}, InputError, "application/dicom"),
        (
            b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\nabc",
            {},
            InputError,
            "multipart/related body",
        ),
        (f"--{BOUNDARY}--\r\n".encode(), {}, InputError, "at least one DICOM instance"),
    ],
)
def test_a_bad_body_is_a_typed_error(
    tmp_path: Path, body: bytes, limits: dict[str, int], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        _stream(body, tmp_path, **limits)


def test_the_content_type_must_be_multipart_related(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="multipart/related"):
        asyncio.run(
            stream_multipart(_chunks(b"", 1), "application/dicom", tmp_path, IngestLimits())
        )
