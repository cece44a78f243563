"""A verifier from any image classifier exported to ONNX, described by a sidecar JSON file.

A hospital's own CAD model, or a public classifier trained on real films (torchxrayvision's
DenseNet-121, converted with ``radloop verifier import torchxrayvision``), becomes evidence
about a draft's claims: ``load_verifier("onnx", sidecar="model.json")``. The sidecar
(``radloop-onnx-verifier``, version 1; docs/safety.md) gives

- ``model``: the ONNX file, relative to the sidecar;
- ``labels``: the network's outputs in order, and ``label_map``: each label's radloop finding
  code (``radloop.vocabulary``), or null for an output radloop has no code for;
- ``input``: ``size`` [height, width], ``crop`` (``centre``: the largest centred square first,
  or ``none``) and the intensity normalisation: the film's grey levels 0..1 mapped linearly
  onto ``range`` [low, high], or standardised with ``mean`` and ``std``;
- ``output``: ``logits`` or ``probabilities``, and optional ``operating_points`` (one per
  label: the probability at which the model's authors call the finding present; it is mapped
  to 0.5, as torchxrayvision's ``op_norm`` does, so radloop's thresholds sit at the model's
  operating point);
- ``competence``: the validated domain (``radloop.models.competence``), e.g. ``real-frontal``
  with the collections it was trained and validated on and its finding types, and
  ``views``/``modalities``: the films it reads. A study whose frontal film has another view or
  modality, or no recorded view, lies outside the domain: the verifier is then silent and a
  claim is *not checked*.

Only the outputs the sidecar maps, and of those only the finding types its domain lists, are
ever evidence (the fail-safe gate in ``radloop.safety.pipeline``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.errors import UnknownFindingError
from radloop.models.competence import Competence, DomainDecision
from radloop.safety.errors import VerifierDataError
from radloop.safety.verifiers import register_verifier
from radloop.safety.verify import VerifierOutput
from radloop.study import Image, Study
from radloop.vocabulary import finding

__all__ = [
    "SIDECAR_FORMAT",
    "OnnxSidecar",
    "OnnxVerifier",
    "frontal_image",
    "prepare_input",
]

SIDECAR_FORMAT = "radloop-onnx-verifier"
SIDECAR_VERSION = 1
FRONTAL_VIEWS = ("PA", "AP")
_EXPECTED = (
    f'a {SIDECAR_FORMAT} sidecar: {{"format", "model", "labels", "label_map", "input", '
    '"output", "competence"} as in docs/safety.md'
)


@dataclass(frozen=True)
class OnnxSidecar:
    """What radloop needs to know about an ONNX classifier to use it as a verifier."""

    name: str
    model: Path
    labels: tuple[str, ...]
    label_map: Mapping[str, str | None]
    size: tuple[int, int]
    competence: Competence
    crop: str = "centre"
    value_range: tuple[float, float] | None = (0.0, 1.0)
    mean: float | None = None
    std: float | None = None
    output_kind: str = "logits"
    operating_points: tuple[float | None, ...] | None = None
    views: tuple[str, ...] = FRONTAL_VIEWS
    modalities: tuple[str, ...] = ("CR", "DX")
    input_name: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        model = self.model.name if relative_to is not None else str(self.model)
        normalise: dict[str, Any] = (
            {"range": list(self.value_range)}
            if self.value_range is not None
            else {"mean": self.mean, "std": self.std}
        )
        output: dict[str, Any] = {"kind": self.output_kind}
        if self.operating_points is not None:
            output["operating_points"] = list(self.operating_points)
        return {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "name": self.name,
            "model": model,
            "labels": list(self.labels),
            "label_map": dict(self.label_map),
            "input": {
                "name": self.input_name,
                "size": list(self.size),
                "crop": self.crop,
                **normalise,
            },
            "output": output,
            "views": list(self.views),
            "modalities": list(self.modalities),
            "competence": self.competence.to_dict(),
            "source": dict(self.source),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        text = json.dumps(self.to_dict(relative_to=path.parent), indent=2)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> OnnxSidecar:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise VerifierDataError(_EXPECTED, str(error), source=path) from None
        return cls.from_dict(data, base=path.parent, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, base: Path, source: str = "sidecar") -> OnnxSidecar:
        if not isinstance(data, Mapping) or data.get("format") != SIDECAR_FORMAT:
            raise VerifierDataError(_EXPECTED, repr(data)[:120], source=source)
        if data.get("version") != SIDECAR_VERSION:
            raise VerifierDataError(
                f"sidecar version {SIDECAR_VERSION}", repr(data.get("version")), source=source
            )
        try:
            return _sidecar(data, base)
        except (KeyError, TypeError, ValueError, UnknownFindingError) as error:
            raise VerifierDataError(_EXPECTED, f"{type(error).__name__}: {error}",
                                    source=source) from None  # fmt: skip


def _sidecar(data: Mapping[str, Any], base: Path) -> OnnxSidecar:
    labels = tuple(str(label) for label in data["labels"])
    raw_map = data["label_map"]
    if not isinstance(raw_map, Mapping):
        raise TypeError(f'"label_map" must be an object, got {type(raw_map).__name__}')
    label_map: dict[str, str | None] = {}
    for label, code in raw_map.items():
        if label not in labels:
            raise ValueError(f"label_map names {label!r}, which is not among the labels")
        if code is not None:
            finding(str(code))  # an unknown code raises UnknownFindingError
        label_map[str(label)] = None if code is None else str(code)
    spec = data["input"]
    size = tuple(int(v) for v in spec["size"])
    if len(size) != 2 or min(size) < 8:
        raise ValueError(f'input "size" must be [height, width] of at least 8, got {size}')
    crop = str(spec.get("crop", "centre"))
    if crop not in ("centre", "none"):
        raise ValueError(f'input "crop" must be "centre" or "none", got {crop!r}')
    value_range: tuple[float, float] | None = None
    mean = std = None
    if "range" in spec:
        low, high = (float(v) for v in spec["range"])
        if not high > low:
            raise ValueError(f'input "range" must rise, got {[low, high]}')
        value_range = (low, high)
    else:
        mean, std = float(spec["mean"]), float(spec["std"])
        if not std > 0:
            raise ValueError(f'input "std" must be positive, got {std}')
    output = data["output"]
    kind = str(output.get("kind", "logits"))
    if kind not in ("logits", "probabilities"):
        raise ValueError(f'output "kind" must be "logits" or "probabilities", got {kind!r}')
    points = output.get("operating_points")
    operating: tuple[float | None, ...] | None = None
    if points is not None:
        operating = tuple(None if p is None else float(p) for p in points)
        if len(operating) != len(labels):
            raise ValueError(f"{len(operating)} operating points for {len(labels)} labels")
        if any(p is not None and not 0.0 < p < 1.0 for p in operating):
            raise ValueError("operating points must lie strictly between 0 and 1")
    name = str(data.get("name") or Path(str(data["model"])).stem)
    competence = Competence.from_dict(data.get("competence", {}), owner=name)
    for domain in competence.domains:
        for code in domain.findings:
            finding(code)
    return OnnxSidecar(
        name=name,
        model=(base / str(data["model"])).resolve(),
        labels=labels,
        label_map=label_map,
        size=(size[0], size[1]),
        competence=competence,
        crop=crop,
        value_range=value_range,
        mean=mean,
        std=std,
        output_kind=kind,
        operating_points=operating,
        views=tuple(str(v).upper() for v in data.get("views", FRONTAL_VIEWS)),
        modalities=tuple(str(m).upper() for m in data.get("modalities", ("CR", "DX"))),
        input_name=spec.get("name"),
        source=dict(data.get("source", {})),
    )


def _view_of(study: Study, image: Image) -> str | None:
    view = image.view_position or study.metadata.view_position
    if not view:
        return None
    word = view.strip().upper()
    return "AP" if word.startswith("AP") else word


def frontal_image(study: Study, views: Sequence[str] = FRONTAL_VIEWS) -> Image | None:
    """The study's first image whose recorded view is one of ``views``, else None."""
    for image in study.images:
        if _view_of(study, image) in views:
            return image
    return None


def prepare_input(pixels: npt.ArrayLike, sidecar: OnnxSidecar) -> npt.NDArray[np.float32]:
    """One film's grey levels (0..1, display-ready) as the network's input, 1 x 1 x H x W."""
    from PIL import Image as PILImage

    x = np.asarray(pixels, dtype=np.float32)
    if x.ndim == 3:
        x = x.mean(axis=-1)
    if x.ndim != 2:
        raise VerifierDataError("a 2-D grey-level image", f"an array of shape {x.shape}")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:  # raw stored values: scale to 0..1
        x = (x - low) / (high - low) if high > low else np.zeros_like(x)
    if sidecar.crop == "centre":
        h, w = x.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[top : top + side, left : left + side]
    height, width = sidecar.size
    resized = PILImage.fromarray(x, mode="F").resize((width, height), PILImage.Resampling.BILINEAR)
    x = np.asarray(resized, dtype=np.float32)
    if sidecar.value_range is not None:
        a, b = sidecar.value_range
        x = a + x * (b - a)
    else:
        assert sidecar.mean is not None and sidecar.std is not None
        x = (x - sidecar.mean) / sidecar.std
    return x[None, None, :, :].astype(np.float32)


def _probabilities(raw: npt.NDArray[np.float32], sidecar: OnnxSidecar) -> list[float]:
    values = np.asarray(raw, dtype=np.float64).reshape(-1)
    if values.size != len(sidecar.labels):
        raise VerifierDataError(
            f"{len(sidecar.labels)} outputs (one per label in the sidecar)",
            f"{values.size} from {sidecar.model.name}",
        )
    if sidecar.output_kind == "logits":
        values = 1.0 / (1.0 + np.exp(-np.clip(values, -40.0, 40.0)))
    out: list[float] = []
    for i, value in enumerate(values.tolist()):
        p = min(max(value, 0.0), 1.0) if math.isfinite(value) else math.nan
        point = sidecar.operating_points[i] if sidecar.operating_points else None
        if point is not None and math.isfinite(p):
            # torchxrayvision's op_norm: the operating point becomes 0.5, each side linear.
            p = p / (2 * point) if p < point else 1.0 - (1.0 - p) / (2 * (1.0 - point))
        out.append(p)
    return out


@register_verifier("onnx")
class OnnxVerifier:
    """An image classifier exported to ONNX, with a sidecar: label map, input, domain."""

    def __init__(self, sidecar: str | Path | OnnxSidecar) -> None:
        self.sidecar = sidecar if isinstance(sidecar, OnnxSidecar) else OnnxSidecar.load(sidecar)
        if not self.sidecar.model.is_file():
            raise VerifierDataError(
                "the ONNX file the sidecar names", f"no file at {self.sidecar.model}"
            )
        self._session: Any = None

    @property
    def verifier_id(self) -> str:
        return self.sidecar.name

    @property
    def competence(self) -> Competence:
        """The validated domain the sidecar declares (nothing declared: never evidence)."""
        return self.sidecar.competence

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._session is None:
            import onnxruntime  # type: ignore[import-untyped]

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(self.sidecar.model), options, providers=["CPUExecutionProvider"]
            )
        name = self.sidecar.input_name or self._session.get_inputs()[0].name
        result = self._session.run(None, {name: batch})
        return np.asarray(result[0], dtype=np.float32)

    def assess_domain(self, study: Study, output: VerifierOutput | None = None) -> DomainDecision:
        """In the sidecar's first real-film domain when the study has a film of a validated
        view (``views``) and, where recorded, modality; outside it otherwise."""
        name = self.verifier_id
        domains = self.competence.domains
        if not domains:
            return DomainDecision(name, None, f"the verifier {name!r} declares no validated domain")
        domain = domains[0].name
        modality = (study.metadata.modality or "").upper()
        if modality and modality not in self.sidecar.modalities:
            return DomainDecision(
                name, None, f"{name!r} is validated on {', '.join(self.sidecar.modalities)} "
                f"films, not {modality}",
            )  # fmt: skip
        if frontal_image(study, self.sidecar.views) is None:
            views = sorted({_view_of(study, i) or "unrecorded" for i in study.images})
            return DomainDecision(
                name, None, f"{name!r} is validated on {'/'.join(self.sidecar.views)} views; "
                f"this study has {', '.join(views) or 'no image'}",
            )  # fmt: skip
        return DomainDecision(
            name, domain, f"a {'/'.join(self.sidecar.views)} film, as {name!r} was validated on"
        )

    def verify(self, study: Study) -> VerifierOutput:
        """The network's probability of each mapped finding on the study's frontal film;
        nothing assessed when the study has no film of a validated view."""
        started = time.perf_counter()
        image = frontal_image(study, self.sidecar.views)
        if image is None:
            return VerifierOutput(self.verifier_id, latency_s=time.perf_counter() - started)
        probabilities = _probabilities(self._run(prepare_input(image.pixels, self.sidecar)),
                                       self.sidecar)  # fmt: skip
        presence: dict[str, float] = {}
        for label, p in zip(self.sidecar.labels, probabilities, strict=True):
            code = self.sidecar.label_map.get(label)
            if code is not None and math.isfinite(p):
                presence[code] = max(p, presence.get(code, 0.0))
        return VerifierOutput(
            self.verifier_id, presence=presence, latency_s=time.perf_counter() - started
        )
