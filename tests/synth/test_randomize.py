"""Imaging physics (heel, grid, glare, LUT families, multiscale) and domain randomisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from radloop.errors import InputError
from radloop.lab.synth.imaging import (
    LUTS,
    Exposure,
    _burn_in,
    _field,
    detect,
    expose,
    grid_transmission,
    heel_ramp,
    tone,
)
from radloop.lab.synth.projector import View
from radloop.lab.synth.randomize import (
    PROFILE_RANGES,
    ViewAugment,
    random_profile,
    random_view_augment,
)
from radloop.lab.synth.variation import PROFILES, SiteProfile

STANDARD = PROFILES["standard"]
# No noise, no scatter: what the physics alone does to the signal.
CLEAN = dataclasses.replace(STANDARD, photons=1e12, electronic_noise=0.0, scatter=0.0)


def _expose_before_physics(
    line_integral: np.ndarray,
    site: SiteProfile,
    rng: np.random.Generator,
    *,
    pixel_mm: float,
    view: View,
    limits: tuple[int, int, int, int] | None = None,
) -> Exposure:
    """``expose`` as it was before the heel, grid, detector, LUT and multiscale options."""
    shape = (int(line_integral.shape[0]), int(line_integral.shape[1]))
    primary = np.exp(-line_integral.astype(np.float64))
    if site.scatter > 0:
        step = max(1, round(8.0 / pixel_mm))
        coarse = primary[::step, ::step]
        broad = ndimage.gaussian_filter(coarse, 60.0 / (pixel_mm * step), mode="nearest")
        broad = ndimage.zoom(broad, (shape[0] / broad.shape[0], shape[1] / broad.shape[1]), order=1)
        primary = primary + site.scatter * broad[: shape[0], : shape[1]]
    blurred = ndimage.gaussian_filter(primary, site.blur_mm / pixel_mm, mode="nearest")
    quanta = site.photons * pixel_mm**2
    noisy = blurred + rng.standard_normal(shape) * np.sqrt(np.maximum(blurred, 0) / quanta)
    noisy += rng.standard_normal(shape) * site.electronic_noise
    log = -np.log(np.clip(noisy, 1e-5, None))
    field = _field(rng, limits or (0, 0, shape[0], shape[1]), site.collimation)
    r0, c0, r1, c1 = field
    low, high = np.percentile(log[r0:r1, c0:c1], [1.0, 99.5])
    x = (log - low) / max(float(high - low), 1e-6)
    if site.edge_gain > 0:
        x = x + site.edge_gain * (x - ndimage.gaussian_filter(x, site.edge_radius_mm / pixel_mm))
    y = 1.0 / (1.0 + np.exp(-site.contrast * (x - 0.5)))
    y0 = 1.0 / (1.0 + np.exp(site.contrast * 0.5))
    y = np.clip((y - y0) / (1.0 - 2 * y0), 0.0, 1.0) ** site.gamma
    display = np.full(shape, 0.96, dtype=np.float32)
    display[r0:r1, c0:c1] = y[r0:r1, c0:c1]
    display = _burn_in(display, site, view, field)
    top = (1 << site.bits_stored) - 1
    levels = np.round(display * top).astype(np.uint16)
    stored = (top - levels).astype(np.uint16) if site.photometric == "MONOCHROME1" else levels
    return Exposure(display=(levels / top).astype(np.float32), stored=stored, field=field)


def _chest(n: int) -> np.ndarray:
    """A chest-like line integral: body ellipse, two darker lungs, a dense mediastinum."""
    r, c = np.mgrid[0:n, 0:n] / (n - 1.0) * 2.0 - 1.0
    body = np.clip(1.0 - (r / 0.95) ** 2 - (c / 0.85) ** 2, 0.0, None)
    lungs = sum(np.clip(1.0 - ((r + 0.1) / 0.6) ** 2 - ((c - s) / 0.3) ** 2, 0.0, None)
                for s in (-0.4, 0.4))  # fmt: skip
    medi = np.clip(1.0 - (r / 0.9) ** 2 - (c / 0.15) ** 2, 0.0, None)
    ripple = 0.05 * np.sin(9 * r) * np.cos(7 * c)
    return np.asarray(2.5 * body - 1.2 * lungs + 0.8 * medi + ripple + 0.1, dtype=np.float32)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_renders_bit_identically_with_the_new_physics_off(name: str) -> None:
    site = PROFILES[name]
    line = _chest(160)
    views = [site.view, View.LL] if site.lateral else [site.view]
    for view in views:
        for limits in (None, (8, 12, 150, 148)):
            new = expose(line, site, np.random.default_rng(11), pixel_mm=2.25, view=view,
                         limits=limits)  # fmt: skip
            old = _expose_before_physics(line, site, np.random.default_rng(11), pixel_mm=2.25,
                                         view=view, limits=limits)  # fmt: skip
            assert new.field == old.field
            assert np.array_equal(new.display, old.display)
            assert np.array_equal(new.stored, old.stored)


def test_heel_ramp_drops_by_the_given_fraction_towards_the_anode() -> None:
    ramp = heel_ramp(101, 0.2)
    assert ramp[0] == pytest.approx(0.8) and ramp[-1] == pytest.approx(1.0)
    assert np.all(np.diff(np.log(ramp)) > 0)
    assert np.allclose(np.diff(np.log(ramp)), np.log(1.25) / 100)  # linear in the log
    flipped = heel_ramp(101, -0.2)
    assert flipped[0] == pytest.approx(1.0) and flipped[-1] == pytest.approx(0.8)
    with pytest.raises(InputError):
        heel_ramp(10, 1.0)


def test_heel_shades_a_flat_exposure_along_the_rows() -> None:
    flat = np.ones((128, 128), np.float32)
    for heel in (0.1, 0.3):
        site = dataclasses.replace(CLEAN, heel=heel)
        intensity = detect(flat, site, np.random.default_rng(0), pixel_mm=2.8).mean(axis=1)
        # Anode (top) end darker by ``heel`` than the cathode (bottom) end, up to the blur.
        assert intensity[0] / intensity[-1] == pytest.approx(1.0 - heel, rel=0.01)
        assert np.all(np.diff(intensity) >= 0)
    # On the display (bright = attenuating) the anode end of a flat, noisy exposure is brighter.
    noisy = dataclasses.replace(STANDARD, heel=0.25, collimation=(0.0, 0.0, 0.0, 0.0))
    display = expose(flat, noisy, np.random.default_rng(1), pixel_mm=2.8, view=View.PA,
                     burn_in=False).display  # fmt: skip
    rows = display.mean(axis=1)
    assert rows[:20].mean() > rows[-20:].mean() + 0.3
    assert np.polyfit(np.arange(128), rows, 1)[0] < 0


def test_a_grid_removes_scatter_and_raises_the_contrast_of_a_block() -> None:
    phantom = np.ones((128, 128), np.float32)
    phantom[44:84, 44:84] = 2.0
    t_primary, t_scatter = grid_transmission(10.0)
    assert 0.6 < t_primary < 0.75 and 0.05 < t_scatter < 0.2
    assert grid_transmission(6.0)[1] > grid_transmission(15.0)[1]
    assert grid_transmission(0.0) == (1.0, 1.0)

    def measure(site: SiteProfile) -> tuple[float, float]:
        image = detect(phantom, site, np.random.default_rng(2), pixel_mm=2.8)
        block, ground = image[54:74, 54:74].mean(), image[5:25, 5:25].mean()
        return float((ground - block) / ground), float(image.mean())

    scattered = dataclasses.replace(CLEAN, scatter=0.4)
    no_grid, with_grid = measure(scattered), measure(dataclasses.replace(scattered, grid_ratio=10))
    ideal = measure(CLEAN)
    assert no_grid[0] < with_grid[0] < ideal[0]
    # The scatter's share of the signal falls by about T_s / T_p.
    share = (no_grid[1] - ideal[1]) / no_grid[1], (with_grid[1] - ideal[1]) / with_grid[1]
    assert share[1] < 0.5 * share[0]
    with pytest.raises(InputError):
        grid_transmission(-1.0)


@pytest.mark.parametrize("lut", LUTS)
def test_every_lut_maps_into_the_unit_range_monotonically(lut: str) -> None:
    site = dataclasses.replace(STANDARD, lut=lut, gamma=1.3)
    x = np.linspace(-0.3, 1.3, 401)
    y = tone(x, site, inside=np.random.default_rng(3).beta(2, 3, 5000))
    assert y.min() >= 0.0 and y.max() <= 1.0 and y[0] == 0.0 and y[-1] == 1.0
    assert np.all(np.diff(y) >= 0)
    # Through the whole chain: a ramp of line integral gives a non-decreasing display.
    ramp = np.tile(np.linspace(0.2, 4.0, 160, dtype=np.float32), (64, 1))
    clean = dataclasses.replace(CLEAN, lut=lut, edge_gain=0.0, collimation=(0.0, 0.0, 0.0, 0.0))
    display = expose(ramp, clean, np.random.default_rng(4), pixel_mm=2.0, view=View.PA,
                     burn_in=False).display  # fmt: skip
    assert display.min() >= 0.0 and display.max() <= 1.0
    assert np.all(np.diff(display[32]) >= 0) and display[32, -1] - display[32, 0] > 0.9


def test_the_lut_families_differ() -> None:
    x = np.linspace(0.0, 1.0, 101)
    skewed = np.random.default_rng(7).beta(2, 5, 5000)  # equalisation needs a skewed histogram
    curves = [tone(x, dataclasses.replace(STANDARD, lut=lut), skewed) for lut in LUTS]
    for i in range(len(curves)):
        for j in range(i + 1, len(curves)):
            assert np.abs(curves[i] - curves[j]).max() > 0.02


def test_dr_glare_spreads_a_spot_further_than_the_gaussian() -> None:
    spot = np.full((96, 96), 10.0, np.float32)
    spot[46:50, 46:50] = 0.0  # an unattenuated hole in a dense plate
    plate = np.exp(-10.0)
    gauss = detect(spot, CLEAN, np.random.default_rng(0), pixel_mm=1.0) - plate
    dr = detect(spot, dataclasses.replace(CLEAN, detector="dr"), np.random.default_rng(0),
                pixel_mm=1.0) - plate  # fmt: skip
    far = (48, 56)  # 8 mm from the hole: only the glare tail reaches it
    assert gauss[far] < 1e-9 < 1e-4 < dr[far]
    assert dr[48, 48] < gauss[48, 48]  # the tail takes its share from the core
    assert dr.sum() == pytest.approx(gauss.sum(), rel=1e-3)  # and keeps the total


def test_multiscale_adds_fine_detail() -> None:
    line = _chest(128) + np.random.default_rng(5).normal(0, 0.05, (128, 128)).astype(np.float32)
    site = dataclasses.replace(CLEAN, edge_gain=0.0, collimation=(0.0, 0.0, 0.0, 0.0))

    def fine(s: SiteProfile) -> float:
        shown = expose(line, s, np.random.default_rng(6), pixel_mm=2.8, view=View.PA,
                       burn_in=False).display  # fmt: skip
        return float(np.std(ndimage.laplace(shown.astype(np.float64))))

    assert fine(dataclasses.replace(site, multiscale=1.0)) > 1.3 * fine(site)


def test_bad_physics_settings_are_refused() -> None:
    line = _chest(64)
    for bad in ({"lut": "gamma"}, {"detector": "ccd"}, {"multiscale": -1.0}, {"heel": 1.5},
                {"grid_ratio": -2.0}):  # fmt: skip
        with pytest.raises(InputError):
            expose(line, dataclasses.replace(STANDARD, **bad), np.random.default_rng(0),
                   pixel_mm=5.6, view=View.PA)  # fmt: skip


def _within(site: SiteProfile) -> list[str]:
    """The fields of a randomised profile outside ``PROFILE_RANGES``."""
    r = PROFILE_RANGES
    checks = {
        "kvp": r["kvp"].holds(site.kvp) and site.kvp == round(site.kvp),
        "bone_gain": 1.2 <= site.bone_gain <= 2.6,
        "heel": abs(site.heel) <= 0.3,
        "grid_ratio": site.grid_ratio == 0.0 or r["grid_ratio"].holds(site.grid_ratio),
        "collimation_top": r["collimation_top"].holds(site.collimation[0]),
        "collimation": all(r["collimation_side"].holds(m) for m in site.collimation[1:]),
    }
    for name in ("photons", "electronic_noise", "scatter", "blur_mm", "detector", "lut",
                 "contrast", "gamma", "edge_gain", "edge_radius_mm", "multiscale",
                 "photometric", "bits_stored", "marker", "burned_text"):  # fmt: skip
        checks[name] = r[name].holds(getattr(site, name))
    return [name for name, ok in checks.items() if not ok]


def test_random_profiles_are_valid_and_expose() -> None:
    rng = np.random.default_rng(20)
    line = _chest(96)
    seen: dict[str, set[object]] = {"lut": set(), "detector": set(), "grid": set()}
    photons = []
    for _ in range(200):
        site = random_profile(rng)
        assert _within(site) == []
        assert (site.view, site.sid_mm, site.size) == (
            STANDARD.view,
            STANDARD.sid_mm,
            STANDARD.size,
        )
        exposure = expose(line, site, rng, pixel_mm=3.75, view=site.view)
        assert np.isfinite(exposure.display).all()
        assert exposure.display.min() >= 0.0 and exposure.display.max() <= 1.0
        assert int(exposure.stored.max()) < 1 << site.bits_stored
        seen["lut"].add(site.lut)
        seen["detector"].add(site.detector)
        seen["grid"].add(site.grid_ratio > 0)
        photons.append(site.photons)
    assert seen == {"lut": set(LUTS), "detector": {"gaussian", "dr"}, "grid": {False, True}}
    assert max(photons) / min(photons) > 30  # about two orders of magnitude


def test_random_profiles_follow_their_seed_and_base() -> None:
    a, b = random_profile(np.random.default_rng(1)), random_profile(np.random.default_rng(1))
    assert a == b
    assert a != random_profile(np.random.default_rng(2))
    portable = random_profile(np.random.default_rng(1), base=PROFILES["portable"])
    assert (portable.view, portable.sid_mm, portable.institution) == (
        View.AP, PROFILES["portable"].sid_mm, PROFILES["portable"].institution)  # fmt: skip


def _square_scene(n: int = 128) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    image = np.full((n, n), 0.2, np.float32)
    image[50:80, 30:61] = 0.9
    mask = np.zeros((n, n), bool)
    mask[50:80, 30:61] = True
    return image, {"block": mask}


def test_masks_move_exactly_with_the_image_under_translation() -> None:
    image, masks = _square_scene()
    shift_only = ViewAugment(p_affine=1.0, scale=(1.0, 1.0), rotation_deg=0.0, translate=0.08,
                             p_markers=0.0, p_intensity=0.0, p_occlusion=0.0, p_blur=0.0,
                             p_sharpen=0.0, p_noise=0.0)  # fmt: skip
    offsets = set()
    for seed in range(12):
        out, moved = random_view_augment(image, masks, np.random.default_rng(seed),
                                         augment=shift_only)  # fmt: skip
        block = moved["block"]
        assert block.dtype == np.bool_ and block.sum() == masks["block"].sum()
        rows, cols = np.nonzero(block)
        dr, dc = int(rows.min()) - 50, int(cols.min()) - 30
        assert np.array_equal(block, np.roll(masks["block"], (dr, dc), axis=(0, 1)))
        assert abs(dr) <= 11 and abs(dc) <= 11
        # The image's block moved by the same shift, to the nearest pixel: its centroid (exact
        # under bilinear interpolation) is within half a pixel of the mask's ...
        window = np.s_[rows.min() - 3 : rows.max() + 4, cols.min() - 3 : cols.max() + 4]
        weight = out[window] - 0.2  # the padded border never reaches this window
        grid = np.mgrid[window]
        moved_by = [float((g * weight).sum() / weight.sum()) for g in grid]
        assert abs(moved_by[0] - (64.5 + dr)) <= 0.5 and abs(moved_by[1] - (45.0 + dc)) <= 0.5
        # ... and thresholding it gives the mask, but for the blended corner pixels.
        assert ((out > 0.55) != block).sum() <= 4
        offsets.add((dr, dc))
    assert len(offsets) > 6


def test_masks_follow_rotation_and_zoom_and_the_border_is_filled() -> None:
    image, masks = _square_scene()
    geometry = ViewAugment(p_affine=1.0, scale=(0.75, 0.8), p_markers=0.0, p_intensity=0.0,
                           p_occlusion=0.0, p_blur=0.0, p_sharpen=0.0, p_noise=0.0)  # fmt: skip
    for seed in range(6):
        out, moved = random_view_augment(image, masks, np.random.default_rng(seed),
                                         augment=geometry)  # fmt: skip
        block, seen = moved["block"], out > 0.55
        assert (block & seen).sum() / (block | seen).sum() > 0.9
        assert 0.5 < block.sum() / masks["block"].sum() < 0.7  # area scales by ~0.75²-0.8²
        # The zoomed-out border: smooth tissue at the border level (0.2, lifted to 0.3).
        for corner in (out[:4, :4], out[-4:, -4:]):
            assert abs(float(corner.mean()) - 0.3) < 0.1 and float(np.ptp(corner)) < 0.03


def test_full_augmentation_keeps_types_ranges_and_input() -> None:
    rng = np.random.default_rng(9)
    image = rng.random((96, 112)).astype(np.float32)
    masks = {"left": image > 0.5, "right": (image > 0.8).astype(np.uint8)}
    before = image.copy()
    changed = 0
    for _ in range(40):
        out, moved = random_view_augment(image, masks, rng)
        assert out.dtype == np.float32 and out.shape == image.shape
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
        assert set(moved) == {"left", "right"}
        assert all(m.dtype == np.bool_ and m.shape == image.shape for m in moved.values())
        changed += not np.array_equal(out, image)
    assert np.array_equal(image, before) and changed >= 35
    again = random_view_augment(image, masks, np.random.default_rng(3))
    once = random_view_augment(image, masks, np.random.default_rng(3))
    assert np.array_equal(again[0], once[0])
    with pytest.raises(InputError):
        random_view_augment(image, {"x": np.zeros((5, 5), bool)}, rng)
    with pytest.raises(InputError):
        random_view_augment(np.zeros((4, 4, 3), np.float32), {}, rng)
