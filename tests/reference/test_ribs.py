"""Rib fractures for the lung network: the lab's healing fracture, inserting it into line
integrals, and the resolution it needs (training and runtime: test_lungs.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("scipy")

from radloop.lab.synth.anatomy import Anatomy  # noqa: E402
from radloop.lab.training.reference.ribs_train import insert_fractures  # noqa: E402


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    from radloop.lab.synth import AnatomySourceMissingError, load_anatomy

    try:
        return load_anatomy()
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")


def test_the_lab_breaks_a_lateral_arc_and_draws_its_callus_along_the_rib(anatomy: Anatomy) -> None:
    from radloop.lab.synth.findings import callus_spheres, fracture_site
    from radloop.lab.synth.regions import regions

    midline = regions(anatomy).midline_x
    for seed in range(6):
        rng = np.random.default_rng(seed)
        site = fracture_site(anatomy, rng)
        assert site is not None and 4 <= site.number <= 9
        lateral = np.abs(site.positions[:, 0] - midline)
        assert abs(site.at[0] - midline) >= np.percentile(lateral, 84)
        balls = callus_spheres(site.positions, site.at, rng)
        assert len(balls) == 2
        for ball in balls:
            assert 4.0 <= ball.radius_mm <= 7.0 and 300.0 <= ball.delta_hu <= 600.0
            # On the rib: each centre within a radius of the break, the break between them.
            assert np.linalg.norm(np.asarray(ball.centre) - site.at) < ball.radius_mm
        middle = (np.asarray(balls[0].centre) + np.asarray(balls[1].centre)) / 2
        np.testing.assert_allclose(middle, site.at, atol=1e-3)


def test_a_lab_fracture_shows_on_the_radiograph_where_its_truth_says(anatomy: Anatomy) -> None:
    from radloop.lab.synth import make_study
    from radloop.lab.synth.variation import profile

    site = dataclasses.replace(profile("standard"), lateral=False)
    with_it = make_study(anatomy, 5, 0, site=site, codes=["rib_fracture"])
    without = make_study(anatomy, 5, 0, site=site, codes=[])
    view, plain = next(iter(with_it.views.values())), next(iter(without.views.values()))
    change = np.abs(view.exposure.display - plain.exposure.display)
    finding = with_it.truth["findings"][0]
    assert 8.0 <= finding["details"]["callus_mm"] <= 14.0
    mask = view.masks[finding["id"]]
    # Several times the 0.005-0.011 of the break alone (experiments/rib_fracture), and there.
    assert change.max() > 0.03
    assert change[mask].max() == change.max()


def test_inserted_fractures_add_attenuation_at_the_rib_they_name(anatomy: Anatomy) -> None:
    from radloop.lab.synth import make_study
    from radloop.lab.synth.variation import profile

    site = dataclasses.replace(profile("standard"), lateral=False)
    study = make_study(anatomy, 7, 1, site=site, codes=[])
    view = next(iter(study.views.values()))
    line = view.line_integral
    out, placed = insert_fractures(
        line, study.phantom, view.geometry, np.random.default_rng(3), count=2
    )
    assert len(placed) == 2
    added = out - line
    assert added.min() >= 0.0 and added.max() > 0.0
    for row, col, diameter, magnification in placed:
        assert 8.0 <= diameter <= 14.0 and 1.0 < magnification < 1.3
        assert added[round(row), round(col)] > 0.25 * added.max()
    lungs = view.lung_masks["right"] | view.lung_masks["left"]
    cols = [c for _, c, _, _ in placed]
    # On the lateral arcs: outside the middle half of the lungs' width.
    lung_cols = np.flatnonzero(lungs.any(axis=0))
    span = lung_cols.max() - lung_cols.min()
    for c in cols:
        assert min(c - lung_cols.min(), lung_cols.max() - c) < 0.25 * span
