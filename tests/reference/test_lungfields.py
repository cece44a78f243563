"""The lung-fields reading: equalisation, zones from the film's own lungs, CTR, and a tiny
end-to-end recipe whose ONNX export the runtime reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radloop.models.reference.lungfields import (
    ZONE_ORDER,
    LungFields,
    LungFieldsRuntime,
    equalise,
    load_lung_fields,
    zone_map,
)
from radloop.vocabulary import Side, Zone


def _box(shape: tuple[int, int], r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_equalise_maps_any_monotone_tone_curve_to_the_same_image() -> None:
    rng = np.random.default_rng(0)
    film = rng.random((64, 48)).astype(np.float32)
    a = equalise(film)
    b = equalise(film**2.2 * 0.3 + 0.1)  # another site's gamma, gain and offset
    assert a.min() == 0.0 and a.max() == 1.0
    assert np.abs(a - b).max() < 0.02
    assert float(np.abs(np.mean(a) - 0.5)) < 0.02
    assert np.all(equalise(np.full((8, 8), 3.0)) == 0.5)


def test_zones_are_thirds_of_each_lungs_own_extent_not_of_the_image() -> None:
    shape = (90, 60)
    right = _box(shape, 30, 90, 5, 25)  # a right lung in the lower two thirds of the image
    left = _box(shape, 0, 60, 35, 55)  # a left lung in the upper two thirds
    zones = zone_map(right, left)
    assert zones[30, 10] == 1 and zones[49, 10] == 1 and zones[50, 10] == 2
    assert zones[70, 10] == 3 and zones[89, 10] == 3
    assert zones[0, 40] == 4 and zones[20, 40] == 5 and zones[59, 40] == 6
    assert zones[10, 10] == 0 and zones[80, 40] == 0  # outside both lungs
    assert ZONE_ORDER[0] is Zone.RIGHT_UPPER and ZONE_ORDER[5] is Zone.LEFT_LOWER


def test_zone_and_side_scores_read_opacity_where_the_lungs_are() -> None:
    shape = (60, 60)
    right, left = _box(shape, 0, 60, 0, 25), _box(shape, 0, 60, 35, 60)
    opacity = np.zeros(shape, dtype=np.float32)
    opacity[40:60, 0:25] = 0.9  # the right lower zone
    fields = LungFields(right, left, _box(shape, 30, 50, 20, 40), opacity)
    scores = fields.zone_scores()
    assert scores[Zone.RIGHT_LOWER] == pytest.approx(0.9)
    assert scores[Zone.RIGHT_UPPER] == 0.0 and scores[Zone.LEFT_LOWER] == 0.0
    sides = fields.side_scores()
    assert sides[Side.RIGHT] == pytest.approx(0.3) and sides[Side.LEFT] == 0.0
    assert fields.ctr() == pytest.approx(20 / 60)


def test_no_ctr_without_both_lungs_or_a_heart() -> None:
    shape = (20, 20)
    empty = np.zeros(shape, dtype=bool)
    lung = _box(shape, 0, 20, 0, 8)
    opacity = np.zeros(shape, dtype=np.float32)
    assert LungFields(lung, empty, _box(shape, 5, 10, 6, 12), opacity).ctr() is None
    assert LungFields(lung, _box(shape, 0, 20, 12, 20), empty, opacity).ctr() is None
    assert np.isnan(LungFields(lung, empty, empty, opacity).zone_scores()[Zone.LEFT_UPPER])


def test_a_field_is_one_region_without_holes() -> None:
    from radloop.models.reference.lungfields import _one_field

    shape = (40, 40)
    lung = _box(shape, 5, 35, 5, 18)
    lung[15:20, 9:13] = False  # dense opacity the network called not-lung: a hole
    speck = _box(shape, 2, 4, 30, 33)  # a stray detection elsewhere
    field = _one_field(lung | speck)
    assert field[15:20, 9:13].all() and not field[2:4, 30:33].any()
    assert field.sum() == 30 * 13
    notch = _box(shape, 5, 35, 5, 18)
    notch[15:20, 5:9] = False  # open to the outside: not a hole, left as it is
    assert not _one_field(notch)[15:20, 5:9].any()


def test_a_folder_without_the_network_loads_nothing(tmp_path: Path) -> None:
    assert load_lung_fields(str(tmp_path)) is None


def test_a_sidecar_with_other_outputs_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    (tmp_path / "lungfields.json").write_text(
        json.dumps({"input": {"size": 32}, "outputs": ["lungs"]})
    )
    (tmp_path / "lungfields.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="expected lung-fields outputs"):
        LungFieldsRuntime(tmp_path / "lungfields.onnx", tmp_path / "lungfields.json")


def test_the_tiny_recipe_trains_exports_and_reads_a_film(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from radloop.lab.training.lungfields.train import LungFieldsConfig, train_lung_fields

    config = LungFieldsConfig(
        n_train=4, n_val=2, variants=1, input_size=32, base_channels=4, epochs=1, batch_size=2
    )
    sidecar = train_lung_fields(config, tmp_path, progress=lambda _: None)
    assert sidecar["outputs"] == ["right", "left", "heart", "opacity"]
    assert 0.0 <= sidecar["validation"]["dice_lungs"] <= 1.0
    runtime = load_lung_fields(str(tmp_path))
    assert runtime is not None
    film = np.random.default_rng(1).random((120, 100)).astype(np.float32)
    reading = runtime.read(film)
    assert reading.right.shape == film.shape and reading.opacity.shape == film.shape
    assert not (reading.right & reading.left).any()
    assert reading.embedding.shape == (32,)
    assert ((reading.opacity >= 0) & (reading.opacity <= 1)).all()
    with pytest.raises(ValueError, match="2-D film"):
        runtime.read(np.zeros((3, 8, 8), dtype=np.float32))


def test_grey_levels_are_matched_by_quantiles_and_ranked_on_another_films_scale() -> None:
    from radloop.models.reference.lungfields import match_grey_levels, rank_in

    rng = np.random.default_rng(0)
    reference = rng.normal(0.5, 0.1, (40, 40)).astype(np.float32)
    image = (reference**0.5 * 0.8).astype(np.float32)  # another tone curve of the same film
    everywhere = np.ones((40, 40), dtype=bool)
    mapped = match_grey_levels(image, everywhere, reference, everywhere)
    assert np.allclose(mapped, reference, atol=0.01)
    ranks = rank_in(reference, mapped)
    assert ranks.min() >= 0.0 and ranks.max() <= 1.0
    assert np.allclose(ranks, equalise(reference), atol=0.02)  # its own scale: equalisation
    assert (rank_in(reference, reference + 1.0) == 1.0).all()  # whiter than any of its pixels


def test_a_pair_is_read_on_the_priors_grey_scale(shared: Any) -> None:
    """A real film (hannover-dev, a patient without outlines) against itself: under another
    tone curve nothing changes; with its lungs whitened, every zone's opacity rises, and by
    more than when the whitened film is read alone."""
    from PIL import Image as PILImage

    runtime = load_lung_fields()
    assert runtime is not None
    folder = shared("data/hannover-dev")
    with PILImage.open(folder / "images" / "fff13f3a.png") as image:
        prior = np.asarray(image.convert("F"), dtype=np.float32) / 255.0
    toned = np.clip(prior**0.8 * 0.9 + 0.05, 0.0, 1.0).astype(np.float32)
    before, again = runtime.read_pair(prior, toned)
    first = before.zone_scores()
    assert all(abs(again.zone_scores()[z] - first[z]) < 0.03 for z in first)
    lungs = before.lungs
    whiter = np.where(lungs, 1.0 - (1.0 - prior) * 0.6, prior).astype(np.float32)
    _, now = runtime.read_pair(prior, whiter)
    alone = runtime.read(whiter)
    assert np.array_equal(now.right, alone.right)  # its own lung fields
    rise = [now.zone_scores()[z] - first[z] for z in first]
    rise_alone = [alone.zone_scores()[z] - first[z] for z in first]
    assert min(rise) > 0.0 and float(np.mean(rise)) > 0.1, rise
    # read alone, equalisation takes part of a bilateral change away; on one scale it stays
    assert all(p >= a for p, a in zip(rise, rise_alone, strict=True)), (rise, rise_alone)
