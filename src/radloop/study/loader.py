"""Files, folders and zips into ``Study`` objects.

A folder or zip is one examination's files. Images are grouped by Study Instance UID
(0020,000D) and, inside a study, by Series Instance UID (0020,000E) (PS3.3 C.7.2, C.7.3), so a
prior examination in the same folder comes back as its own ``Study``. PNG and JPEG files have
no UIDs; each gets a synthetic one derived from its path (``pydicom.uid.generate_uid`` with the
path as entropy, so the same path always gets the same UID), and the raster files of one folder
form one study of one series.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from radloop.errors import (
    CorruptFileError,
    EmptyFileError,
    FileTooLargeError,
    InputError,
    UnsupportedFileTypeError,
)
from radloop.study.archive import ZIP_SIGNATURE, iter_archive
from radloop.study.budget import DecodeBudget
from radloop.study.dicom import is_dicom, read_dicom
from radloop.study.metadata import synthetic_uid
from radloop.study.raster import raster_format, read_raster
from radloop.study.types import Image, ImageRecord, IngestLimits, Series, Study

__all__ = [
    "EmptyStudyError",
    "MultipleStudiesError",
    "dicom_files",
    "is_fhir_bundle",
    "load_files",
    "load_image",
    "load_studies",
    "load_study",
]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
# Files that ride along in exported studies and are not images: DICOMDIR (PS3.10 8), macOS
# resource forks and other hidden files. A FHIR Bundle (``.json``) given with a study is its
# clinical context, read by ``radloop.context``: skipped here too (``_is_sidecar``).
_IGNORED_NAMES = ("DICOMDIR",)
_IGNORED_DIRS = ("__MACOSX",)
_ACCEPTED = "a DICOM, PNG or JPEG image"
_FRONTAL = frozenset({"PA", "AP"})
_TEXT, _PDF = "a text file", "a PDF document"


class MultipleStudiesError(InputError):
    """More than one study where exactly one was asked for."""


class EmptyStudyError(InputError):
    """A folder or archive with no image files in it."""


def _is_ignored(relative: PurePosixPath) -> bool:
    if any(part in _IGNORED_DIRS or part.startswith(".") for part in relative.parts[:-1]):
        return True
    return relative.name in _IGNORED_NAMES or relative.name.startswith(".")


def is_fhir_bundle(data: bytes) -> bool:
    """Whether ``data`` is a FHIR Bundle in JSON (``"resourceType": "Bundle"``): clinical
    context given with a study (read by ``radloop.context``), not one of its images."""
    import json

    if data.lstrip()[:1] != b"{":
        return False
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("resourceType") == "Bundle"


def _is_sidecar(name: str, data: bytes | None = None, path: Path | None = None) -> bool:
    """A FHIR Bundle ``.json`` riding along with the images (skipped by the image reader)."""
    if not name.lower().endswith(".json"):
        return False
    if data is None and path is not None:
        data = path.read_bytes()
    return data is not None and is_fhir_bundle(data)


def _describe(data: bytes) -> str:
    """What a file that is not an image looks like, for the error message."""
    if data.startswith(b"%PDF"):
        return _PDF
    if data.startswith(ZIP_SIGNATURE):
        return "a zip archive inside the study"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the 4096-byte mark
            return f"unrecognised binary data starting {data[:8].hex(' ')}"
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch.isspace() for ch in text)
    if printable >= 0.95 * max(len(text), 1):
        return _TEXT
    return f"unrecognised data starting {data[:8].hex(' ')}"


def _read_record(
    data: bytes, source: Path, folder: str, limits: IngestLimits, budget: DecodeBudget
) -> ImageRecord:
    if not data:
        raise EmptyFileError(_ACCEPTED, "an empty file (0 bytes)", source=source)
    if is_dicom(data):
        return read_dicom(data, source, limits, folder=folder, budget=budget)
    if raster_format(data) is not None:
        study_uid = synthetic_uid("study", folder)
        image = read_raster(
            data,
            source,
            limits,
            sop_instance_uid=synthetic_uid("image", str(source)),
            series_instance_uid=synthetic_uid("series", folder),
            study_instance_uid=study_uid,
            budget=budget,
        )
        return ImageRecord(image=image, study_instance_uid=study_uid)
    found = _describe(data)
    if source.suffix.lower() in _DICOM_SUFFIXES and found not in (_TEXT, _PDF):
        # Binary data named .dcm is most likely DICOM that lost its header.
        raise CorruptFileError(
            "a DICOM file: a 128-byte preamble then 'DICM' (PS3.10 7.1)",
            f"no 'DICM' prefix in {len(data)} bytes",
            source=source,
            fix="If it is a headerless dataset, re-save it as a Part 10 file (dcmtk: dcmconv).",
        )
    raise UnsupportedFileTypeError(_ACCEPTED, found, source=source)


def _check_file_size(size: int, source: Path, limits: IngestLimits) -> None:
    if size > limits.max_file_bytes:
        raise FileTooLargeError(
            f"a file of at most {limits.max_file_bytes} bytes",
            f"{size} bytes",
            source=source,
            fix="Raise IngestLimits.max_file_bytes if files this large are expected.",
        )


def _list_folder(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not _is_ignored(PurePosixPath(p.relative_to(folder).as_posix()))
    )


def _folder_files(folder: Path, limits: IngestLimits) -> list[Path]:
    files = _list_folder(folder)
    total = 0
    for path in files:
        size = path.stat().st_size
        _check_file_size(size, path, limits)
        total += size
    if total > limits.max_study_bytes:
        raise FileTooLargeError(
            f"a study of at most {limits.max_study_bytes} bytes",
            f"{total} bytes in {len(files)} files",
            source=folder,
            fix="Raise IngestLimits.max_study_bytes if studies this large are expected.",
        )
    return files


def _read_path(path: Path, limits: IngestLimits) -> bytes:
    _check_file_size(path.stat().st_size, path, limits)
    return path.read_bytes()


def _file_record(path: Path, limits: IngestLimits, budget: DecodeBudget) -> ImageRecord:
    """One plain file's image (its folder names a PNG's or JPEG's study)."""
    folder = str(path.parent.resolve())
    return _read_record(_read_path(path, limits), path, folder, limits, budget)


def _archive_records(
    archive: Path,
    limits: IngestLimits,
    budget: DecodeBudget,
    only: Collection[str] | None = None,
) -> Iterator[ImageRecord]:
    """The images of a zip's members (of those named in ``only``), as ``<zip>/<member>``."""
    for name, member in iter_archive(archive, limits, only=only):
        relative = PurePosixPath(name)
        if _is_ignored(relative) or _is_sidecar(relative.name, member):
            continue
        folder = f"{archive.resolve()}!/{relative.parent}"
        yield _read_record(member, archive / relative, folder, limits, budget)


def _records(path: Path, limits: IngestLimits) -> Iterator[ImageRecord]:
    budget = DecodeBudget(limits)
    if path.is_dir():
        for file in _folder_files(path, limits):
            if not _is_sidecar(file.name, path=file):
                yield _file_record(file, limits, budget)
        return
    with path.open("rb") as head:
        is_zip = head.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
    if not is_zip:
        yield _file_record(path, limits, budget)
        return
    _check_study_size(path, limits)
    yield from _archive_records(path, limits, budget)


def _check_study_size(path: Path, limits: IngestLimits) -> None:
    size = path.stat().st_size
    if size > limits.max_study_bytes:
        raise FileTooLargeError(
            f"an archive of at most {limits.max_study_bytes} bytes",
            f"{size} bytes",
            source=path,
        )


def _series_key(series: tuple[int | None, str]) -> tuple[bool, int, str]:
    number, uid = series
    return number is None, number or 0, uid


def _image_key(record: ImageRecord) -> tuple[bool, int, str]:
    number = record.instance_number
    return number is None, number or 0, str(record.image.source)


def _study_from(uid: str, records: list[ImageRecord]) -> Study:
    by_series: dict[str, list[ImageRecord]] = defaultdict(list)
    numbers: dict[str, int | None] = {}
    for record in records:
        series_uid = record.image.series_instance_uid
        by_series[series_uid].append(record)
        numbers.setdefault(series_uid, record.series_number)
    ordered = sorted(((numbers[s], s) for s in by_series), key=_series_key)
    series = tuple(
        Series(uid=s, images=tuple(r.image for r in sorted(by_series[s], key=_image_key)))
        for _, s in ordered
    )
    # The study's metadata are those of its first frontal image (the view radloop reads), or
    # of its first image when none is frontal; a lateral in the first series must not make a
    # PA + lateral study "lateral".
    rank = {s: i for i, (_, s) in enumerate(ordered)}
    in_order = sorted(records, key=lambda r: (rank[r.image.series_instance_uid], _image_key(r)))
    first = next(
        (r for r in in_order if (r.image.view_position or "").upper() in _FRONTAL), in_order[0]
    )
    return Study(
        study_instance_uid=uid, series=series, metadata=first.metadata, context=first.context
    )


def _group(records: Iterable[ImageRecord]) -> list[Study]:
    by_study: dict[str, list[ImageRecord]] = defaultdict(list)
    for record in records:
        by_study[record.study_instance_uid].append(record)
    studies = [_study_from(uid, group) for uid, group in by_study.items()]

    def when(study: Study) -> tuple[bool, datetime.date, str]:
        date = study.metadata.study_date
        return date is None, date or datetime.date.min, study.study_instance_uid

    return sorted(studies, key=when)


def _existing(path: Path | str) -> Path:
    resolved = Path(path)
    if not resolved.exists():
        raise FileNotFoundError(f"{resolved}: expected a file, folder or zip, got no such path.")
    return resolved


def load_studies(path: Path | str, *, limits: IngestLimits | None = None) -> list[Study]:
    """Every study in a file, folder (searched recursively) or zip, oldest first.

    Studies without a Study Date (0008,0020) come last. Raises a ``radloop.errors.InputError``
    subclass for the first file that cannot be read; nothing is written anywhere.
    """
    source = _existing(path)
    studies = _group(_records(source, limits or IngestLimits()))
    if not studies:
        raise EmptyStudyError(
            "at least one DICOM, PNG or JPEG image",
            "none (hidden files, DICOMDIR and FHIR Bundles are skipped)",
            source=source,
        )
    return studies


def load_files(sources: Sequence[Path | str], *, limits: IngestLimits | None = None) -> list[Study]:
    """The studies in exactly these files, oldest first: each a plain file, or a member of a
    zip named ``<archive>/<member>`` as :attr:`Image.source` names it.

    For reading one stored study again without reading the rest of the upload it came in.
    Images read the same as in :func:`load_studies` (PNG and JPEG keep the study UID their
    folder gave them). Raises like :func:`load_studies`; a source that is neither a file nor
    inside a zip raises ``FileNotFoundError``.
    """
    limits = limits or IngestLimits()
    budget = DecodeBudget(limits)
    records: list[ImageRecord] = []
    members: dict[Path, set[str]] = defaultdict(set)
    for raw in sources:
        path = Path(raw)
        if path.is_file():
            records.append(_file_record(path, limits, budget))
            continue
        archive = next((parent for parent in path.parents if parent.is_file()), None)
        if archive is None:
            raise FileNotFoundError(
                f"{path}: expected a file or a member of a zip, got no such path."
            )
        members[archive].add(path.relative_to(archive).as_posix())
    for archive, names in members.items():
        records.extend(_archive_records(archive, limits, budget, only=names))
    return _group(records)


def load_study(path: Path | str, *, limits: IngestLimits | None = None) -> Study:
    """The one study in ``path``; raises ``MultipleStudiesError`` if there are more."""
    studies = load_studies(path, limits=limits)
    if len(studies) > 1:
        found = ", ".join(
            f"{s.study_instance_uid} ({s.metadata.study_date or 'no date'})" for s in studies
        )
        raise MultipleStudiesError(
            "exactly one study (one Study Instance UID)",
            f"{len(studies)} studies: {found}",
            source=Path(path),
            fix="Use radloop.study.load_studies() to get every study, priors included.",
        )
    return studies[0]


def load_image(path: Path | str, *, limits: IngestLimits | None = None) -> Image:
    """One DICOM, PNG or JPEG file as an ``Image``."""
    source = _existing(path)
    if source.is_dir():
        raise UnsupportedFileTypeError(
            "an image file", "a folder", source=source, fix="Use load_study() for folders."
        )
    checked = limits or IngestLimits()
    data = _read_path(source, checked)
    folder = str(source.parent.resolve())
    return _read_record(data, source, folder, checked, DecodeBudget(checked)).image


def dicom_files(path: Path | str) -> list[Path]:
    """The DICOM Part 10 files in a file or folder (searched recursively), by path.

    For tools that work file by file, such as ``deidentify``. Zips are refused: their members
    have no path on disk to hand back.
    """
    source = _existing(path)
    candidates = _list_folder(source) if source.is_dir() else [source]
    found: list[Path] = []
    for candidate in candidates:
        with candidate.open("rb") as head:
            start = head.read(132)
        if start.startswith(ZIP_SIGNATURE):
            raise UnsupportedFileTypeError(
                "a DICOM file or a folder of them",
                "a zip archive",
                source=candidate,
                fix="Unzip it first; de-identified copies need files on disk.",
            )
        if is_dicom(start):
            found.append(candidate)
    return found
