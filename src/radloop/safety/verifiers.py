"""The registry of verifiers: built-ins and third-party entry points.

A verifier is registered by name with ``@register_verifier("name")`` on a factory (a class or
function returning a :class:`~radloop.safety.verify.Verifier`); its docstring's first line
describes it. Built in:

- ``reference``: radloop's reference model (the default), and
- ``table``: precomputed outputs from a dict or a JSON file, for tests and for a hospital's
  own classifier run elsewhere, and
- ``onnx``: any image classifier exported to ONNX, described by a sidecar JSON file
  (``radloop.safety.onnx_verifier``; e.g. torchxrayvision's models, trained on real films).

Third-party packages add verifiers through the ``radloop.verifiers`` entry-point group::

    [project.entry-points."radloop.verifiers"]
    hospital = "mypackage.radloop_verifier:HospitalVerifier"

A hospital's CAD model exported to ONNX needs no code: ``onnx`` with its sidecar.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from radloop.errors import UnknownFindingError
from radloop.models.competence import Competence, DomainDecision, competence_of
from radloop.registry import Registry
from radloop.safety.errors import UnknownVerifierError, VerifierDataError
from radloop.safety.verify import Verifier, VerifierOutput
from radloop.study import Study
from radloop.vocabulary import Zone

__all__ = [
    "DEFAULT_VERIFIER",
    "ENTRY_POINT_GROUP",
    "ReadOnce",
    "TableVerifier",
    "available_verifiers",
    "describe_verifier",
    "load_verifier",
    "output_from_json",
    "output_to_json",
    "register_verifier",
    "verifier_domain",
]

ENTRY_POINT_GROUP = "radloop.verifiers"
DEFAULT_VERIFIER = "reference"

VerifierFactory = Callable[..., Verifier]
F = TypeVar("F", bound=VerifierFactory)

_VERIFIERS: Registry[Verifier] = Registry(
    "verifier",
    ENTRY_POINT_GROUP,
    unknown_error=UnknownVerifierError,
    builtins={"onnx": "radloop.safety.onnx_verifier"},  # imported when first used
)


def register_verifier(name: str) -> Callable[[F], F]:
    """Register a verifier class or factory under ``name`` (lower case, no slash)."""
    return _VERIFIERS.register(name)


def available_verifiers() -> list[str]:
    """Names of every verifier: built-in, registered in this process, or from entry points."""
    return _VERIFIERS.names()


def _factory(name: str) -> VerifierFactory:
    return _VERIFIERS.factory(name)


def describe_verifier(name: str) -> str:
    """The one-line description of a verifier (its docstring's first line)."""
    return _VERIFIERS.describe(name)


def load_verifier(name: str = DEFAULT_VERIFIER, **options: Any) -> Verifier:
    """An instance of verifier ``name`` built with ``options``."""
    instance = _factory(name)(**options)
    if not isinstance(instance, Verifier):
        raise TypeError(f"verifier {name!r} returned {type(instance).__name__}, not a Verifier")
    return instance


def verifier_domain(
    verifier: Verifier, study: Study, output: VerifierOutput | None = None
) -> DomainDecision:
    """Whether ``study`` lies in a validated domain of ``verifier`` (its ``assess_domain``,
    given the verifier's reading ``output`` of it when at hand); a verifier that cannot tell
    is outside every domain, so it is never used as evidence."""
    assess = getattr(verifier, "assess_domain", None)
    if callable(assess):
        decision = assess(study, output)
        if isinstance(decision, DomainDecision):
            return decision
    name = str(verifier.verifier_id)
    if not competence_of(verifier, name).declared:
        reason = f"the verifier {name!r} declares no validated domain"
    else:
        reason = f"the verifier {name!r} has no domain check, so no film is shown to lie in it"
    return DomainDecision(name, None, reason)


# --- built-ins -------------------------------------------------------------------------------


class ReadOnce:
    """A verifier that reads each study once and keeps the output.

    The scope guard's OOD score, the claim check (which may read the study again, and its
    prior) and the viewer's heatmaps then share one reading instead of running the model
    for each; ``output`` is the last study's reading. A study is known by its Study Instance
    UID *and* its images' SOP Instance UIDs: PNG or JPEG films of one folder share a
    synthetic study UID, and each loaded on its own is a different study.
    """

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self._outputs: dict[tuple[str, ...], VerifierOutput] = {}
        self._domains: dict[tuple[str, ...], DomainDecision] = {}
        self.output: VerifierOutput | None = None

    @staticmethod
    def _key(study: Study) -> tuple[str, ...]:
        return (study.study_instance_uid, *(image.sop_instance_uid for image in study.images))

    @property
    def verifier_id(self) -> str:
        return str(self.inner.verifier_id)

    @property
    def competence(self) -> Competence:
        return competence_of(self.inner, self.verifier_id)

    def assess_domain(self, study: Study, output: VerifierOutput | None = None) -> DomainDecision:
        uid = self._key(study)
        if uid not in self._domains:
            reading = self.verify(study)  # one reading serves the domain check too
            self._domains[uid] = verifier_domain(self.inner, study, reading)
        return self._domains[uid]

    def verify(self, study: Study) -> VerifierOutput:
        uid = self._key(study)
        if uid not in self._outputs:
            self._outputs[uid] = self.inner.verify(study)
        self.output = self._outputs[uid]
        return self.output


@register_verifier("reference")
class ReferenceVerifier:
    """radloop's reference model as the independent verifier (trained on synthetic images)."""

    def __init__(self, model: str | Path | None = None) -> None:
        from radloop.models.builtin import ReferenceModel, load_reference_model

        loaded = load_reference_model(model)
        assert isinstance(loaded, ReferenceModel)
        self._model = loaded

    @property
    def verifier_id(self) -> str:
        return self._model.model_id

    @property
    def competence(self) -> Competence:
        """The reference model's validated domain: the synthetic lab only."""
        return self._model.competence

    def assess_domain(self, study: Study, output: VerifierOutput | None = None) -> DomainDecision:
        """In domain when the model's embedding of the frontal image lies among its
        training-like images (the OOD reference's threshold, chosen on its validation images);
        from ``output``'s embedding when given, so the check reads no image again."""
        if output is not None and output.embedding is not None:
            return self._model.domain_of(output.embedding)
        return self._model.assess_domain(study.images)

    def ood_scorer(self) -> Any:
        """The model's shipped OOD reference as a :class:`MahalanobisScorer`, or None."""
        from radloop.safety.scope import MahalanobisScorer

        reference = self._model.ood_reference
        return None if reference is None else MahalanobisScorer.from_dict(reference)

    def verify(self, study: Study) -> VerifierOutput:
        """The network's reading of the study's frontal image as verifier evidence.

        Only finding types the model can see (validation AUROC ≥ 0.9, as in its predictor)
        are assessed; claims of other types come back ``unverifiable``, never "supported" by
        a head that is near chance.
        """
        import time

        from radloop.models.reference.predictor import extents_from_output
        from radloop.models.reference.runtime import assessed_findings

        started = time.perf_counter()
        images = study.images
        real = self._model.real_film_reading(images)
        if real is not None:
            return self._real_film_output(real, started)
        output = self._model.read(images)
        if output is None:
            return VerifierOutput(self.verifier_id, latency_s=time.perf_counter() - started)
        reliable = assessed_findings(output, self._model.sidecar)
        codes = [c for c in output.probabilities if c in reliable]
        shape = images[0].pixels.shape if len(images) == 1 else None
        sizes = {
            code: output.regressions[name]
            for code, name in (("nodule", "nodule_mm"), ("mass", "mass_mm"))
            if code in reliable and output.regressions.get(name, 0.0) > 0
        }
        views = {"LATERAL" if v == "LL" else v: p for v, p in output.view_probabilities.items()}
        return VerifierOutput(
            self.verifier_id,
            presence={c: float(output.probabilities[c]) for c in codes},
            zones={c: dict(output.zone_probabilities[c]) for c in codes
                   if c in output.zone_probabilities},
            heatmaps={c: output.heatmap(c, shape) for c in codes},
            sizes_mm=sizes,
            cardiothoracic_ratio=output.regressions.get("ctr"),
            tube_tip_to_carina_mm=(
                output.regressions.get("ett_tip_mm") if "endotracheal_tube" in codes else None
            ),
            view=views,
            embedding=output.embedding,
            latency_s=time.perf_counter() - started,
            extents=extents_from_output(output, self._model.sidecar),
        )  # fmt: skip

    def _real_film_output(self, fields: Any, started: float) -> VerifierOutput:
        """On a real film in the declared real-film domain: the lung-fields reading of the
        admitted types only. No embedding: the domain check then asks the model, whose
        decision for this film is the real-film domain."""
        import time

        from radloop.models.reference.realfilm import opacity_evidence

        evidence = opacity_evidence(fields, self._model.real_domain[0])
        return VerifierOutput(
            self.verifier_id,
            presence=evidence["presence"],
            zones=evidence["zones"],
            heatmaps=evidence["heatmaps"],
            latency_s=time.perf_counter() - started,
        )


def _probabilities(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise VerifierDataError(
            "an object of code: probability", type(value).__name__, source=where
        )
    return {str(k): float(v) for k, v in value.items()}


def output_from_json(data: Mapping[str, Any], *, verifier: str, where: str = "") -> VerifierOutput:
    """A :class:`VerifierOutput` from its JSON form (see docs/safety.md, "Table verifier")."""
    try:
        zones = {
            str(code): {Zone(z): float(p) for z, p in _probabilities(by_zone, where).items()}
            for code, by_zone in dict(data.get("zones", {})).items()
        }
        heatmaps = {
            str(code): np.asarray(rows, dtype=np.float32)
            for code, rows in dict(data.get("heatmaps", {})).items()
        }
        ctr = data.get("cardiothoracic_ratio")
        tip = data.get("tube_tip_to_carina_mm")
        embedding = data.get("embedding")
        return VerifierOutput(
            verifier=verifier,
            presence=_probabilities(data.get("presence", {}), where),
            zones=zones,
            heatmaps=heatmaps,
            sizes_mm=_probabilities(data.get("sizes_mm", {}), where),
            cardiothoracic_ratio=None if ctr is None else float(ctr),
            tube_tip_to_carina_mm=None if tip is None else float(tip),
            view=_probabilities(data.get("view", {}), where),
            embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        )
    except (ValueError, TypeError, UnknownFindingError) as error:
        raise VerifierDataError(
            "verifier outputs as in docs/safety.md (codes from radloop.vocabulary, zones such "
            "as 'right_upper', probabilities in [0, 1])",
            str(error),
            source=where or None,
        ) from None


def output_to_json(output: VerifierOutput) -> dict[str, Any]:
    """The JSON form of a :class:`VerifierOutput` (heatmaps as nested lists)."""
    out: dict[str, Any] = {"presence": dict(output.presence)}
    if output.zones:
        out["zones"] = {c: {z.value: p for z, p in by.items()} for c, by in output.zones.items()}
    if output.heatmaps:
        out["heatmaps"] = {c: h.tolist() for c, h in output.heatmaps.items()}
    if output.sizes_mm:
        out["sizes_mm"] = dict(output.sizes_mm)
    for name in ("cardiothoracic_ratio", "tube_tip_to_carina_mm"):
        if getattr(output, name) is not None:
            out[name] = getattr(output, name)
    if output.view:
        out["view"] = dict(output.view)
    if output.embedding is not None:
        out["embedding"] = output.embedding.tolist()
    return out


@register_verifier("table")
class TableVerifier:
    """Precomputed verifier outputs per study, from a dict or a JSON file."""

    def __init__(
        self,
        table: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        path: str | Path | None = None,
        name: str = "table",
        competence: Mapping[str, Any] | Competence | None = None,
    ) -> None:
        if (table is None) == (path is None):
            raise ValueError('Pass exactly one of the arguments "table" and "path".')
        where = str(path) if path is not None else "table"
        if path is not None:
            try:
                data = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise VerifierDataError(
                    "a JSON file of verifier outputs", str(error), source=path
                ) from None
            if not isinstance(data, Mapping) or not isinstance(data.get("studies"), Mapping):
                raise VerifierDataError(
                    'an object with "studies": {uid: outputs}', type(data).__name__, source=path
                )
            name = str(data.get("verifier", name))
            table = data["studies"]
            if competence is None and isinstance(data.get("competence"), Mapping):
                competence = data["competence"]
        assert table is not None
        self._name = name
        if isinstance(competence, Mapping):
            competence = Competence.from_dict(competence, owner=name)
        self._competence = competence or Competence(name)
        self._study_domains = {
            str(uid): str(entry["domain"])
            for uid, entry in table.items()
            if isinstance(entry, Mapping) and isinstance(entry.get("domain"), str)
        }
        self._outputs = {
            str(uid): output_from_json(entry, verifier=name, where=f"{where}[{uid!r}]")
            for uid, entry in table.items()
        }

    @property
    def verifier_id(self) -> str:
        return self._name

    @property
    def competence(self) -> Competence:
        """What the table declares (``"competence"`` in its file); nothing by default."""
        return self._competence

    def assess_domain(self, study: Study, output: VerifierOutput | None = None) -> DomainDecision:
        """A listed study lies in the domain its entry names (``"domain"``), else in the
        table's first declared domain; an unlisted one in none."""
        uid = study.study_instance_uid
        if not self._competence.declared:
            reason = f"the verifier {self._name!r} declares no validated domain"
            return DomainDecision(self._name, None, reason)
        if uid not in self._outputs:
            return DomainDecision(self._name, None, f"{self._name!r} has no reading of this study")
        domain = self._study_domains.get(uid, self._competence.domains[0].name)
        if self._competence.domain(domain) is None:
            return DomainDecision(
                self._name, None, f"{self._name!r} is not validated on the domain {domain!r}"
            )
        return DomainDecision(self._name, domain, f"{self._name!r} declares this study {domain}")

    def verify(self, study: Study) -> VerifierOutput:
        """The stored outputs of the study; an empty output (nothing assessed) if absent."""
        return self._outputs.get(study.study_instance_uid, VerifierOutput(verifier=self._name))
