"""The viewer in Debian's headless Chromium: thumbnails of every image (the lateral on a
click), the prior side by side with linked zoom, pan and window, window presets, rotate,
flip, the magnifier, the length caliper in mm on a lab image of known spacing, the heatmap
legend and opacity. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reviewkit import PASSWORD, Seeded, write_sample_copy

from browserkit import AXE, AXE_MISSING, CHROMIUM, serious_violations, sign_in, signed_in_page

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"
SPACING_MM = 0.25
"""The lab film's Pixel Spacing; its two dots are DOTS_PX apart along a row."""
DOTS = ((100, 150), (100, 350))  # (row, column)
DOT_DISTANCE_MM = (DOTS[1][1] - DOTS[0][1]) * SPACING_MM  # 50.0 mm


def _lab_film(source: Path, target: Path, *, view: str, keyword: str, uid: str) -> None:
    """A 512 x 512 film of the sample's study with two bright dots and a known spacing under
    ``keyword`` (PixelSpacing or ImagerPixelSpacing, the other removed)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.dcmread(source)
    pixels = np.full((512, 512), 800, dtype=np.uint16)
    for row, column in DOTS:
        pixels[row - 3 : row + 4, column - 3 : column + 4] = 4000
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = pixels.shape
    for name in ("PixelSpacing", "ImagerPixelSpacing"):
        if name in ds:
            delattr(ds, name)
    setattr(ds, keyword, [SPACING_MM, SPACING_MM])
    ds.ViewPosition = view
    ds.StudyInstanceUID = uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = "PAT-LAB"
    ds.save_as(target, enforce_file_format=True)


@pytest.fixture(scope="module")
def lab_study(store: Any, seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A two-image study: a PA film with Pixel Spacing and a lateral with Imager Pixel Spacing."""
    from pydicom.uid import generate_uid

    from radloop.review.ingest import ingest_path

    folder = tmp_path_factory.mktemp("lab-study")
    uid = generate_uid()
    sample = write_sample_copy(
        folder / "sample", uid=uid, patient="PAT-LAB", date=datetime.date(2024, 2, 1)
    )
    films = folder / "films"
    films.mkdir()
    _lab_film(sample, films / "IM0001.dcm", view="PA", keyword="PixelSpacing", uid=uid)
    _lab_film(sample, films / "IM0002.dcm", view="LL", keyword="ImagerPixelSpacing", uid=uid)
    added = ingest_path(store, films).added
    assert len(added) == 1
    return str(added[0])


@pytest.fixture()
def page(server: str, browser: Any) -> Iterator[Any]:
    with signed_in_page(browser, server, "rad", PASSWORD) as opened:
        yield opened


def _open(page: Any, server: str, study: str) -> None:
    page.goto(f"{server}/studies/{study}")
    page.wait_for_selector('.viewer[data-which="current"].loaded')


CANVAS = """(which) => document.querySelector(`.viewer[data-which="${which}"] canvas.image`)"""


def _screen(page: Any, which: str, row: float, column: float) -> tuple[float, float]:
    """Where image pixel (row, column) of a viewer is on the screen (no rotation)."""
    box = page.evaluate(
        f"""(which) => {{ const c = ({CANVAS})(which); const r = c.getBoundingClientRect();
        return [r.left, r.top, r.width / c.width, r.height / c.height]; }}""",
        which,
    )
    left, top, sx, sy = box
    return left + (column + 0.5) * sx, top + (row + 0.5) * sy


def _state(page: Any, which: str) -> dict[str, Any]:
    """The transform of a viewer's image and its readout line."""
    return dict(
        page.evaluate(
            f"""(which) => {{ const c = ({CANVAS})(which);
            const r = c.closest('.viewer').querySelector('.readout').textContent;
            return {{transform: c.style.transform, readout: r}}; }}""",
            which,
        )
    )


def _dots_on_screen(page: Any) -> list[list[float]]:
    """The lab film's dots on the screen, through the current image's whole transform."""
    return list(
        page.evaluate(
            f"""(dots) => {{ const c = ({CANVAS})("current");
            const m = new DOMMatrix(getComputedStyle(c).transform);
            const r = c.parentElement.getBoundingClientRect();
            return dots.map(([row, col]) => {{
                const p = m.transformPoint(new DOMPoint(col + 0.5, row + 0.5));
                return [r.left + p.x, r.top + p.y]; }}); }}""",
            [list(d) for d in DOTS],
        )
    )


def test_thumbnails_show_every_image_and_the_lateral_on_a_click(
    server: str, page: Any, lab_study: str
) -> None:
    _open(page, server, lab_study)
    thumbs = page.locator("button.thumb")
    assert thumbs.count() == 2
    assert [thumbs.nth(i).inner_text() for i in range(2)] == ["Current · PA", "Current · LL"]
    assert thumbs.nth(0).get_attribute("aria-pressed") == "true"
    assert "PAT-LAB" in page.locator(".viewer .viewer-label").inner_text()  # whose film
    viewer = page.locator('.viewer[data-which="current"]')
    assert viewer.get_attribute("data-position") == "0"
    thumbs.nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('.viewer[data-which="current"][data-position="1"].loaded')
    assert thumbs.nth(1).get_attribute("aria-pressed") == "true"
    assert thumbs.nth(0).get_attribute("aria-pressed") == "false"
    assert "LL" in page.locator(".viewer .corner").inner_text()
    assert "Imager Pixel Spacing" in page.locator(".viewer .corner").inner_text()


def test_the_caliper_reads_a_known_distance_within_one_mm(
    server: str, page: Any, lab_study: str
) -> None:
    _open(page, server, lab_study)
    page.locator('[data-act="measure"]').focus()
    page.keyboard.press("Enter")
    assert page.locator('[data-act="measure"]').get_attribute("aria-pressed") == "true"
    (x0, y0), (x1, y1) = (_screen(page, "current", *dot) for dot in DOTS)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    text = page.locator('.viewer[data-which="current"] .measurement').inner_text()
    assert "Pixel Spacing, patient plane" in text, text
    value = float(text.split()[1])
    assert text.split()[2] == "mm"
    assert abs(value - DOT_DISTANCE_MM) <= 1.0, (value, DOT_DISTANCE_MM)
    # Rotated a quarter turn and flipped, the same two dots are still 50 mm apart.
    page.keyboard.press("l")  # the tool off clears the line
    assert page.locator('.viewer[data-which="current"] .measurement').inner_text() == ""
    page.keyboard.press("o")
    page.keyboard.press("x")
    assert "rotated 90°" in _state(page, "current")["readout"]
    assert "flipped" in _state(page, "current")["readout"]
    page.keyboard.press("l")
    ends = _dots_on_screen(page)
    assert abs(ends[0][0] - ends[1][0]) < abs(ends[0][1] - ends[1][1])  # now vertical
    page.mouse.move(*ends[0])
    page.mouse.down()
    page.mouse.move(*ends[1], steps=5)
    page.mouse.up()
    text = page.locator('.viewer[data-which="current"] .measurement').inner_text()
    assert abs(float(text.split()[1]) - DOT_DISTANCE_MM) <= 1.0, text
    # The lateral's spacing is at the detector: said to be uncorrected for magnification.
    page.locator("button.thumb").nth(1).click()
    page.wait_for_selector('.viewer[data-which="current"][data-position="1"].loaded')
    page.mouse.move(*ends[0])
    page.mouse.down()
    page.mouse.move(*ends[1], steps=5)
    page.mouse.up()
    text = page.locator('.viewer[data-which="current"] .measurement').inner_text()
    assert "uncorrected for magnification" in text, text


def test_the_prior_sits_beside_with_linked_zoom_pan_and_window(
    server: str, page: Any, seeded: Seeded, backend: str
) -> None:
    _open(page, server, seeded.ids["current"])
    toggle = page.locator('[data-act="prior"]')
    assert toggle.inner_text() == "Prior side by side"
    toggle.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('.viewer[data-which="prior"].loaded')
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.locator(".viewers.side-by-side").count() == 1
    assert "Prior 2023-06-01" in page.locator("button.thumb.prior").inner_text()
    before = _state(page, "prior")
    # Wheel and drag over the current image move the prior too.
    x, y = _screen(page, "current", 256, 256)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -200)
    page.mouse.down()
    page.mouse.move(x + 40, y + 30, steps=4)
    page.mouse.up()
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 30, y - 20, steps=3)
    page.mouse.up(button="right")
    current, prior = _state(page, "current"), _state(page, "prior")
    assert prior["transform"] != before["transform"]
    assert current["transform"] == prior["transform"]  # same size films: the same matrix
    assert current["readout"] == prior["readout"] and "W 285 L 108" in current["readout"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-prior-{backend}.png"))
    # A preset sets both; unlinked, the drag moves one only.
    page.select_option("#preset-select", "bone")
    assert "W 90 L 200" in _state(page, "current")["readout"]
    assert "W 90 L 200" in _state(page, "prior")["readout"]
    page.locator("#link-views").uncheck()
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 25, y, steps=3)
    page.mouse.up()
    assert _state(page, "current")["transform"] != _state(page, "prior")["transform"]
    page.keyboard.press("p")
    assert page.locator('.viewer[data-which="prior"]').is_hidden()
    # The prior's thumbnail brings it back beside the current film.
    page.locator("button.thumb.prior").click()
    assert page.locator('.viewer[data-which="prior"]').is_visible()
    assert page.locator("button.thumb.prior").get_attribute("aria-pressed") == "true"


def test_presets_by_key_magnifier_heatmap_legend_and_opacity(
    server: str, page: Any, seeded: Seeded, backend: str
) -> None:
    _open(page, server, seeded.ids["urgent"])
    expected = {"1": "W 255 L 128", "2": "W 170 L 95", "3": "W 150 L 165", "4": "W 90 L 200"}
    for key, readout in expected.items():
        page.keyboard.press(key)
        assert readout in _state(page, "current")["readout"], (key, readout)
    assert page.locator("#preset-select").input_value() == "bone"
    page.keyboard.press("m")
    assert page.locator('[data-act="magnifier"]').get_attribute("aria-pressed") == "true"
    x, y = _screen(page, "current", 256, 256)
    page.mouse.move(x, y)
    page.mouse.move(x + 5, y + 5)
    loupe = page.locator('.viewer[data-which="current"] canvas.loupe')
    assert loupe.is_visible()
    lit = page.evaluate(
        """() => { const c = document.querySelector('.viewer[data-which="current"] canvas.loupe');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert lit > 1000
    page.keyboard.press("m")
    page.mouse.move(x + 10, y + 10)
    assert loupe.is_hidden()
    legend = page.locator("#heatmap-legend")
    assert legend.is_hidden()
    page.select_option("#heatmap-select", "pneumothorax")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-heatmap-{backend}.png"))
    assert legend.is_visible()
    assert "where the verifier looked" in legend.inner_text()
    assert "not a diagnosis" in legend.inner_text()
    overlay = page.locator('.viewer[data-which="current"] img.overlay')
    assert overlay.is_visible()
    page.locator("#heatmap-opacity").fill("30")
    assert overlay.evaluate("(o) => getComputedStyle(o).opacity") == "0.3"
    assert page.get_by_role("slider", name="Opacity").count() == 1
    assert page.get_by_role("combobox", name=re.compile("^Window")).count() == 1


def test_the_caliper_says_px_and_why_on_a_film_without_spacing(
    server: str, page: Any, store: Any, tmp_path: Path
) -> None:
    from PIL import Image as PILImage

    from radloop.review.ingest import ingest_path

    film = np.full((300, 400), 90, dtype=np.uint8)
    film[100:200, 100:300] = 200
    PILImage.fromarray(film).save(tmp_path / "film.png")
    added = ingest_path(store, tmp_path / "film.png").added
    _open(page, server, added[0])
    assert "spacing unknown" in page.locator(".viewer .corner").inner_text()
    page.keyboard.press("l")
    (x0, y0), (x1, y1) = (_screen(page, "current", 150, c) for c in (100, 300))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=3)
    page.mouse.up()
    text = page.locator('.viewer[data-which="current"] .measurement').inner_text()
    assert text.startswith("Length 200 px (not mm: "), text
    assert "no pixel spacing" in text, text


def test_spacing_is_read_from_a_kept_file_or_zip_member_and_said_absent_otherwise(
    tmp_path: Path,
) -> None:
    import zipfile

    from pydicom.uid import generate_uid

    from radloop.review.spacing import spacing_of

    sample = write_sample_copy(
        tmp_path / "s", uid=generate_uid(), patient="P", date=datetime.date(2024, 1, 1)
    )
    film = tmp_path / "lateral.dcm"
    _lab_film(sample, film, view="LL", keyword="ImagerPixelSpacing", uid=generate_uid())
    read = spacing_of(film)
    assert read == {
        "spacing_mm": [SPACING_MM, SPACING_MM],
        "spacing_source": "ImagerPixelSpacing",
        "spacing_note": None,
    }
    with zipfile.ZipFile(tmp_path / "kept.zip", "w") as archive:
        archive.write(film, "study/lateral.dcm")
    assert spacing_of(tmp_path / "kept.zip" / "study" / "lateral.dcm") == read
    (tmp_path / "film.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a dicom")
    assert spacing_of(tmp_path / "film.png")["spacing_mm"] is None
    assert "not a DICOM file" in spacing_of(tmp_path / "film.png")["spacing_note"]
    assert "not kept" in spacing_of(tmp_path / "gone" / "x.dcm")["spacing_note"]


@pytest.mark.skipif(not AXE.is_file(), reason=AXE_MISSING)
def test_the_tools_in_use_have_no_serious_accessibility_violation(
    server: str, browser: Any, seeded: Seeded
) -> None:
    """The study page with the prior beside, a heatmap and its legend, the magnifier and
    the caliper on: axe-core finds no serious or critical violation."""
    context = browser.new_context(viewport={"width": 1500, "height": 900}, bypass_csp=True)
    page = context.new_page()
    sign_in(page, server, "rad", PASSWORD)
    _open(page, server, seeded.ids["current"])
    page.keyboard.press("p")
    page.wait_for_selector('.viewer[data-which="prior"].loaded')
    page.select_option("#heatmap-select", "pleural_effusion")
    page.keyboard.press("m")
    page.keyboard.press("l")
    x, y = _screen(page, "current", 200, 200)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y, steps=3)
    page.mouse.up()
    assert "mm" in page.locator('.viewer[data-which="current"] .measurement').inner_text()
    assert serious_violations(page) == []
    context.close()
