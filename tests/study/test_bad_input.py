"""Bad files: each raises a typed error that names what was expected and what arrived."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG4HP41, UID
from studykit import bundled, make_dataset, raster_bytes, save

from radloop.errors import (
    CorruptFileError,
    EmptyFileError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    UnsupportedFileTypeError,
    UnsupportedTransferSyntaxError,
)
from radloop.study import IngestLimits, load_image, load_studies


def test_truncated_pixel_data_is_a_corrupt_file() -> None:
    with pytest.raises(CorruptFileError, match=r"MR_truncated\.dcm: expected decodable pixel"):
        load_image(bundled("MR_truncated.dcm"))


def test_dicom_cut_off_in_its_header_is_a_corrupt_file(dicom_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(dicom_file.read_bytes()[:400])
    with pytest.raises(CorruptFileError, match=r"ends before its pixel data; .* truncated"):
        load_image(cut)


def test_garbage_with_a_dicom_suffix_is_a_corrupt_file(tmp_path: Path) -> None:
    junk = tmp_path / "scan.dcm"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CorruptFileError, match=r"scan\.dcm: expected a DICOM file.*'DICM'"):
        load_image(junk)


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("notes.txt", b"Patient notes: nothing to see here.\n", "a text file"),
        ("notes.dcm", b"Plain text with a DICOM suffix.\n", "a text file"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
    ],
)
def test_non_image_files_are_unsupported(
    tmp_path: Path, name: str, content: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(
        UnsupportedFileTypeError, match=f"expected a DICOM, PNG or JPEG image, got {what}"
    ):
        load_image(path)


def test_a_text_file_in_a_study_folder_is_reported_by_name(tmp_path: Path) -> None:
    save(make_dataset(), tmp_path / "a.dcm")
    (tmp_path / "readme.txt").write_text("exported by PACS")
    with pytest.raises(UnsupportedFileTypeError, match=r"readme\.txt: expected"):
        load_studies(tmp_path)


def test_an_empty_file_is_an_empty_file_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dcm"
    empty.touch()
    with pytest.raises(EmptyFileError, match=r"empty\.dcm: expected .* got an empty file"):
        load_image(empty)


def test_a_structured_report_has_no_pixel_data_to_read() -> None:
    with pytest.raises(
        UnsupportedFileTypeError, match=r"expected a DICOM image with Pixel Data.*SR Storage"
    ):
        load_image(bundled("test-SR.dcm"))


def test_dicom_over_10000_px_is_refused_from_the_header_before_decoding(tmp_path: Path) -> None:
    # The pixel data is a stub: decoding it would fail, so the size must be checked first.
    ds = make_dataset(np.zeros((2, 2), dtype=np.uint16))
    ds.Rows, ds.Columns = 12000, 800
    path = save(ds, tmp_path / "scan.dcm")
    with pytest.raises(
        ImageTooLargeError,
        match=r"scan\.dcm: expected DICOM pixel data of at most 10000 px a side, "
        r"got 12000 rows x 800 columns\.",
    ):
        load_image(path)


def test_png_over_10000_px_is_refused_from_the_header(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    wide.write_bytes(raster_bytes(np.zeros((1, 10_001), dtype=np.uint8), "PNG"))
    with pytest.raises(ImageTooLargeError, match="at most 10000 px a side, got 1 rows x 10001"):
        load_image(wide)


@pytest.mark.parametrize("suffix", ["dcm", "png", "jpg"])
def test_the_configured_side_limit_applies_to_every_format(tmp_path: Path, suffix: str) -> None:
    pixels = np.zeros((64, 80), dtype=np.uint8)
    path = tmp_path / f"image.{suffix}"
    if suffix == "dcm":
        save(make_dataset(pixels, bits_stored=8), path)
    else:
        path.write_bytes(raster_bytes(pixels, "PNG" if suffix == "png" else "JPEG"))
    with pytest.raises(ImageTooLargeError, match="at most 32 px a side, got 64 rows x 80"):
        load_image(path, limits=IngestLimits(max_side_px=32))


def test_a_file_over_the_byte_limit_is_refused_before_reading(dicom_file: Path) -> None:
    size = dicom_file.stat().st_size
    with pytest.raises(FileTooLargeError, match=f"at most 1000 bytes, got {size} bytes"):
        load_image(dicom_file, limits=IngestLimits(max_file_bytes=1000))


def test_a_folder_over_the_study_byte_limit_is_refused(tmp_path: Path) -> None:
    for instance in (1, 2):
        save(make_dataset(instance=instance), tmp_path / f"{instance}.dcm")
    with pytest.raises(FileTooLargeError, match="a study of at most 4000 bytes, got"):
        load_studies(tmp_path, limits=IngestLimits(max_study_bytes=4000))


def _with_syntax(syntax: UID, tmp_path: Path) -> Path:
    ds = make_dataset()
    ds.PixelData = encapsulate([b"\x00\x00\x00\x01" * 16])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "video.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_video_transfer_syntax_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedTransferSyntaxError, match=r"got 1\.2\.840\.10008\.1\.2\.4\.102"):
        load_image(_with_syntax(MPEG4HP41, tmp_path))


def test_a_made_up_transfer_syntax_is_unsupported(tmp_path: Path) -> None:
    path = save(make_dataset(), tmp_path / "made_up.dcm")
    data = path.read_bytes().replace(b"1.2.840.10008.1.2.1\x00", b"1.2.3.4.5.6.7.8.9.0\x00")
    path.write_bytes(data)
    with pytest.raises(UnsupportedTransferSyntaxError, match=r"got unknown UID 1\.2\.3\.4"):
        load_image(path)


def test_multi_frame_images_are_refused(tmp_path: Path) -> None:
    shutil.copy(bundled("SC_rgb_rle_2frame.dcm"), tmp_path / "two.dcm")
    with pytest.raises(
        UnsupportedFileTypeError,
        match="expected a single-frame image, as radiographs are, got 2 frames",
    ):
        load_image(tmp_path / "two.dcm")


def test_truncated_png_is_a_corrupt_file(tmp_path: Path) -> None:
    data = raster_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8), "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.png: expected a complete PNG or JPEG"):
        load_image(cut)


def test_every_input_error_is_also_a_value_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(ValueError, match="empty file") as raised:
        load_image(empty)
    assert isinstance(raised.value, InputError)
