"""The network and a tiny end-to-end training run: torch and onnxruntime agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from radloop.lab.training.reference.data import load_dataset  # noqa: E402
from radloop.lab.training.reference.network import NetworkConfig, ReferenceNetwork  # noqa: E402
from radloop.lab.training.reference.train import (  # noqa: E402
    TrainConfig,
    bf16_supported,
    train_reference,
    training_precision,
)
from radloop.models.reference.spec import (  # noqa: E402
    FINDINGS,
    HEATMAP_SIZE,
    INPUT_SIZE,
    REGRESSIONS,
    VIEWS,
    ZONES,
)

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


def test_training_precision_refuses_an_unknown_precision() -> None:
    model = ReferenceNetwork(NetworkConfig(**TINY))  # type: ignore[arg-type]
    with (
        pytest.raises(ValueError, match="expected 'bfloat16' or 'float32', got 'float16'"),
        training_precision(torch, model, TrainConfig(precision="float16")),
    ):
        pass


@pytest.mark.skipif(not bf16_supported(torch), reason="this CPU has no native bfloat16 kernels")
def test_bfloat16_training_runs_convolutions_in_bfloat16_and_hands_back_float32() -> None:
    model = ReferenceNetwork(NetworkConfig(**TINY))  # type: ignore[arg-type]
    inner: list[Any] = []
    model.stem.register_forward_hook(lambda _m, _i, out: inner.append(out.dtype))
    x = torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE)
    with training_precision(torch, model, TrainConfig()) as precision, precision():
        outputs = model(x)
    assert inner == [torch.bfloat16]
    assert {o.dtype for o in outputs} == {torch.float32}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # Outside the context the model is plain float32 again (the cast-back hook is gone).
    inner.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = model(x)
    assert inner == [torch.bfloat16] and again[0].dtype == torch.bfloat16


def test_float32_precision_leaves_the_model_alone(tiny_shards: list[Path], tmp_path: Path) -> None:
    model = ReferenceNetwork(NetworkConfig(**TINY))  # type: ignore[arg-type]
    config = TrainConfig(precision="float32")
    with training_precision(torch, model, config) as precision, precision():
        outputs = model(torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE))
    assert {o.dtype for o in outputs} == {torch.float32}
    config = TrainConfig(  # type: ignore[arg-type]
        n_train=4, batch_size=2, max_steps=1, val_fraction=0.5, precision="float32", **TINY
    )
    sidecar = train_reference(config, tmp_path, data_dir=tiny_shards[0].parent, log=lambda _: None)
    assert sidecar["training"]["precision"] == "float32"
