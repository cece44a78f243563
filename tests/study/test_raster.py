"""Reading PNG and JPEG radiographs with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import UID
from studykit import bundled, raster_bytes

from radloop.errors import CorruptFileError, ImageTooLargeError
from radloop.study import IngestLimits, load_image, load_study


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_8_bit_png_is_scaled_by_255(tmp_path: Path) -> None:
    source = np.array([[0, 51, 255]], dtype=np.uint8).repeat(3, axis=0)
    image = load_image(_write(tmp_path / "a.png", raster_bytes(source, "PNG")))
    np.testing.assert_allclose(image.pixels[0], [0.0, 0.2, 1.0], atol=1e-6)
    assert image.bits == 8
    assert image.pixels.dtype == np.float32


def test_16_bit_png_keeps_its_full_depth(tmp_path: Path) -> None:
    source = np.array([[0, 1, 32768, 65535]], dtype=np.uint16).repeat(2, axis=0)
    image = load_image(_write(tmp_path / "a16.png", raster_bytes(source, "PNG")))
    assert image.bits == 16
    assert image.pixels[0, 1] == pytest.approx(1 / 65535)  # lost at 8 bit
    assert image.pixels[0, 3] == 1.0


def test_8_bit_jpeg_matches_its_source_within_jpeg_error(tmp_path: Path) -> None:
    source = np.tile(np.linspace(0, 255, 64), (32, 1)).astype(np.uint8)
    image = load_image(_write(tmp_path / "a.jpg", raster_bytes(source, "JPEG", quality=95)))
    assert image.bits == 8
    assert image.shape == (32, 64)
    assert np.abs(image.pixels - source / 255.0).max() < 0.05


def _codestream(name: str) -> bytes:
    """The JPEG codestream inside a bundled DICOM file, as a plain .jpg file would hold it."""
    ds = pydicom.dcmread(bundled(name))
    return next(generate_frames(ds.PixelData, number_of_frames=1))


@pytest.mark.parametrize(
    ("name", "bits"),
    [("JPGExtended.dcm", 12), ("JPEGLSNearLossless_16.dcm", 16)],
)
def test_12_and_16_bit_jpeg_keep_their_depth(tmp_path: Path, name: str, bits: int) -> None:
    # Pillow reads only 8-bit JPEG (ITU-T T.81 allows 12 and 16), so these go to libjpeg.
    path = _write(tmp_path / "deep.jpg", _codestream(name))
    image = load_image(path)
    stored = pydicom.dcmread(bundled(name)).pixel_array
    assert image.bits == bits
    np.testing.assert_allclose(image.pixels * (2**bits - 1), stored, atol=0.01)


def test_16_bit_greyscale_raster_is_detected_from_content_not_extension(tmp_path: Path) -> None:
    source = np.array([[0, 65535]], dtype=np.uint16).repeat(2, axis=0)
    image = load_image(_write(tmp_path / "misnamed.jpg", raster_bytes(source, "PNG")))
    assert image.bits == 16 and image.pixels[0, 1] == 1.0


def test_deep_jpeg_size_is_checked_from_its_frame_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep.jpg", _codestream("JPGExtended.dcm"))
    with pytest.raises(ImageTooLargeError, match="at most 512 px a side, got 1024 rows x 256"):
        load_image(path, limits=IngestLimits(max_side_px=512))


def test_truncated_deep_jpeg_is_a_corrupt_file(tmp_path: Path) -> None:
    data = _codestream("JPGExtended.dcm")
    path = _write(tmp_path / "cut.jpg", data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"expected a complete 12-bit JPEG codestream"):
        load_image(path)


def test_colour_png_is_reduced_to_luma(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 1] = 255  # pure green
    image = load_image(_write(tmp_path / "green.png", raster_bytes(rgb, "PNG")))
    assert image.pixels[0, 0] == pytest.approx(0.587, abs=0.01)
    assert image.photometric == "RGB"


def test_raster_images_have_no_spacing_view_or_patient_data(tmp_path: Path) -> None:
    source = np.zeros((4, 4), dtype=np.uint8)
    study = load_study(_write(tmp_path / "a.png", raster_bytes(source, "PNG")))
    image = study.images[0]
    assert image.pixel_spacing_mm is None and image.spacing_source is None
    assert image.view_position is None
    assert study.metadata.patient_age is None and study.context.patient_sex is None


def test_raster_uids_are_valid_and_stable_across_loads(tmp_path: Path) -> None:
    source = np.zeros((4, 4), dtype=np.uint8)
    for name in ("a.png", "b.png"):
        _write(tmp_path / name, raster_bytes(source, "PNG"))
    first, second = load_study(tmp_path), load_study(tmp_path)
    assert [i.sop_instance_uid for i in first.images] == [i.sop_instance_uid for i in second.images]
    assert first.study_instance_uid == second.study_instance_uid
    assert len({i.sop_instance_uid for i in first.images}) == 2
    assert UID(first.study_instance_uid).is_valid
    assert len(first.series) == 1
