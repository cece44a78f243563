"""The lung-fields recipe's pieces: inserted opacity, shape randomisation, the lab-chosen
threshold, and the model card's sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy")

from radloop.lab.training.lungfields.card import (
    lung_fields_section,
    real_domain_paragraph,
)
from radloop.lab.training.lungfields.train import (
    adaptation_films,
    insert_patchy,
    opacity_threshold,
    warp,
)


def _lungs(shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    lungs = np.zeros(shape, dtype=bool)
    lungs[10:80, 8:40] = True
    lungs[10:80, 56:88] = True
    return lungs


def test_inserted_opacity_lies_in_the_lungs_and_only_adds_attenuation() -> None:
    lungs = _lungs()
    line = np.full(lungs.shape, 2.0, dtype=np.float32)
    for seed in range(5):
        out, mask = insert_patchy(line, lungs, np.random.default_rng(seed), pixel_mm=2.0)
        added = out - line
        assert mask.any() and not (mask & ~lungs).any()
        assert (added >= 0).all() and (added[~lungs] == 0).all()
        assert added[mask].min() > 0 and float(added.max()) <= 2.5 + 1e-5
    assert not insert_patchy(line, np.zeros_like(lungs), np.random.default_rng(0), 2.0)[1].any()


def test_the_warp_moves_image_and_masks_together() -> None:
    image = np.zeros((80, 80), dtype=np.float32)
    image[30:50, 20:40] = 1.0
    masks = {"right": image > 0.5}
    for seed in range(5):
        out, moved = warp(image, masks, np.random.default_rng(seed))
        assert out.shape == image.shape and moved["right"].dtype == bool
        bright = out > 0.5
        overlap = (bright & moved["right"]).sum() / max(int((bright | moved["right"]).sum()), 1)
        assert overlap > 0.85  # bilinear image and nearest-neighbour mask differ at edges only


def test_the_opacity_threshold_separates_opaque_from_clear_sides() -> None:
    size = 16
    y = np.zeros((4, 4, size, size), dtype=np.uint8)
    y[:, 0, :, :8] = 1
    y[:, 1, :, 8:] = 1
    y[:2, 3, :, :8] = 1  # the right side is opaque on the first two variants
    probs = np.zeros((4, 4, size, size), dtype=np.float32)
    probs[:, 3] = 0.2
    probs[:2, 3, :, :8] = 0.7
    cut = opacity_threshold(probs, y)
    assert 0.2 < cut <= 0.7


def test_the_card_sections_say_what_the_files_hold(tmp_path: Path) -> None:
    assert lung_fields_section(tmp_path) == ""
    assert "There is no real-film domain" in real_domain_paragraph(tmp_path)
    (tmp_path / "lungfields.json").write_text(
        json.dumps(
            {
                "version": "lungfields-test",
                "parameters": 1234,
                "config": {"input_size": 192, "n_train": 600, "variants": 4, "epochs": 8,
                           "n_val": 60},
                "validation": {"dice_lungs": 0.95, "dice_heart": 0.94, "dice_opacity": 0.4},
                "minutes": {"render": 4.5, "randomise": 1.5, "train": 30.0},
            }
        )
    )  # fmt: skip
    figure = {"value": 0.71, "ci95": [0.65, 0.78], "n": 372, "bar": ">= 0.75", "met": False}
    domain = {
        "collection": "realcxr-dev",
        "findings": [],
        "types": {"lung_opacity": {"figures": {"zone_auroc": figure}, "met": False}},
    }
    (tmp_path / "realfilm-domain.json").write_text(json.dumps(domain))
    section = lung_fields_section(tmp_path)
    assert "lungfields-test" in section and "No real label" in section
    assert "zone_auroc: 0.710 (95 % interval 0.650–0.780), n 372, bar >= 0.75: not met" in section
    assert "admitted to the real-film domain: none" in section and "CC BY 3.0" in section
    assert "met no finding type's bar" in real_domain_paragraph(tmp_path)
    assert "rendering 4.5 min" in " ".join(section.split())
    domain["findings"] = ["lung_opacity"]
    (tmp_path / "realfilm-domain.json").write_text(json.dumps(domain))
    assert real_domain_paragraph(tmp_path).startswith("Real films: lung_opacity only")
    change = {"value": 0.379, "ci95": [0.266, 0.508], "n": 58, "bar": ">= 0.7", "met": False}
    domain["types"]["lung_opacity"]["change"] = {
        "figures": {"change_zone_accuracy": change},
        "met": False,
    }
    (tmp_path / "realfilm-domain.json").write_text(json.dumps(domain))
    section = lung_fields_section(tmp_path)
    assert (
        "lung_opacity, change_zone_accuracy (its change stated by zone): 0.379 (95 % interval "
        "0.266–0.508), n 58, bar >= 0.7: not met" in section
    )
    assert "change stated by zone on real films: none" in section
    sidecar = json.loads((tmp_path / "lungfields.json").read_text())
    sidecar["minutes"]["render"] = 0.0
    (tmp_path / "lungfields.json").write_text(json.dumps(sidecar))
    assert "rendering taken from the cache" in " ".join(lung_fields_section(tmp_path).split())


def test_the_field_is_extended_above_and_beside_the_ct_without_touching_it() -> None:
    from radloop.lab.training.lungfields.train import extend_field

    line = np.zeros((96, 96), dtype=np.float32)
    limits = (20, 10, 90, 86)  # the CT's field: rows 20-89, columns 10-85
    line[20:90, 10:86] = 3.0
    line[20:90, 30:66] = 4.0
    out = extend_field(line, limits, np.random.default_rng(1), pixel_mm=2.0)
    # The chest is unchanged but for the clavicles' lower edge over the apices (≤ 8 mm).
    assert np.array_equal(out[25:90, 10:86], line[25:90, 10:86])
    assert (out[20:25, 10:86] >= line[20:25, 10:86]).all()
    above = out[:20, 10:86]
    assert (above >= 0).all() and float(above.max()) > 1.0  # neck, shoulders, clavicles
    assert float(out[:20, 48].mean()) > float(out[:20, 12].mean())  # a neck, not a slab
    assert 0 < float(out[50, 9]) < float(out[50, 10]) and float(out[50, 0]) < float(out[50, 9])


def test_adaptation_reads_only_frontal_films_of_patients_without_any_outline(
    tmp_path: Path,
) -> None:
    from PIL import Image

    rows = [
        # patient, projection, lung mask: p1 has an outline on one film, so none of p1's films
        ("p1", "PA", "lungs/a.png"),
        ("p1", "AP", ""),
        ("p2", "AP", ""),
        ("p2", "L", ""),  # a lateral
        ("p3", "AP Supine", ""),
        ("p4", "PA", ""),
    ]
    lines = ["image,patient_id,projection,lung_mask"]
    for k, (patient, view, mask) in enumerate(rows):
        Image.fromarray(np.full((8, 6), 10 * (k + 1), dtype=np.uint8)).save(tmp_path / f"{k}.png")
        lines.append(f"{k}.png,{patient},{view},{mask}")
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    films = adaptation_films(tmp_path, limit=10)
    assert [round(float(f[0, 0]) * 255) for f in films] == [30, 50, 60]  # p2 AP, p3, p4
    assert films[0].shape == (8, 6) and films[0].dtype == np.float32
    assert len(adaptation_films(tmp_path, limit=2)) == 2


def test_the_insertion_settings_bound_how_dense_and_how_confluent_the_opacity_is() -> None:
    lungs = _lungs()
    line = np.ones(lungs.shape, dtype=np.float32)
    for seed in range(6):
        faint, _ = insert_patchy(
            line, lungs, np.random.default_rng(seed), pixel_mm=2.0, max_amplitude=0.2
        )
        assert float((faint - line).max()) <= 0.2 + 1e-6
    # defaults: the same draws as before the settings existed
    same = insert_patchy(line, lungs, np.random.default_rng(3), pixel_mm=2.0)
    given = insert_patchy(line, lungs, np.random.default_rng(3), pixel_mm=2.0,
                          confluent_share=0.25, max_amplitude=2.5)  # fmt: skip
    assert np.array_equal(same[0], given[0]) and np.array_equal(same[1], given[1])
    # always confluent: 6-8 patches of 60-90 mm cover more of the lungs than never confluent
    cover = [
        np.mean([insert_patchy(line, lungs, np.random.default_rng(s), pixel_mm=2.0,
                               confluent_share=share)[1][lungs].mean() for s in range(6)])
        for share in (0.0, 1.0)
    ]  # fmt: skip
    assert cover[1] > cover[0]


def test_the_cli_passes_the_insertion_settings_to_the_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import radloop.lab.training.lungfields.train as train
    from radloop.lab.training.lungfields.cli import train_lungfields_command

    seen = {}

    def fake(config: Any, out: Path, **_: Any) -> dict[str, Any]:
        seen["config"] = config
        return {"validation": {"dice_lungs": 0.9, "dice_heart": 0.9, "dice_opacity": 0.5}}

    monkeypatch.setattr(train, "train_lung_fields", fake)
    args = ["--out", str(tmp_path), "--opacity-share", "0.8", "--confluent-share", "0.5",
            "--max-amplitude", "4"]  # fmt: skip
    result = CliRunner().invoke(train_lungfields_command, args)
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.opacity_share, config.confluent_share, config.max_amplitude) == (0.8, 0.5, 4.0)
    assert config.epochs == 8  # the rest stays the recipe's
    refused = CliRunner().invoke(train_lungfields_command, [*args[:2], "--opacity-share", "2"])
    assert refused.exit_code == 2 and "--opacity-share" in refused.output
