"""The projector's geometry and splatting, on synthetic point sets (no CT needed)."""

from __future__ import annotations

import numpy as np

from radloop.lab.synth.projector import (
    View,
    make_geometry,
    plan_splat,
    rotation_matrix,
    sphere_line_integral,
)

CENTRE = np.zeros(3, dtype=np.float32)
BODY = (np.float32([-150, -120, -150]), np.float32([150, 120, 150]))


def _geometry(view: View, sid: float = 1800.0, size: int = 128):
    return make_geometry(view, centre=CENTRE, body_min=BODY[0], body_max=BODY[1], sid_mm=sid,
                         size=size, detector_mm=400.0)  # fmt: skip


def test_patient_right_is_on_the_image_left_in_pa_and_ap() -> None:
    for view in (View.PA, View.AP):
        u, _, _ = _geometry(view).project(np.float32([[-100, 0, 0], [100, 0, 0]]))
        assert u[0] < u[1], view  # x = -100 is the patient's right


def test_head_is_at_the_top_and_anterior_is_left_on_the_lateral() -> None:
    _, v, _ = _geometry(View.PA).project(np.float32([[0, 0, 100], [0, 0, -100]]))
    assert v[0] < v[1]
    u, _, _ = _geometry(View.LL).project(np.float32([[0, -100, 0], [0, 100, 0]]))
    assert u[0] < u[1]  # y = -100 is anterior


def test_anterior_structures_magnify_more_on_ap_at_100_cm_than_on_pa_at_180_cm() -> None:
    heart = np.float32([[0, -60, 0]])  # anterior
    pa = _geometry(View.PA).magnification_at(heart)
    ap = _geometry(View.AP, sid=1000.0).magnification_at(heart)
    assert 1.0 < pa < 1.06 < 1.2 < ap


def test_a_uniform_slab_renders_flat_and_keeps_its_line_integral() -> None:
    g = _geometry(View.PA, size=96)
    axes = [np.arange(-60, 60, 2.0), np.arange(-20, 20, 2.0), np.arange(-60, 60, 2.5)]
    x, y, z = (a.ravel().astype(np.float32) for a in np.meshgrid(*axes, indexing="ij"))
    mu = np.float32(0.02)
    plan = plan_splat(g, x, y, z, (2.0, 2.0, 2.5))
    image = plan.image(np.full(x.size, mu * 2.0 * 2.0 * 2.5, dtype=np.float32))
    centre = image[38:58, 38:58]
    # 40 mm of μ = 0.02/mm: a line integral of 0.8, flat to a few parts in a thousand.
    assert abs(float(centre.mean()) - 0.8) < 0.01
    assert float(centre.std()) < 0.004


def test_posed_slab_stays_free_of_ripple() -> None:
    g = make_geometry(View.PA, centre=CENTRE, body_min=BODY[0], body_max=BODY[1],
                      sid_mm=1800.0, size=96, detector_mm=400.0,
                      pose=rotation_matrix(7.0, 4.0, 1.0))  # fmt: skip
    axes = [np.arange(-60, 60, 2.0), np.arange(-20, 20, 6.0), np.arange(-60, 60, 2.5)]
    x, y, z = (a.ravel().astype(np.float32) for a in np.meshgrid(*axes, indexing="ij"))
    image = plan_splat(g, x, y, z, (2.0, 6.0, 2.5)).image(np.ones(x.size, dtype=np.float32))
    centre = image[40:56, 40:56]
    assert float(centre.std() / centre.mean()) < 0.01


def test_sphere_chord_peaks_at_its_diameter() -> None:
    g = _geometry(View.PA, size=256)
    patch, box = sphere_line_integral(g, np.float32([20, 0, 10]), 10.0, supersample=5)
    assert box[2] > box[0] and box[3] > box[1]
    assert 19.0 < float(patch.max()) <= 20.05
