"""Decompression bombs: the decoded size comes from the header and is checked before a codec
runs, per image and per study, in files, folders and zips and through the CLI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless
from studykit import make_dataset, raster_bytes, save

from radloop.errors import DecodedSizeError, InputError
from radloop.study import IngestLimits, load_image, load_studies, load_study

_BOMB_MESSAGE = (
    r"expected pixel data that decodes to at most 64\.0 MiB .* an image, "
    r"got 9999 rows x 9999 columns x 1 frame\(s\) x 1 sample\(s\) x 16 bits = 190\.7 MiB"
    r".* Raise IngestLimits\.max_decoded_bytes_per_image"
)


def _bomb(path: Path, *, instance: int = 1) -> Path:
    """A few hundred bytes whose header claims 9,999 x 9,999 16-bit pixels (RLE Lossless)."""
    ds = make_dataset(np.zeros((2, 2), dtype=np.uint16), instance=instance)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows, ds.Columns = 9999, 9999
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    return save(ds, path)


def test_a_dicom_that_claims_9999_squared_16_bit_pixels_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    path = _bomb(tmp_path / "bomb.dcm")
    assert path.stat().st_size < 4096
    with pytest.raises(DecodedSizeError, match=_BOMB_MESSAGE):
        load_study(path)
    with pytest.raises(InputError, match=r"bomb\.dcm: expected pixel data that decodes"):
        load_image(path)


def test_a_zip_of_bombs_is_refused_at_its_first_member(tmp_path: Path) -> None:
    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(5):
            zf.write(_bomb(tmp_path / "src" / f"IM{k}.dcm", instance=k + 1), f"study/IM{k}.dcm")
    with pytest.raises(DecodedSizeError, match=r"bombs\.zip/study/IM0\.dcm: " + _BOMB_MESSAGE):
        load_studies(archive)


def test_a_study_past_its_decoded_budget_is_refused_at_the_image_that_crosses_it(
    tmp_path: Path,
) -> None:
    for k in (1, 2):
        save(make_dataset(np.zeros((64, 80), np.uint16), instance=k), tmp_path / f"IM{k}.dcm")
    limits = IngestLimits(max_decoded_bytes_per_image=12_000, max_decoded_bytes_per_study=16_000)
    with pytest.raises(
        DecodedSizeError,
        match=r"IM2\.dcm: expected a study whose images decode to at most .*\(16,000 bytes\) "
        r"in all, got .*\(20,480 bytes\) with this image"
        r".*IngestLimits\.max_decoded_bytes_per_study",
    ):
        load_studies(tmp_path, limits=limits)
    generous = IngestLimits(max_decoded_bytes_per_study=20_480)
    assert len(load_study(tmp_path, limits=generous).images) == 2


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_png_and_jpeg_are_charged_width_x_height_x_bands_from_the_header(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"colour.{fmt.lower()}"
    path.write_bytes(raster_bytes(np.zeros((64, 80, 3), dtype=np.uint8), fmt))
    with pytest.raises(
        DecodedSizeError, match=r"got 64 rows x 80 columns x 3 band\(s\) x 8 bits = .*15,360 bytes"
    ):
        load_image(path, limits=IngestLimits(max_decoded_bytes_per_image=15_359))
    assert load_image(path, limits=IngestLimits(max_decoded_bytes_per_image=15_360)).bits == 8


def test_radloop_ingest_of_a_zip_of_bombs_exits_2_with_one_line_and_low_memory(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(20):
            zf.write(_bomb(tmp_path / "src" / f"IM{k}.dcm", instance=k + 1), f"IM{k:02d}.dcm")
    # VmHWM is this process's own peak (getrusage's ru_maxrss would carry over the peak of the
    # forking test process, which Linux keeps across exec).
    script = (
        "import re, sys\n"
        "from radloop.cli import main\n"
        "try:\n"
        "    main(['ingest', sys.argv[1]])\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print('peak-rss-kb', re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "decodes to at most" in done.stderr
    peak_kb = int(done.stdout.split("peak-rss-kb")[-1])
    assert peak_kb < 500 * 1024
