"""The shipped reference model: loads through the registry, drafts the sample study."""

from __future__ import annotations

from pathlib import Path

import pytest

from radloop.assist import draft
from radloop.assist.types import OutputMode
from radloop.models import FindingsPredictor, MissingReferenceModelError, load_model
from radloop.models.builtin import NOTICE, ReferenceModel, shipped_model_dir
from radloop.study import load_study, sample_study_path

MAX_BYTES = 20 * 1024 * 1024


def test_the_shipped_weights_are_small_and_have_a_model_card() -> None:
    folder = shipped_model_dir()
    # The bar is on everything shipped: the main network, the crop networks, sidecars.
    shipped = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    assert {"reference.onnx", "devices.onnx", "lungs.onnx"} <= {
        path.name for path in folder.iterdir()
    }
    assert shipped <= MAX_BYTES
    card = (folder / "MODEL_CARD.md").read_text()
    assert "synthetic" in card and "one CT" in card


def test_the_builtin_model_drafts_the_sample_study_as_a_structured_report() -> None:
    model = load_model("builtin")
    assert isinstance(model, ReferenceModel) and isinstance(model, FindingsPredictor)
    study = load_study(sample_study_path())
    result = draft(study, model)
    assert result.output_mode is OutputMode.STRUCTURED
    assert result.report.text.startswith("FINDINGS:")
    assert "IMPRESSION:" in result.report.text
    text = model.generate(study.images, "Describe the radiograph.")[0].text
    assert text.startswith(NOTICE)
    assert "not a diagnosis" in text.splitlines()[0]


def test_the_reference_output_has_probabilities_heatmaps_and_an_embedding() -> None:
    model = ReferenceModel(shipped_model_dir())
    output = model.read(load_study(sample_study_path()).images)
    assert 0.0 <= output.probabilities["pneumothorax"] <= 1.0
    assert output.heatmap("pneumothorax").shape == output.image_shape
    assert output.embedding.ndim == 1
    assert set(output.view_probabilities) == {"PA", "AP", "LL"}
    assert sum(output.view_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # The bundled sample is a lab PA radiograph at 0.70 mm: PA, and every finding assessed.
    assert max(output.view_probabilities, key=output.view_probabilities.__getitem__) == "PA"
    assert not output.unassessed


def test_a_folder_without_weights_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingReferenceModelError, match=r"reference\.onnx and reference\.json"):
        load_model("builtin", model=tmp_path)


def test_the_shipped_view_head_tells_a_lab_frontal_from_its_lateral() -> None:
    import dataclasses

    from cropkit import anatomy_or_skip
    from radloop.lab.synth import make_study
    from radloop.lab.synth.variation import profile
    from radloop.models.images import image_from_pixels

    anatomy = anatomy_or_skip()
    model = ReferenceModel(shipped_model_dir())
    # The held-out site profile with a lateral view too, and a seed training never used.
    site = dataclasses.replace(profile("enhanced"), lateral=True)
    study = make_study(anatomy, 515_152, 1, site=site)
    read = {}
    for view, rendered in study.views.items():
        image = image_from_pixels(rendered.exposure.display)
        read[view.value] = model.read([image]).view
    assert read["LL"] == "LL" and sum(v != "LL" for v in read.values()) == 1, read
