"""The network and a tiny end-to-end training run: torch and onnxruntime agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from radloop.models.reference.data import load_dataset  # noqa: E402
from radloop.models.reference.network import NetworkConfig, ReferenceNetwork  # noqa: E402
from radloop.models.reference.spec import (  # noqa: E402
    FINDINGS,
    HEATMAP_SIZE,
    INPUT_SIZE,
    REGRESSIONS,
    VIEWS,
    ZONES,
)
from radloop.models.reference.train import TrainConfig, train_reference  # noqa: E402

TINY = {"widths": (4, 8, 8, 8, 8), "blocks": (1, 1, 1, 1)}


def test_the_network_has_one_output_per_head_with_the_documented_shapes() -> None:
    model = ReferenceNetwork(NetworkConfig(**TINY)).eval()  # type: ignore[arg-type]
    presence, zones, heatmaps, regression, view, embedding = model(
        torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE)
    )
    assert presence.shape == (2, len(FINDINGS))
    assert zones.shape == (2, len(FINDINGS), len(ZONES))
    assert heatmaps.shape == (2, len(FINDINGS), HEATMAP_SIZE, HEATMAP_SIZE)
    assert regression.shape == (2, len(REGRESSIONS))
    assert view.shape == (2, len(VIEWS))
    assert embedding.shape == (2, 8)


def test_the_training_set_holds_images_and_targets_per_study(tiny_shards: list[Path]) -> None:
    data = load_dataset(tiny_shards)
    frontal = data["frontal"]
    assert int(frontal.sum()) == 4
    assert data["image"].shape[1:] == (INPUT_SIZE, INPUT_SIZE)
    assert data["heatmaps"].shape[1:] == (len(FINDINGS), HEATMAP_SIZE, HEATMAP_SIZE)
    # Every frontal image has its cardiothoracic ratio; laterals have only a view label.
    assert (data["regression_mask"][frontal, 0] == 1).all()
    assert (data["view"][~frontal] == VIEWS.index("LL")).all()
    assert (data["presence"][~frontal] == 0).all()


def test_a_tiny_training_run_exports_onnx_that_matches_torch(
    tiny_shards: list[Path], tmp_path: Path
) -> None:
    config = TrainConfig(n_train=4, batch_size=2, max_steps=2, val_fraction=0.5, **TINY)  # type: ignore[arg-type]
    sidecar = train_reference(config, tmp_path, data_dir=tiny_shards[0].parent, log=lambda _: None)
    assert sidecar["findings"] == list(FINDINGS) and sidecar["training"]["steps"] == 2
    assert json.loads((tmp_path / "reference.json").read_text())["version"] == sidecar["version"]
    model = ReferenceNetwork(NetworkConfig(**TINY)).eval()  # type: ignore[arg-type]
    model.load_state_dict(torch.load(tmp_path / "reference.pt"))
    x = np.random.default_rng(1).standard_normal((3, 1, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    session = ort.InferenceSession(str(tmp_path / "reference.onnx"))
    got = session.run(None, {"image": x})
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4, rtol=1e-4)
