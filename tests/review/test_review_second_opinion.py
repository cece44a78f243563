"""The workstation's second opinion (``RADLOOP_SECOND_OPINION``): a classifier exported to
ONNX (torchxrayvision's DenseNet-121 with random weights, built in plain torch and converted by
``radloop verifier import torchxrayvision``) reads each claim of a frontal film the worker
drafts, and the reading reaches the study's detail; outside its domain it says nothing."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from pydicom.uid import generate_uid  # noqa: E402
from reviewkit import write_sample_copy  # noqa: E402

from radloop.review.settings import settings_from_env  # noqa: E402
from radloop.safety.errors import VerifierDataError  # noqa: E402

REPLY = "FINDINGS: Small left pleural effusion.\nIMPRESSION: Small left pleural effusion."


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight DenseNet-121 in torchxrayvision's layout, imported as ONNX + sidecar."""
    from radloop.safety.verifier_cli import import_torchxrayvision
    from radloop.safety.xrv_densenet import XrvDenseNet

    torch.manual_seed(0)
    network = XrvDenseNet()
    with torch.no_grad():  # spread the random outputs so they are not all saturated
        network.classifier.weight.mul_(0.01)
    folder = tmp_path_factory.mktemp("second-opinion")
    weights = folder / "weights.pt"
    torch.save(network.eval().state_dict(), weights)
    summary = import_torchxrayvision(weights, folder / "out")
    return Path(summary["sidecar"])


def _ingest(store: Any, folder: Path, view: str | None) -> str:
    """A copy of the sample PA film with ``view`` as its ViewPosition (None: not recorded)."""
    import pydicom

    from radloop.review.ingest import ingest_path

    path = write_sample_copy(folder, uid=generate_uid(), patient=f"SO-{view}",
                             date=datetime.date(2024, 5, 2))  # fmt: skip
    ds = pydicom.dcmread(path)
    if view is None:
        del ds.ViewPosition
    else:
        ds.ViewPosition = view
    ds.save_as(path)
    (study_id,) = ingest_path(store, folder).added
    return str(study_id)


def _effusion(detail: dict[str, Any]) -> dict[str, Any]:
    (item,) = [i for i in detail["items"] if i["finding"]["code"] == "pleural_effusion"]
    return item


def test_the_worker_gives_each_frontal_claim_the_second_opinions_reading(
    store: Any, client_for: Any, sidecar: Path, tmp_path: Path
) -> None:
    from radloop.models.mock import MockModel
    from radloop.review.db import Draft
    from radloop.review.worker import DraftingWorker
    from radloop.safety import TableVerifier
    from radloop.safety.onnx_verifier import OnnxVerifier

    env = {"RADLOOP_SECOND_OPINION": str(sidecar), "RADLOOP_SAMPLES": "0",
           "RADLOOP_ASK_BACK": "0"}  # fmt: skip
    settings = settings_from_env(store.data_dir, env=env)
    assert settings.second_opinion == sidecar
    tuned = dataclasses.replace(
        store, settings=dataclasses.replace(
            store.settings, second_opinion=sidecar, samples=0, ask_back=False),
    )  # fmt: skip
    frontal = _ingest(tuned, tmp_path / "pa", "PA")
    lateral = _ingest(tuned, tmp_path / "ll", "LL")
    unrecorded = _ingest(tuned, tmp_path / "none", None)
    # The main verifier says nothing about these films: only the second opinion can read them.
    worker = DraftingWorker(tuned, model=MockModel(REPLY), verifier=TableVerifier({}))
    assert isinstance(worker.second_opinion, OnnxVerifier)
    assert worker.run_pending() == 3

    rad = client_for("rad")
    detail = rad.get(f"/api/studies/{frontal}").json()
    with tuned.sessions() as session:
        study = session.get(Draft, frontal)
        assert study is not None
        (check,) = [c for c in study.checks if c["finding"]["code"] == "pleural_effusion"]
    p = check["numbers"]["p_second_opinion"]
    assert p is not None and 0.0 < p < 1.0
    # The same number as the classifier gives the film on its own.
    from radloop.review.db import StudyRow
    from radloop.review.ingest import load_stored_study

    with tuned.sessions() as session:
        row = session.get(StudyRow, frontal)
        film = load_stored_study(tuned, row)
    alone = worker.second_opinion.verify(film).presence["pleural_effusion"]
    assert p == pytest.approx(alone, abs=1e-4)  # stored to four places
    item = _effusion(detail)
    assert f"Second opinion: {p:.2f}" in item["readings"]
    assert (
        f"second opinion (xrv-densenet121-res224-all): pleural effusion {p:.2f}"
        in (item["reasons"])
    )
    page = rad.get(f"/studies/{frontal}")
    assert f"Second opinion: {p:.2f}" in page.text

    # A lateral film is outside radloop's intended use: refused, no draft, no reading at all.
    refused = rad.get(f"/api/studies/{lateral}").json()
    assert refused["out_of_scope"] and refused["draft"] is None
    assert not any("econd opinion" in str(i) for i in refused["items"])
    # A film whose view is not recorded is drafted, but lies outside the classifier's
    # validated domain (PA/AP films): its claim carries no second-opinion reading.
    outside = rad.get(f"/api/studies/{unrecorded}").json()
    assert outside["draft"] is not None
    item = _effusion(outside)
    assert item["state"] == "not checked"
    assert not any("econd opinion" in line for line in (*item["readings"], *item["reasons"]))


def test_a_missing_or_invalid_sidecar_stops_the_worker_at_start(
    store: Any, sidecar: Path, tmp_path: Path
) -> None:
    from radloop.review.worker import DraftingWorker

    def start(path: Path) -> None:
        tuned = dataclasses.replace(
            store, settings=dataclasses.replace(store.settings, second_opinion=path)
        )
        DraftingWorker(tuned)

    with pytest.raises(VerifierDataError, match=r"RADLOOP_SECOND_OPINION .*no-such\.json"):
        start(tmp_path / "no-such.json")
    bad = tmp_path / "bad.json"
    data = json.loads(sidecar.read_text())
    bad.write_text(json.dumps({**data, "label_map": {"Effusion": "wet_lung"},
                               "model": str(sidecar.parent / "model.onnx")}))  # fmt: skip
    with pytest.raises(VerifierDataError, match=r"RADLOOP_SECOND_OPINION .*wet_lung"):
        start(bad)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    (broken / "model.json").write_text(json.dumps({**data, "model": "model.onnx"}))
    with pytest.raises(VerifierDataError, match="an ONNX model that onnxruntime can load"):
        start(broken / "model.json")
