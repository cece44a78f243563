"""The device network's training set, a tiny training run, and the runtime that merges it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from radloop.lab.training.reference.data import load_dataset  # noqa: E402
from radloop.lab.training.reference.devices_train import (  # noqa: E402
    DeviceConfig,
    _network,
    build_device_dataset,
    train_devices,
)
from radloop.models.builtin import shipped_model_dir  # noqa: E402
from radloop.models.images import image_from_pixels  # noqa: E402
from radloop.models.reference.devices import CELLS, CROP_SHAPE, DEVICES  # noqa: E402
from radloop.models.reference.runtime import ReferenceRuntime, reliable_findings  # noqa: E402

TINY = DeviceConfig(n_train=8, batch_size=4, max_steps=2, val_fraction=0.5,
                    widths=(4, 4, 4, 4), context=4)  # fmt: skip


@pytest.fixture(scope="module")
def device_shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from radloop.lab.synth import AnatomySourceMissingError

    out = tmp_path_factory.mktemp("device-data")
    try:
        return build_device_dataset(out, TINY.n_train, workers=1)
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")


def test_studies_take_a_tube_a_catheter_both_or_neither_in_turn(device_shards: list[Path]) -> None:
    data = load_dataset(device_shards)
    assert data["crop"].shape == (8, *CROP_SHAPE)
    want = np.asarray([[1, 0], [0, 1], [1, 1], [0, 0]] * 2, np.float32)
    np.testing.assert_array_equal(data["presence"], want)
    # Every present device has cells (from its mask) and a tip distance; absent ones have none.
    cells = data["cells"].reshape(8, len(DEVICES), -1).max(axis=2)
    np.testing.assert_array_equal(cells, want)
    np.testing.assert_array_equal(data["tip_mask"], want)
    assert data["cells"].shape[2:] == CELLS


def test_a_tiny_run_exports_onnx_that_the_runtime_merges(
    device_shards: list[Path], tmp_path: Path
) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    sidecar = train_devices(TINY, tmp_path, data_dir=device_shards[0].parent, log=lambda _: None)
    assert sidecar["devices"] == list(DEVICES) and sidecar["training"]["steps"] == 2
    assert "device network" in (tmp_path / "MODEL_CARD.md").read_text()
    model = _network(TINY).eval()
    model.load_state_dict(torch.load(tmp_path / "devices.pt"))
    x = np.random.default_rng(2).random((2, 1, *CROP_SHAPE)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    got = ort.InferenceSession(str(tmp_path / "devices.onnx")).run(None, {"crop": x})
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4, rtol=1e-4)

    runtime = ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")
    (devices,) = runtime.crops  # the folder holds no nodule network
    assert devices.network.name == "devices"
    assert (
        runtime.sidecar["thresholds"]["endotracheal_tube"]
        == sidecar["thresholds"]["endotracheal_tube"]
    )
    pixels = np.random.default_rng(3).random((512, 512)).astype(np.float32)
    image = dataclasses.replace(image_from_pixels(pixels), pixel_spacing_mm=(0.703125, 0.703125))
    (output,) = runtime.run([image])
    (direct,) = devices.run([image])
    assert direct is not None
    assert output.probabilities["endotracheal_tube"] == direct.probabilities["endotracheal_tube"]
    assert output.regressions["ett_tip_mm"] == direct.tips_mm["ett_tip_mm"]
    assert output.measured["cvc_tip_mm"] == "device network"
    # A tiny run's near-chance validation keeps the devices unreportable (the shipped model's
    # nodule and rib readings, absent here, are left out of the comparison).
    shipped = ReferenceRuntime(shipped_model_dir() / "reference.onnx",
                               shipped_model_dir() / "reference.json")  # fmt: skip
    others = {*DEVICES, "nodule", "rib_fracture"}
    reliable = reliable_findings(runtime.sidecar) - others
    assert reliable == reliable_findings(shipped.sidecar) - others


def test_train_reference_part_devices_trains_only_the_device_network(
    device_shards: list[Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from radloop.cli import main

    data_dir = device_shards[0].parent
    args = ["train-reference", "--part", "devices", "--out", str(tmp_path), "--n-train", "8",
            "--epochs", "1", "--data-dir", str(data_dir)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "devices.onnx").is_file() and (tmp_path / "devices.json").is_file()
    assert not (tmp_path / "reference.onnx").exists()  # the whole-image network is untouched
    assert "fit-ood" not in result.output and "devices.onnx" in result.output
