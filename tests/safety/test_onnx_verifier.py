"""The ONNX second opinion: torchxrayvision's DenseNet-121 (random weights, built here in plain
torch with its layer names) converted by ``radloop verifier import torchxrayvision``, then read
on real frontal films of realcxr-dev through the fail-safe gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from safety_builders import make_draft, make_image, make_study  # noqa: E402

from radloop.evaluate.datasets import open_dataset  # noqa: E402
from radloop.report import Finding, Presence, Verdict  # noqa: E402
from radloop.safety import TableVerifier, check, load_verifier  # noqa: E402
from radloop.safety.errors import VerifierDataError  # noqa: E402
from radloop.safety.onnx_verifier import OnnxSidecar, OnnxVerifier, prepare_input  # noqa: E402
from radloop.safety.second_opinion import with_second_opinion  # noqa: E402
from radloop.safety.verifier_cli import XRV_LABEL_MAP, import_torchxrayvision, verifier  # noqa: E402
from radloop.safety.xrv_densenet import XRV_ALL_PATHOLOGIES, XrvDenseNet  # noqa: E402
from radloop.study import StudyMetadata  # noqa: E402


@pytest.fixture(scope="session")
def xrv_network() -> XrvDenseNet:
    torch.manual_seed(0)
    network = XrvDenseNet()
    with torch.no_grad():  # spread the random outputs so they are not all saturated
        network.classifier.weight.mul_(0.01)
    return network.eval()


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory, xrv_network: XrvDenseNet) -> Path:
    """``radloop verifier import torchxrayvision`` on a saved state dict (once per session)."""
    folder = tmp_path_factory.mktemp("xrv")
    weights = folder / "weights.pt"
    torch.save(xrv_network.state_dict(), weights)
    out = folder / "out"
    result = CliRunner().invoke(
        verifier, ["import", "torchxrayvision", "--weights", str(weights), "--out", str(out),
                   "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["architecture"] == "radloop.safety.xrv_densenet"
    return Path(summary["sidecar"])


@pytest.fixture(scope="session")
def films() -> list[tuple[object, object]]:
    from sharedkit import shared_path

    root = shared_path("data/realcxr-dev")
    if root is None:
        pytest.skip("../shared/data/realcxr-dev is not here")
    dataset = open_dataset(f"folder:{root}")
    cases = dataset.cases()
    frontal = [c for c in cases if c.attributes.get("view") in ("PA", "AP")][:3]
    other = [c for c in cases if c.attributes.get("modality") == "CT"][:1]
    return [(c, dataset.load_study(c)) for c in (*frontal, *other)]


def test_the_state_dict_has_torchxrayvisions_layer_names(xrv_network: XrvDenseNet) -> None:
    names = set(xrv_network.state_dict())
    assert "features.denseblock4.denselayer16.conv2.weight" in names
    assert "features.transition3.norm.running_var" in names
    assert xrv_network.classifier.weight.shape == (18, 1024)
    assert len(XRV_ALL_PATHOLOGIES) == 18


def test_the_sidecar_maps_every_pathology_and_declares_real_frontal_films(imported: Path) -> None:
    sidecar = OnnxSidecar.load(imported)
    assert sidecar.labels == XRV_ALL_PATHOLOGIES
    assert sidecar.label_map["Effusion"] == "pleural_effusion"
    assert sidecar.label_map["Infiltration"] is None
    assert sidecar.value_range == (-1024.0, 1024.0) and sidecar.size == (224, 224)
    domain = sidecar.competence.domains[0]
    assert domain.name == "real-frontal" and domain.real
    assert set(domain.findings) == {c for c in XRV_LABEL_MAP.values() if c is not None}


def test_onnx_readings_on_real_films_match_the_torch_network(
    imported: Path, films: list[tuple[object, object]], xrv_network: XrvDenseNet
) -> None:
    onnx = load_verifier("onnx", sidecar=imported)
    assert isinstance(onnx, OnnxVerifier)
    _, study = films[0]
    output = onnx.verify(study)  # type: ignore[arg-type]
    assert len(output.presence) == 17  # 18 outputs, Infiltration unmapped
    batch = prepare_input(study.images[0].pixels, onnx.sidecar)  # type: ignore[attr-defined]
    assert batch.shape == (1, 1, 224, 224) and batch.min() >= -1024 and batch.max() <= 1024
    with torch.no_grad():
        expected = torch.sigmoid(xrv_network(torch.from_numpy(batch)))[0].numpy()
    index = XRV_ALL_PATHOLOGIES.index("Effusion")
    assert output.presence["pleural_effusion"] == pytest.approx(float(expected[index]), abs=1e-4)


def test_frontal_films_are_in_domain_and_ct_is_not(
    imported: Path, films: list[tuple[object, object]]
) -> None:
    onnx = load_verifier("onnx", sidecar=imported)
    decisions = [onnx.assess_domain(study) for _, study in films]  # type: ignore[attr-defined]
    assert [d.in_domain for d in decisions] == [True, True, True, False]
    assert "CT" in decisions[-1].reason


def test_a_claim_on_a_real_frontal_film_is_checked_and_outside_the_domain_it_is_not(
    imported: Path, films: list[tuple[object, object]]
) -> None:
    onnx = load_verifier("onnx", sidecar=imported)
    draft = make_draft([Finding("pleural_effusion", presence=Presence.ABSENT),
                        Finding("pacemaker")])  # fmt: skip
    _, frontal = films[0]
    checked = check(draft, frontal, onnx)  # type: ignore[arg-type]
    effusion, pacemaker = checked.checks[0], checked.checks[1]
    assert effusion.verdict is not Verdict.NOT_CHECKED and effusion.numbers.p_claim is not None
    assert pacemaker.verdict is Verdict.NOT_CHECKED  # not among its validated findings
    _, ct = films[-1]
    outside = check(draft, ct, onnx)  # type: ignore[arg-type]
    assert all(c.verdict is Verdict.NOT_CHECKED for c in outside.checks if c.index is not None)


def test_the_second_opinion_fills_its_slot_only_inside_its_domain(
    imported: Path, films: list[tuple[object, object]]
) -> None:
    onnx = load_verifier("onnx", sidecar=imported)
    table = TableVerifier({}, name="none")  # says nothing: every claim not checked
    draft = make_draft([Finding("pleural_effusion", presence=Presence.ABSENT)])
    _, frontal = films[0]
    checked = check(draft, frontal, table, second_opinion=onnx)  # type: ignore[arg-type]
    reading = onnx.verify(frontal).presence["pleural_effusion"]  # type: ignore[arg-type]
    assert checked.checks[0].numbers.p_second_opinion == pytest.approx(reading)
    assert f"second opinion (xrv-densenet121-res224-all): pleural effusion {reading:.2f}" in (
        checked.checks[0].reasons
    )
    _, ct = films[-1]
    plain = check(draft, ct, table)  # type: ignore[arg-type]
    again = with_second_opinion(plain.checks, onnx, ct)  # type: ignore[arg-type]
    assert again[0].numbers.p_second_opinion is None


def test_a_film_without_a_recorded_view_is_outside_the_domain(imported: Path) -> None:
    onnx = load_verifier("onnx", sidecar=imported)
    image = np.random.default_rng(0).random((300, 260)).astype(np.float32)
    unknown = make_study(image)
    assert not onnx.assess_domain(unknown).in_domain  # type: ignore[attr-defined]
    assert onnx.verify(unknown).presence == {}
    pa = make_study(image, StudyMetadata(view_position="PA", modality="DX"))
    assert onnx.assess_domain(pa).in_domain  # type: ignore[attr-defined]
    lateral = make_study(image, StudyMetadata(view_position="LL"))
    assert "LL" in onnx.assess_domain(lateral).reason  # type: ignore[attr-defined]
    assert make_image(image, "AP").view_position == "AP"


def _tiny(tmp_path: Path, **changes: object) -> Path:
    """A two-output network in ONNX with its sidecar (``changes`` edit the sidecar)."""
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(1, 2))  # fmt: skip
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[0.0], [0.0]]))
        model[2].bias.copy_(torch.tensor([0.0, 2.0]))
    torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(tmp_path / "tiny.onnx"),
                      input_names=["image"], dynamo=False)  # fmt: skip
    data = {
        "format": "radloop-onnx-verifier", "version": 1, "model": "tiny.onnx",
        "labels": ["Effusion", "Cardiomegaly"],
        "label_map": {"Effusion": "pleural_effusion", "Cardiomegaly": "cardiomegaly"},
        "input": {"size": [16, 16], "range": [0, 1]}, "output": {"kind": "logits"},
        "competence": {"domains": [{"name": "real-frontal", "findings": ["pleural_effusion"]}]},
        **changes,
    }  # fmt: skip
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    return path


def test_operating_points_become_one_half(tmp_path: Path) -> None:
    study = make_study(np.zeros((20, 20), np.float32), StudyMetadata(view_position="PA"))
    plain = OnnxVerifier(_tiny(tmp_path)).verify(study).presence
    assert plain["pleural_effusion"] == pytest.approx(0.5)
    assert plain["cardiomegaly"] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-5)
    shifted = OnnxVerifier(
        _tiny(tmp_path, output={"kind": "logits", "operating_points": [0.5, 1 / (1 + np.exp(-2))]})
    ).verify(study)
    assert shifted.presence["cardiomegaly"] == pytest.approx(0.5, abs=1e-5)


def test_a_sidecar_with_an_unknown_code_or_missing_model_is_refused(tmp_path: Path) -> None:
    bad = _tiny(tmp_path, label_map={"Effusion": "wet_lung"})
    with pytest.raises(VerifierDataError, match="wet_lung"):
        OnnxVerifier(bad)
    elsewhere = _tiny(tmp_path, model="absent.onnx")
    with pytest.raises(VerifierDataError, match="no file at"):
        OnnxVerifier(elsewhere)
    with pytest.raises(VerifierDataError, match="radloop-onnx-verifier"):
        OnnxSidecar.from_dict({"format": "other"}, base=tmp_path)


def test_weights_of_another_network_are_refused_with_what_differs(tmp_path: Path) -> None:
    partial = tmp_path / "partial.pt"
    torch.save({"classifier.bias": torch.zeros(18)}, partial)
    with pytest.raises(VerifierDataError, match="missing"):
        import_torchxrayvision(partial, tmp_path / "out")
    weights = tmp_path / "other.pt"
    torch.save({"features.conv0.weight": torch.zeros(3, 3)}, weights)
    with pytest.raises(VerifierDataError, match="size mismatch"):
        import_torchxrayvision(weights, tmp_path / "out")
    pickled = tmp_path / "pickled.pt"
    torch.save(torch.nn.Linear(1, 1), pickled)
    with pytest.raises(VerifierDataError, match="allow-pickle"):
        import_torchxrayvision(pickled, tmp_path / "out")
