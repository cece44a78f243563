"""Reading DICOM: transfer syntaxes, grey-level transforms (PS3.3 C.11) and spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless
from studykit import bundled, make_dataset, raster_bytes, save

from radloop.study import Image, load_image

REFERENCE = "MR_small.dcm"  # 64 x 64 MONOCHROME2, 16 bit, with a window


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(load_image(path).pixels)


def test_pixels_are_float32_in_unit_range_with_bits_stored_kept(dicom_file: Path) -> None:
    image = load_image(dicom_file)
    assert image.pixels.dtype == np.float32
    assert image.pixels.shape == (32, 48)
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
    assert image.bits == 12
    assert not image.pixels.flags.writeable


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_lossless_syntaxes_decode_to_the_same_pixels_as_uncompressed(name: str) -> None:
    np.testing.assert_array_equal(_pixels(bundled(name)), _pixels(bundled(REFERENCE)))


def test_jpeg_lossless_process_14_decodes_like_rle() -> None:
    np.testing.assert_array_equal(
        _pixels(bundled("SC_rgb_jpeg_gdcm.dcm")), _pixels(bundled("SC_rgb_rle.dcm"))
    )


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("SC_rgb_dcmtk_+eb+cy+n1.dcm", (100, 100)),  # JPEG baseline, YBR_FULL colour
        ("JPGExtended.dcm", (1024, 256)),  # JPEG extended, 12 bit
        ("JPEGLSNearLossless_16.dcm", (50, 10)),  # JPEG-LS near-lossless
        ("JPEG2000.dcm", (1024, 256)),  # JPEG 2000 lossy
        ("693_J2KI.dcm", (512, 512)),  # JPEG 2000 with rescale and window
    ],
)
def test_compressed_syntaxes_decode_to_a_grey_image(name: str, shape: tuple[int, int]) -> None:
    image = load_image(bundled(name))
    assert image.shape == shape
    assert image.pixels.max() > image.pixels.min()


def test_colour_dicom_becomes_bt601_luma(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    ds = make_dataset(rgb, bits_stored=8, photometric="RGB", SamplesPerPixel=3)
    ds.PlanarConfiguration = 0
    image = load_image(save(ds, tmp_path / "red.dcm"))
    assert image.pixels[0, 0] == pytest.approx(0.299, abs=1e-4)
    assert image.photometric == "RGB"


def test_grey_jpeg_baseline_in_dicom_matches_its_source_within_jpeg_error(
    tmp_path: Path,
) -> None:
    source = np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)
    ds = make_dataset(source, bits_stored=8)
    ds.PixelData = encapsulate([raster_bytes(source, "JPEG", quality=95)])
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    pixels = _pixels(save(ds, tmp_path / "baseline.dcm"))
    assert np.abs(pixels - source / 255.0).max() < 0.05


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_images_we_compress_ourselves_round_trip_exactly(tmp_path: Path, syntax: str) -> None:
    plain = save(make_dataset(), tmp_path / "plain.dcm")
    ds = make_dataset()
    ds.compress(syntax)
    compressed = save(ds, tmp_path / "compressed.dcm")
    assert pydicom.dcmread(compressed).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(_pixels(compressed), _pixels(plain))


def test_monochrome1_is_inverted_so_bone_is_bright(tmp_path: Path) -> None:
    # In MONOCHROME1 the lowest stored value is white (PS3.3 C.7.6.3.1.2): bone is stored low.
    stored = np.array([[0, 4095]], dtype=np.uint16).repeat(4, axis=0)
    mono1 = load_image(save(make_dataset(stored, photometric="MONOCHROME1"), tmp_path / "1.dcm"))
    mono2 = load_image(save(make_dataset(stored, photometric="MONOCHROME2"), tmp_path / "2.dcm"))
    assert mono1.pixels[0, 0] == 1.0 and mono1.pixels[0, 1] == 0.0
    np.testing.assert_array_equal(mono1.pixels, 1.0 - mono2.pixels)


def test_monochrome1_is_inverted_after_the_window(tmp_path: Path) -> None:
    stored = np.array([[100, 1000, 1900]], dtype=np.uint16).repeat(2, axis=0)
    ds = make_dataset(stored, photometric="MONOCHROME1", WindowCenter=1000, WindowWidth=1001)
    pixels = _pixels(save(ds, tmp_path / "w.dcm"))
    assert pixels[0, 0] == 1.0 and pixels[0, 2] == 0.0
    assert pixels[0, 1] == pytest.approx(0.5, abs=0.01)


def test_rescale_slope_and_intercept_are_applied_before_the_window(tmp_path: Path) -> None:
    # 600 stored x 2 - 100 = 1100 output units: the centre of a window on 1100.
    stored = np.array([[0, 600, 2000]], dtype=np.uint16).repeat(2, axis=0)
    rescaled = make_dataset(
        stored, RescaleSlope=2, RescaleIntercept=-100, WindowCenter=1100, WindowWidth=201
    )
    pixels = _pixels(save(rescaled, tmp_path / "rescaled.dcm"))
    assert pixels[0, 1] == pytest.approx(0.5, abs=0.01)
    assert pixels[0, 0] == 0.0 and pixels[0, 2] == 1.0


def test_voi_window_clips_outside_values_and_maps_the_centre_to_mid_grey(tmp_path: Path) -> None:
    stored = np.array([[0, 749, 1000, 1251, 4095]], dtype=np.uint16).repeat(2, axis=0)
    ds = make_dataset(stored, WindowCenter=1000, WindowWidth=500)
    pixels = _pixels(save(ds, tmp_path / "window.dcm"))
    assert pixels[0, 0] == pixels[0, 1] == 0.0
    assert pixels[0, 3] == pixels[0, 4] == 1.0
    assert pixels[0, 2] == pytest.approx(0.5, abs=0.01)


def test_voi_lut_sequence_is_preferred_and_scaled_by_its_output_range(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 8]  # 4 entries from stored value 0, 8-bit output
    lut.LUTData = [0, 50, 200, 250]
    lut["LUTData"].VR = "US"
    stored = np.array([[0, 1, 2, 3]], dtype=np.uint16).repeat(2, axis=0)
    ds = make_dataset(stored, WindowCenter=2, WindowWidth=1)
    ds.VOILUTSequence = Sequence([lut])
    pixels = _pixels(save(ds, tmp_path / "lut.dcm"))
    np.testing.assert_allclose(pixels[0], [0.0, 0.2, 0.8, 1.0], atol=1e-6)


def test_without_a_window_the_full_data_range_is_shown(tmp_path: Path) -> None:
    stored = np.array([[1000, 1500, 2000]], dtype=np.uint16).repeat(2, axis=0)
    pixels = _pixels(save(make_dataset(stored), tmp_path / "nowindow.dcm"))
    np.testing.assert_allclose(pixels[0], [0.0, 0.5, 1.0])


def test_spacing_comes_from_pixel_spacing_when_both_tags_are_present(tmp_path: Path) -> None:
    ds = make_dataset(PixelSpacing=[0.139, 0.14], ImagerPixelSpacing=[0.15, 0.16])
    image: Image = load_image(save(ds, tmp_path / "both.dcm"))
    assert image.pixel_spacing_mm == (0.139, 0.14)
    assert image.spacing_source == "PixelSpacing"


def test_spacing_falls_back_on_imager_pixel_spacing_and_says_so(tmp_path: Path) -> None:
    ds = make_dataset(ImagerPixelSpacing=[0.15, 0.16])
    image = load_image(save(ds, tmp_path / "imager.dcm"))
    assert image.pixel_spacing_mm == (0.15, 0.16)
    assert image.spacing_source == "ImagerPixelSpacing"


def test_spacing_is_unknown_when_neither_tag_is_present(dicom_file: Path) -> None:
    image = load_image(dicom_file)
    assert image.pixel_spacing_mm is None and image.spacing_source is None


def test_image_keeps_its_uids_view_and_photometric(dicom_file: Path) -> None:
    image = load_image(dicom_file)
    ds = pydicom.dcmread(dicom_file)
    assert image.sop_instance_uid == ds.SOPInstanceUID
    assert image.series_instance_uid == ds.SeriesInstanceUID
    assert image.view_position == "PA"
    assert image.photometric == "MONOCHROME2"
    assert image.source == dicom_file
