"""The lung-fields recipe's second stage: an exported network trained further on unlabelled
real films it labels itself, with the lab's opacity inserted into them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy")
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from radloop.lab.training.lungfields.selftrain import (  # noqa: E402
    IGNORE,
    SelfTrainConfig,
    _real_variant,
    insert_into_film,
    masked_loss,
    network_from_onnx,
    pseudo_targets,
)
from radloop.lab.training.lungfields.train import build_network  # noqa: E402


def test_an_exported_network_is_read_back_into_the_recipes_unet(tmp_path: Path) -> None:
    import onnxruntime

    torch.manual_seed(0)
    net = build_network(2)
    for module in net.modules():  # statistics far from identity, so folding them matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    path = tmp_path / "tiny.onnx"
    names = {"input_names": ["image"], "output_names": ["maps", "embedding"]}
    torch.onnx.export(
        net, (torch.zeros(1, 1, 32, 32),), str(path), opset_version=17, dynamo=False, **names
    )
    x = np.random.default_rng(1).random((1, 1, 32, 32)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": x})
    again = network_from_onnx(path, 2)
    with torch.no_grad():
        maps, embedding = again(torch.from_numpy(x))
    assert np.allclose(maps.numpy(), expected[0], atol=1e-4)
    assert np.allclose(embedding.numpy(), expected[1], atol=1e-5)
    with pytest.raises(ValueError, match="expected a weight"):
        network_from_onnx(path, 4)  # another width: the shapes do not match


def test_pseudo_targets_leave_out_what_the_teacher_is_unsure_of() -> None:
    probs = np.zeros((4, 20, 20), dtype=np.float32)
    probs[0, 2:18, 2:9] = 0.95
    probs[0, 8:10, 4:6] = 0.1  # a hole in the right lung: the region rule fills it
    probs[0, 2:18, 9] = 0.6  # its edge: unsure
    probs[1, 2:18, 11:18] = 0.9
    probs[2, 12:16, 8:12] = 0.4  # an unsure heart
    targets = pseudo_targets(probs, band=0.25)
    assert targets.shape == (3, 20, 20) and targets.dtype == np.uint8
    assert (targets[0, 8:10, 4:6] == 1).all()  # the hole is lung, decided by the rule
    assert (targets[0, 2:18, 9] == IGNORE).all()
    assert (targets[0, 0] == 0).all() and (targets[1, 2:18, 11:18] == 1).all()
    assert (targets[2, 12:16, 8:12] == IGNORE).all() and (targets[2, 0] == 0).all()


def test_inserted_opacity_whitens_only_the_lungs_and_stays_a_grey_level() -> None:
    film = np.full((64, 64), 0.3, dtype=np.float32)
    lungs = np.zeros((64, 64), dtype=bool)
    lungs[8:56, 6:28] = True
    lungs[8:56, 36:58] = True
    for seed in range(4):
        out, mask = insert_into_film(film, lungs, np.random.default_rng(seed), pixel_mm=4.0)
        assert mask.any() and not (mask & ~lungs).any()
        assert (out[~lungs] == film[~lungs]).all()
        assert (out >= film - 1e-7).all() and float(out.max()) <= 1.0
        assert (out[mask] > film[mask]).all()


def test_the_loss_skips_what_is_left_out() -> None:
    target = torch.zeros(1, 4, 8, 8)
    target[:, :, :4] = 1.0
    target[:, :, 6:] = IGNORE
    logits = torch.zeros(1, 4, 8, 8)
    base = float(masked_loss(torch, logits, target))
    changed = logits.clone()
    changed[:, :, 6:] = 10.0  # anything at all where the target is left out
    assert float(masked_loss(torch, changed, target)) == pytest.approx(base)
    better = logits.clone()
    better[:, :, :4], better[:, :, 4:6] = 5.0, -5.0
    assert float(masked_loss(torch, better, target)) < base


def test_a_real_copy_has_targets_for_the_lungs_and_only_inserted_or_clear_opacity() -> None:
    rng = np.random.default_rng(0)
    film = (0.5 + 0.05 * rng.standard_normal((128, 128))).astype(np.float32)
    probs = np.zeros((4, 128, 128), dtype=np.float32)
    probs[0, 20:110, 10:60] = 0.9
    probs[1, 20:110, 68:118] = 0.9
    probs[2, 70:100, 50:80] = 0.9
    probs[3] = 0.02
    probs[3, 30:50, 20:40] = 0.5  # the film's own opacity: unknown
    config = SelfTrainConfig(lesion_share=1.0)
    inserted = 0
    for k in range(4):
        x, y = _real_variant((film, probs, 3, k, 64, config))
        assert x.shape == (64, 64) and y.shape == (4, 64, 64)
        assert set(np.unique(y)) <= {0, 1, IGNORE}
        assert (y[0] == 1).mean() > 0.15 and (y[1] == 1).mean() > 0.15
        assert (y[3] == 1).any() or (y[3] == 0).all()
        inserted += int((y[3] == 1).any())
        assert (y[3] == IGNORE).any()
    assert inserted >= 3


def test_the_cli_passes_the_second_stage_to_the_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import radloop.lab.training.lungfields.train as train
    from radloop.lab.training.lungfields.cli import train_lungfields_command

    seen: dict[str, Any] = {}

    def fake(config: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        seen.update(config=config, **kwargs)
        return {"validation": {"dice_lungs": 0.9, "dice_heart": 0.9, "dice_opacity": 0.5}}

    monkeypatch.setattr(train, "train_lung_fields", fake)
    init = tmp_path / "lungfields.onnx"
    init.write_bytes(b"x")
    args = ["--out", str(tmp_path / "out"), "--self-train-epochs", "2", "--init", str(init)]
    result = CliRunner().invoke(train_lungfields_command, args)
    assert result.exit_code == 0, result.output
    assert seen["config"].self_train_epochs == 2 and seen["init"] == init
    missing = CliRunner().invoke(train_lungfields_command, [*args[:4], "--init", "nope.onnx"])
    assert missing.exit_code == 2 and "--init" in missing.output


def test_the_card_says_when_and_how_the_network_was_self_trained(tmp_path: Path) -> None:
    import json

    from radloop.lab.training.lungfields.card import lung_fields_section

    sidecar = {
        "version": "lungfields-test",
        "parameters": 10,
        "config": {"input_size": 192, "n_train": 600, "variants": 4, "epochs": 8, "n_val": 60},
        "validation": {"dice_lungs": 0.95, "dice_heart": 0.94, "dice_opacity": 0.4},
        "minutes": {"render": 4.0, "randomise": 2.0, "train": 30.0},
    }
    (tmp_path / "lungfields.json").write_text(json.dumps(sidecar))
    assert "self-training" not in lung_fields_section(tmp_path)
    one = {
        "films": 71,
        "minutes": 14.2,
        "history": [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
        "config": {"lesion_share": 0.5, "copies": 12},
    }
    sidecar["self_training"] = [one]
    (tmp_path / "lungfields.json").write_text(json.dumps(sidecar))
    text = " ".join(lung_fields_section(tmp_path).split())
    assert "Then 3 epochs of self-training (14.2 min) on 71 unlabelled real films" in text
    assert "0.5 of 12 augmented copies" in text and "No real label was read" in text
    sidecar["self_training"] = [one, one]
    (tmp_path / "lungfields.json").write_text(json.dumps(sidecar))
    text = " ".join(lung_fields_section(tmp_path).split())
    assert "Then 2 rounds of 3 epochs of self-training (28.4 min)" in text


def test_the_tiny_recipe_self_trains_in_rounds_and_starts_again_from_its_export(
    tmp_path: Path,
) -> None:
    from PIL import Image

    from radloop.lab.training.lungfields.train import LungFieldsConfig, train_lung_fields

    films = tmp_path / "films"
    (films / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["image,patient_id,projection,lung_mask"]
    for k in range(2):
        pixels = (rng.random((80, 64)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(films / "images" / f"{k}.png")
        lines.append(f"images/{k}.png,p{k},AP,")
    (films / "metadata.csv").write_text("\n".join(lines) + "\n")
    config = LungFieldsConfig(
        n_train=3, n_val=2, variants=1, input_size=32, base_channels=4, epochs=1, batch_size=2,
        adapt_dir=str(films), self_train_epochs=1, self_train_rounds=2,
    )  # fmt: skip
    said: list[str] = []
    first = train_lung_fields(config, tmp_path / "a", data_dir=tmp_path / "data",
                              progress=said.append)  # fmt: skip
    assert len(first["self_training"]) == 2 and first["adapted_films"] == 2
    assert first["self_training"][0]["films"] == 2 and first["minutes"]["self_train"] >= 0
    assert (tmp_path / "a" / "round1" / "lungfields.onnx").is_file()
    assert sum("self-training epoch" in line for line in said) == 2
    again = train_lung_fields(
        replace(config, self_train_rounds=1), tmp_path / "b", data_dir=tmp_path / "data",
        init=tmp_path / "a" / "lungfields.onnx", progress=said.append,
    )  # fmt: skip
    assert again["initialised_from"]["version"] == first["version"]
    assert again["history"] == first["history"] and len(again["self_training"]) == 1
    assert again["minutes"]["train"] == first["minutes"]["train"]  # the first stage's, carried
    skipped = train_lung_fields(
        replace(config, adapt_dir=None), tmp_path / "c", data_dir=tmp_path / "data",
        progress=said.append,
    )  # fmt: skip
    assert "self_training" not in skipped and "self-training skipped" in said[-1] + said[-2]
