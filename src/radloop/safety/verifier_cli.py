"""``radloop verifier import torchxrayvision``: a classifier trained on real films, as ONNX.

The conversion runs on the user's machine, where torch is installed (the ``train`` extra) and,
ideally, torchxrayvision. radloop never downloads weights: ``--weights`` is a file the user
obtained from torchxrayvision (Cohen et al., MIDL 2022; Apache-2.0). It writes ``model.onnx``
and the sidecar ``model.json`` that ``load_verifier("onnx", sidecar=...)`` reads.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click

from radloop.errors import MissingExtraError
from radloop.models.competence import REAL_FILMS, Competence, ValidatedDomain
from radloop.safety.errors import VerifierDataError

__all__ = [
    "XRV_COLLECTIONS",
    "XRV_LABEL_MAP",
    "import_torchxrayvision",
    "verifier",
    "xrv_sidecar",
]

XRV_LABEL_MAP: dict[str, str | None] = {
    "Atelectasis": "atelectasis",
    "Consolidation": "consolidation",
    "Infiltration": None,  # no radloop code of its own ("infiltrate" is read as an opacity)
    "Pneumothorax": "pneumothorax",
    "Edema": "edema",
    "Emphysema": "emphysema",
    "Fibrosis": "pulmonary_fibrosis",
    "Effusion": "pleural_effusion",
    "Pneumonia": "pneumonia",
    "Pleural_Thickening": "pleural_other",
    "Cardiomegaly": "cardiomegaly",
    "Nodule": "nodule",
    "Mass": "mass",
    "Hernia": "hiatal_hernia",
    "Lung Lesion": "lung_lesion",
    "Fracture": "fracture",
    "Lung Opacity": "lung_opacity",
    "Enlarged Cardiomediastinum": "enlarged_cardiomediastinum",
}
"""torchxrayvision's 18 pathologies → radloop finding codes (None: not mapped)."""
XRV_COLLECTIONS = (
    "NIH ChestX-ray14", "PadChest", "CheXpert", "MIMIC-CXR", "RSNA Pneumonia", "Google NIH",
    "OpenI",
)  # fmt: skip
"""The public collections ``densenet121-res224-all`` was trained on (its authors' list)."""
ONNX_OPSET = 17


def xrv_sidecar(
    model: Path, *, name: str, operating_points: list[float | None] | None = None
) -> Any:
    """The sidecar of a converted ``densenet121-res224-all``: labels, input, domain."""
    from radloop.safety.onnx_verifier import OnnxSidecar
    from radloop.safety.xrv_densenet import XRV_ALL_PATHOLOGIES, XRV_RANGE, XRV_SIZE

    codes = tuple(c for c in XRV_LABEL_MAP.values() if c is not None)
    domain = ValidatedDomain(
        name=REAL_FILMS,
        images="real frontal (PA/AP) chest radiographs, CR or DX",
        findings=codes,
        collections=XRV_COLLECTIONS,
    )
    note = (
        "trained and validated by its authors on public real-film collections (Cohen et al., "
        "MIDL 2022); measure it on your own films with `radloop eval` before relying on it"
    )
    return OnnxSidecar(
        name=name,
        model=model,
        labels=XRV_ALL_PATHOLOGIES,
        label_map=XRV_LABEL_MAP,
        size=(XRV_SIZE, XRV_SIZE),
        competence=Competence(name, (domain,), note),
        crop="centre",
        value_range=XRV_RANGE,
        output_kind="logits",
        operating_points=tuple(operating_points) if operating_points else None,
        input_name="image",
        source={
            "library": "torchxrayvision (Cohen et al., MIDL 2022), Apache-2.0",
            "architecture": "DenseNet-121, 1 x 224 x 224 input, 18 outputs",
            "weights": "densenet121-res224-all",
        },
    )


def _network() -> tuple[Any, list[float | None] | None, str]:
    """torchxrayvision's DenseNet when it imports (with its operating points), else radloop's
    copy of the architecture with the same layer names."""
    try:
        import torchxrayvision as xrv  # type: ignore[import-not-found,unused-ignore]
    except Exception:  # it may fail to import beside a torch build its torchvision does not fit
        from radloop.safety.xrv_densenet import XrvDenseNet

        return XrvDenseNet(), None, "radloop.safety.xrv_densenet"
    meta = getattr(xrv.models, "model_urls", {}).get("densenet121-res224-all", {})
    points = meta.get("op_threshs")
    network = xrv.models.DenseNet(weights=None, num_classes=18)
    return network, None if points is None else [float(p) for p in points], "torchxrayvision"


def _state_dict(weights: Path, allow_pickle: bool) -> dict[str, Any]:
    import pickle

    import torch

    try:
        loaded = torch.load(weights, map_location="cpu", weights_only=not allow_pickle)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        fix = (
            None
            if allow_pickle
            else "Pass a state dict (model.state_dict()), or --allow-pickle for a whole "
            "pickled model from a source you trust."
        )
        raise VerifierDataError(
            "torchxrayvision DenseNet-121 weights (a torch state dict)",
            str(error).splitlines()[0][:300],
            source=weights,
            fix=fix,
        ) from None
    state = loaded.state_dict() if hasattr(loaded, "state_dict") else loaded
    if not isinstance(state, dict):
        raise VerifierDataError("a torch state dict", type(state).__name__, source=weights)
    return dict(state)


def import_torchxrayvision(
    weights: str | Path, out: str | Path, *, name: str = "xrv-densenet121-res224-all",
    allow_pickle: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Convert torchxrayvision DenseNet-121 weights into ``out/model.onnx`` and the sidecar
    ``out/model.json``; returns a summary (paths, architecture source, ONNX check)."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "train", "Converting torchxrayvision weights") from None
    import numpy as np

    weights, out = Path(weights), Path(out)
    network, points, architecture = _network()
    state = _state_dict(weights, allow_pickle)
    stored = state.pop("op_threshs", None)
    if stored is not None and points is None:
        points = [None if not bool(torch.isfinite(p)) else float(p) for p in stored.reshape(-1)]
    expected = "the parameters of torchxrayvision's DenseNet-121 (18 outputs)"
    try:
        missing, unexpected = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a parameter of another shape
        lines = [line.strip() for line in str(error).splitlines()[1:4]]
        raise VerifierDataError(expected, "; ".join(lines)[:400], source=weights) from None
    if missing or unexpected:
        raise VerifierDataError(
            expected,
            f"{len(missing)} missing (e.g. {list(missing)[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {list(unexpected)[:3]})",
            source=weights,
        )
    network.eval()
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.onnx"
    tmp = out / "model.onnx.part"
    dummy = torch.zeros(1, 1, 224, 224)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(
            network, (dummy,), str(tmp), input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip
        tmp.replace(model)
        probe = torch.linspace(-1024.0, 1024.0, 224 * 224).reshape(1, 1, 224, 224)
        reference = network(probe).numpy()
    import onnxruntime  # type: ignore[import-untyped]

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": probe.numpy()})[0]
    difference = float(np.max(np.abs(np.asarray(got) - reference)))
    if not difference < 1e-3 * max(1.0, float(np.max(np.abs(reference)))):
        raise VerifierDataError("an ONNX graph that reproduces the network",
                                f"outputs differing by {difference:.3g}", source=model)  # fmt: skip
    sidecar = xrv_sidecar(model, name=name, operating_points=points).save(out / "model.json")
    return {
        "model": str(model),
        "sidecar": str(sidecar),
        "architecture": architecture,
        "operating_points": points is not None,
        "onnx_max_abs_difference": difference,
    }


@click.group("verifier")
def verifier() -> None:
    """Bring a classifier trained on real films in as a verifier (a second opinion)."""


@verifier.command("import")
@click.argument("library", type=click.Choice(["torchxrayvision"]))
@click.option(
    "--weights",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="torchxrayvision DenseNet-121 weights (densenet121-res224-all) you obtained yourself; "
    "radloop never downloads weights.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write model.onnx and its sidecar model.json into.",
)
@click.option("--name", default="xrv-densenet121-res224-all", show_default=True,
              help="The verifier's name in drafts and reports.")  # fmt: skip
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Also accept a whole pickled model (torchxrayvision's own .pt files); unpickling "
    "runs code, so only for files from a source you trust.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def import_command(
    library: str, weights: Path, out: Path, name: str, allow_pickle: bool, as_json: bool
) -> None:
    """Convert a classifier's weights into ONNX + sidecar for the ``onnx`` verifier.

    Needs torch (pip install 'radloop[train]'); uses torchxrayvision's own model code when it
    is installed, else radloop's copy of the architecture (same layer names).
    """
    summary = import_torchxrayvision(weights, out, name=name, allow_pickle=allow_pickle)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"wrote {summary['model']} and {summary['sidecar']} "
               f"(architecture from {summary['architecture']})")  # fmt: skip
    click.echo(f"use it as load_verifier('onnx', sidecar='{summary['sidecar']}')")
