"""Read a zip of study files in memory, refusing unsafe archives before inflating anything.

Nothing is extracted to disk: members are inflated one at a time into memory, after every
member's name, kind and declared size has passed. Declared sizes can lie, so the bytes are
counted again while inflating. The checks follow the usual zip-slip and zip-bomb defences
(CWE-22, CWE-409).
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Collection, Iterator
from pathlib import Path, PurePosixPath

from radloop.errors import CorruptFileError, FileTooLargeError, UnsafeArchiveError
from radloop.study.types import IngestLimits

__all__ = ["ZIP_SIGNATURE", "iter_archive"]

ZIP_SIGNATURE = b"PK\x03\x04"  # APPNOTE.TXT 4.3.7, local file header
_CHUNK = 1024 * 1024
# Below this a member's ratio says nothing (a few kB of zeros compress 1000:1); the total
# ratio still covers many small members.
_RATIO_FLOOR_BYTES = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe(archive: Path, expected: str, received: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        expected,
        received,
        source=archive,
        fix="Re-create the archive from the study folder with a standard zip tool.",
    )


def _check_name(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix) or ".." in PurePosixPath(posix).parts:
        raise _unsafe(archive, "member names relative to the archive root", f"{name!r}")


def _check_kind(archive: Path, info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16  # Unix st_mode, APPNOTE.TXT 4.4.15
    if stat.S_ISLNK(mode):
        raise _unsafe(archive, "regular files only", f"a symbolic link {info.filename!r}")
    if info.flag_bits & 0x1:  # APPNOTE.TXT 4.4.4 bit 0: encrypted
        raise _unsafe(archive, "unencrypted members", f"encrypted member {info.filename!r}")


def _check_sizes(
    archive: Path, members: list[zipfile.ZipInfo], archive_bytes: int, limits: IngestLimits
) -> None:
    total = 0
    for info in members:
        declared, packed = info.file_size, info.compress_size
        if declared >= _RATIO_FLOOR_BYTES and declared > limits.max_compression_ratio * max(
            packed, 1
        ):
            raise _unsafe(
                archive,
                f"a compression ratio of at most {limits.max_compression_ratio:g}:1",
                f"{info.filename!r} declaring {declared} bytes from {packed} "
                f"({declared / max(packed, 1):.0f}:1), a decompression bomb",
            )
        if declared > limits.max_file_bytes:
            raise FileTooLargeError(
                f"members of at most {limits.max_file_bytes} bytes",
                f"{info.filename!r} declaring {declared} bytes",
                source=archive,
            )
        total += declared
    if total > limits.max_study_bytes:
        raise FileTooLargeError(
            f"a study of at most {limits.max_study_bytes} bytes",
            f"members declaring {total} bytes in all",
            source=archive,
        )
    if total >= _RATIO_FLOOR_BYTES and total > limits.max_compression_ratio * archive_bytes:
        raise _unsafe(
            archive,
            f"an overall compression ratio of at most {limits.max_compression_ratio:g}:1",
            f"{total} bytes declared in a {archive_bytes}-byte archive, a decompression bomb",
        )


def _inflate(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    chunks: list[bytes] = []
    count = 0
    try:
        with zf.open(info) as member:
            while chunk := member.read(_CHUNK):
                count += len(chunk)
                if count > cap:
                    raise _unsafe(
                        archive,
                        f"{info.filename!r} to inflate to its declared {info.file_size} bytes",
                        f"more than {cap} bytes",
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise _unsafe(
            archive,
            f"{info.filename!r} to inflate to its declared size and checksum",
            f"{type(exc).__name__}: {exc}",
        ) from exc
    return b"".join(chunks)


def iter_archive(
    archive: Path, limits: IngestLimits, only: Collection[str] | None = None
) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of each file in a zip (or of the members named in ``only``), in
    name order.

    Every member's name, kind and declared size is checked before the first is inflated, so
    an unsafe archive fails before any of it is used.
    """
    archive_bytes = archive.stat().st_size
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptFileError(
            "a readable zip archive (APPNOTE.TXT)", f"{exc}", source=archive
        ) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_archive_members:
            raise _unsafe(
                archive,
                f"at most {limits.max_archive_members} members",
                f"{len(infos)} members",
            )
        for info in infos:
            _check_name(archive, info)
            _check_kind(archive, info)
        members = sorted((i for i in infos if not i.is_dir()), key=lambda i: i.filename)
        _check_sizes(archive, members, archive_bytes, limits)
        for info in members:
            if only is not None and info.filename not in only:
                continue
            cap = min(info.file_size, limits.max_file_bytes)
            yield info.filename, _inflate(archive, zf, info, cap)
