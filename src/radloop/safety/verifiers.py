"""The registry of verifiers: built-ins and third-party entry points.

A verifier is registered by name with ``@register_verifier("name")`` on a factory (a class or
function returning a :class:`~radloop.safety.verify.Verifier`); its docstring's first line
describes it. Built in:

- ``reference``: radloop's reference model (the default; not built yet), and
- ``table``: precomputed outputs from a dict or a JSON file, for tests and for a hospital's
  own classifier run elsewhere.

Third-party packages add verifiers through the ``radloop.verifiers`` entry-point group::

    [project.entry-points."radloop.verifiers"]
    hospital = "mypackage.radloop_verifier:HospitalVerifier"
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from radloop.errors import UnknownFindingError
from radloop.models.errors import MissingReferenceModelError
from radloop.registry import Registry
from radloop.safety.errors import UnknownVerifierError, VerifierDataError
from radloop.safety.verify import Verifier, VerifierOutput
from radloop.study import Study
from radloop.vocabulary import Zone

__all__ = [
    "DEFAULT_VERIFIER",
    "ENTRY_POINT_GROUP",
    "TableVerifier",
    "available_verifiers",
    "describe_verifier",
    "load_verifier",
    "output_from_json",
    "output_to_json",
    "register_verifier",
]

ENTRY_POINT_GROUP = "radloop.verifiers"
DEFAULT_VERIFIER = "reference"

VerifierFactory = Callable[..., Verifier]
F = TypeVar("F", bound=VerifierFactory)

_VERIFIERS: Registry[Verifier] = Registry(
    "verifier", ENTRY_POINT_GROUP, unknown_error=UnknownVerifierError
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


# --- built-ins -------------------------------------------------------------------------------


@register_verifier("reference")
def load_reference_verifier(model: str | Path | None = None) -> Verifier:
    """radloop's reference model as the independent verifier (not built yet)."""
    where = f" at {model}" if model is not None else ""
    raise MissingReferenceModelError(
        f"the reference verifier needs the reference model, which is not built yet{where}: "
        "run `radloop train-reference` once the synthetic lab is installed, or verify with "
        "precomputed outputs (load_verifier('table', path=...)) or a registered verifier"
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
        assert table is not None
        self._name = name
        self._outputs = {
            str(uid): output_from_json(entry, verifier=name, where=f"{where}[{uid!r}]")
            for uid, entry in table.items()
        }

    @property
    def verifier_id(self) -> str:
        return self._name

    def verify(self, study: Study) -> VerifierOutput:
        """The stored outputs of the study; an empty output (nothing assessed) if absent."""
        return self._outputs.get(study.study_instance_uid, VerifierOutput(verifier=self._name))
