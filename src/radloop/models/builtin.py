"""The ``builtin`` backend: radloop's reference model, a compact network run with onnxruntime.

The network (``radloop.models.reference``) was trained only on synthetic radiographs rendered
from one CT (``radloop.lab.synth``); its model card (``radloop/data/reference/MODEL_CARD.md``)
says what it is for and what it is not. It implements both interfaces of
``radloop.models.base``:

- ``FindingsPredictor.predict_findings``: the structured findings, which ``radloop.assist``
  uses directly (``compare`` diffs two of them), and
- ``VisionLanguageModel.generate``: a report written from those findings with
  ``radloop.report.write``, after a one-line notice, so ``radloop serve-model --model builtin``
  can stand in for an MLLM server.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from radloop.errors import MissingExtraError
from radloop.models.base import (
    Generation,
    JsonSchema,
    VisionLanguageModel,
    ZoneChange,
)
from radloop.models.competence import (
    REAL_FILMS,
    SYNTHETIC_LAB,
    Competence,
    DomainDecision,
    ValidatedDomain,
)
from radloop.models.errors import MissingReferenceModelError
from radloop.models.registry import register_model
from radloop.report import Finding, write
from radloop.study import Image

__all__ = ["NOTICE", "OOD_NAME", "ReferenceModel", "load_reference_model", "shipped_model_dir"]

NOTICE = (
    "radloop reference model, trained only on synthetic radiographs from one CT: "
    "a research draft, not a diagnosis."
)
ONNX_NAME = "reference.onnx"
SIDECAR_NAME = "reference.json"
OOD_NAME = "reference-ood.json"
"""Beside the weights: where the model's embeddings of its training distribution lie (mean,
precision, threshold; written by ``radloop fit-ood``), for the scope guard's OOD flag."""


def shipped_model_dir() -> Path:
    """The folder of the weights shipped inside the package."""
    with as_file(files("radloop").joinpath("data", "reference")) as path:
        return Path(path)


class ReferenceModel(VisionLanguageModel):
    """radloop's reference model (ONNX), reading the frontal image of a study.

    It is deterministic and cannot sample: its ``supports_sampling`` is False, so radloop
    never asks it for self-consistency samples (they would all agree by construction).
    """

    notice = NOTICE
    supports_sampling = False

    def __init__(self, directory: Path) -> None:
        onnx_path, sidecar_path = directory / ONNX_NAME, directory / SIDECAR_NAME
        missing = [p.name for p in (onnx_path, sidecar_path) if not p.is_file()]
        if missing:
            raise MissingReferenceModelError(
                f"expected the reference model's {' and '.join(missing)} in {directory}, "
                "found none: reinstall radloop (the weights ship in the package) or rebuild "
                "them with `radloop train-reference --out DIR` (needs "
                "pip install 'radloop[train,synth]') and pass --option model=DIR"
            )
        try:
            from radloop.models.reference.runtime import ReferenceRuntime
        except ImportError as error:  # pragma: no cover - onnxruntime is a core dependency
            raise MissingExtraError("onnxruntime", "core", "The builtin model") from error
        self.directory = directory
        self.runtime = ReferenceRuntime(onnx_path, sidecar_path)
        self._last_read: tuple[tuple[Image, ...], Any] | None = None
        self._last_fields: tuple[Image, Any] | None = None
        self._domain: tuple[Any, float] | None = None
        self.version = str(self.runtime.sidecar.get("version", "unknown"))

    @property
    def model_id(self) -> str:
        return f"radloop-reference-{self.version}"

    @property
    def sidecar(self) -> dict[str, Any]:
        return self.runtime.sidecar

    @functools.cached_property
    def ood_reference(self) -> dict[str, Any] | None:
        """The OOD reference shipped beside the weights (``reference-ood.json``), if any;
        read once (the domain check asks for it on every study)."""
        path = self.directory / OOD_NAME
        if not path.is_file():
            legacy = self.sidecar.get("ood")
            return legacy if isinstance(legacy, dict) else None
        loaded = json.loads(path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else None

    @functools.cached_property
    def real_domain(self) -> Any:
        """The declared real-film domain (``realfilm-domain.json`` beside the weights, written
        from ``radloop bench sim2real``), when it admits a finding type, with the lung-fields
        network that reads those films; else None."""
        from radloop.models.reference.lungfields import load_lung_fields
        from radloop.models.reference.realfilm import REALFILM_DOMAIN, RealFilmDomain

        path = self.directory / REALFILM_DOMAIN
        if not path.is_file():
            return None
        domain = RealFilmDomain.from_file(path)
        fields = load_lung_fields(str(self.directory))
        return (domain, fields) if domain.findings and fields is not None else None

    def _real_reading(self, images: Sequence[Image]) -> Any:
        """The lung-fields reading of the study's frontal film (cached like :meth:`read`)."""
        image = _film(images)
        cached = self._last_fields
        if cached is not None and cached[0] is image:
            return cached[1]
        reading = self.real_domain[1].read(image.pixels)
        self._last_fields = (image, reading)
        return reading

    @property
    def competence(self) -> Competence:
        """Validated on the synthetic lab only: the finding types whose validation AUROC on
        the lab's held-out studies reaches the reporting bar, with those figures."""
        from radloop.models.reference.runtime import reliable_findings

        auroc = self.sidecar.get("validation", {}).get("auroc", {}) or {}
        codes = tuple(sorted(reliable_findings(self.sidecar)))
        lab = ValidatedDomain(
            SYNTHETIC_LAB,
            images="the synthetic lab's frontal radiographs (rendered from chest CTs with "
            "inserted findings; site profiles standard, portable, community)",
            findings=codes,
            figures={f"auroc.{c}": float(auroc[c]) for c in codes if c in auroc},
        )
        if self.real_domain is None:
            return Competence(
                self.model_id,
                (lab,),
                note="trained and validated on synthetic radiographs only: no real-film "
                "domain was earned, so on real films it abstains and, as a verifier, is silent",
            )
        declared = self.real_domain[0]
        real = ValidatedDomain(
            REAL_FILMS,
            images="real frontal chest films the lung-fields network places in its domain",
            findings=declared.findings,
            figures=dict(declared.figures),
            collections=declared.collections,
        )
        return Competence(
            self.model_id,
            (lab, real),
            note="trained on synthetic radiographs only; on real films it speaks only for "
            f"{', '.join(declared.findings)}, whose real-film figures met their bars",
        )

    def assess_domain(self, images: Sequence[Image]) -> DomainDecision:
        """Whether a study lies in the synthetic-lab domain: the Mahalanobis distance of the
        model's embedding to its training-like images (``reference-ood.json``) at most the
        threshold chosen on its own validation images."""
        output = self.read(images) if self.ood_reference is not None else None
        decision = self.domain_of(None if output is None else output.embedding, bool(images))
        if decision.in_domain or self.real_domain is None or not images:
            return decision
        reading = self._real_reading(images)
        if reading.in_domain:
            return DomainDecision(
                self.model_id,
                REAL_FILMS,
                "a real film in the lung-fields network's domain (distance "
                f"{reading.domain_distance:.1f} ≤ {reading.domain_threshold:.1f}); only "
                f"{', '.join(self.real_domain[0].findings)} is read",
                reading.domain_distance,
                reading.domain_threshold,
            )
        return decision

    def domain_of(self, embedding: Any, has_image: bool = True) -> DomainDecision:
        """The domain decision for one embedding of this model (None: no reading)."""
        if self._domain is None and self.ood_reference is None:
            return DomainDecision(
                self.model_id,
                None,
                "no domain reference (reference-ood.json) ships with these weights, so no "
                "image can be shown to lie in the synthetic-lab domain",
            )
        if embedding is None:
            reason = "the study has no image" if not has_image else "the model gave no reading"
            return DomainDecision(self.model_id, None, reason)
        scorer, limit = self._domain_scorer()
        score = scorer.score(embedding)
        if score <= limit:
            return DomainDecision(
                self.model_id,
                SYNTHETIC_LAB,
                f"the image lies in the synthetic-lab domain (distance {score:.1f} ≤ {limit:.1f})",
                score,
                limit,
            )
        return DomainDecision(
            self.model_id,
            None,
            "the reference model is validated on synthetic radiographs only; this film is "
            f"outside that domain (distance {score:.1f} > {limit:.1f})",
            score,
            limit,
        )

    def _domain_scorer(self) -> tuple[Any, float]:
        """The OOD reference's scorer and its threshold, read once: the 99th percentile of
        the distances of held-out training-like lab studies (``radloop fit-ood``)."""
        if self._domain is None:
            from radloop.models.ood import MahalanobisScorer

            reference = self.ood_reference
            assert reference is not None
            scorer = MahalanobisScorer.from_dict(reference)
            self._domain = (scorer, scorer.threshold)
        return self._domain

    def read(self, images: Sequence[Image]) -> Any:
        """The network's output for the study's frontal image (None without images)."""
        from radloop.models.reference.runtime import ReferenceOutput

        if not images:
            return None
        last = self._last_read
        if (
            last is not None
            and len(last[0]) == len(images)
            and all(a is b for a, b in zip(last[0], images, strict=True))
        ):
            return last[1]  # draft, extents and verification of one study share one reading
        # Prefer images the header calls frontal; fall back on the view head.
        tagged = _frontal(images)
        candidates = tagged or list(images)
        outputs: list[ReferenceOutput] = self.runtime.run(candidates[:1] if tagged else candidates)
        best = max(outputs, key=lambda o: 1.0 - o.view_probabilities["LL"])
        self._last_read = (tuple(images), best)
        return best

    def predict_findings(self, images: Sequence[Image]) -> tuple[Finding, ...]:
        from radloop.models.reference.predictor import findings_from_output

        output = self.read(images)
        if output is None:
            return ()
        fields = self.real_film_reading(images)
        if fields is not None:
            from radloop.models.reference.realfilm import findings_from_fields

            return findings_from_fields(fields, self.real_domain[0], self.model_id)
        return tuple(
            f.with_(source=self.model_id) for f in findings_from_output(output, self.sidecar)
        )

    def real_film_reading(self, images: Sequence[Image]) -> Any:
        """The lung-fields reading of a study that lies in the declared real-film domain (its
        frontal film), else None: what the model may read on a real film, and nothing more."""
        if self.real_domain is None or not images:
            return None
        if self.assess_domain(images).domain != REAL_FILMS:
            return None
        return self._real_reading(images)

    def predict_zone_changes(
        self, current: Sequence[Image], prior: Sequence[Image]
    ) -> tuple[ZoneChange, ...] | None:
        """Per lung zone, whether opacity increased, decreased or stayed from the prior's
        frontal film to the current one's (the change of the zone's opacity score, the current
        film read on the prior's grey scale (``LungFieldsRuntime.on_scale_of``), against the
        declared domain's tolerance); None unless lung opacity and its change by zone are in
        the declared real-film domain and both films lie in it (on lab films, ``compare``
        diffs the findings)."""
        from radloop.models.reference.realfilm import zone_direction

        if self.real_domain is None or "lung_opacity" not in self.real_domain[0].changes:
            return None
        now_fields, before_fields = self.real_film_reading(current), self.real_film_reading(prior)
        if now_fields is None or before_fields is None:
            return None
        tolerance = self.real_domain[0].change_tolerance
        now_fields = self.real_domain[1].on_scale_of(  # the readings above, not two more
            _film(prior).pixels, before_fields, _film(current).pixels, now_fields
        )
        before, now = before_fields.zone_scores(), now_fields.zone_scores()
        return tuple(
            ZoneChange(
                "lung_opacity",
                zone,
                zone_direction(before[zone], score, tolerance),
                before[zone],
                score,
            )
            for zone, score in now.items()
            if score == score and before[zone] == before[zone]  # NaN: a zone not read
        )

    def predict_extents(self, images: Sequence[Image]) -> dict[str, float]:
        from radloop.models.reference.predictor import extents_from_output

        output = self.read(images)
        return {} if output is None else extents_from_output(output, self.sidecar)

    def predict_local(self, images: Sequence[Image]) -> dict[str, Any]:
        """Each assessed finding type's heatmap on the network's field (the same grid for
        every study), divided by its reporting threshold (see ``LocalPredictor``)."""
        from radloop.models.reference.predictor import local_from_output

        output = self.read(images)
        return {} if output is None else local_from_output(output, self.sidecar)

    def _generate(
        self,
        images: Sequence[Image],
        prompt: str,
        *,
        n: int,
        temperature: float,
        max_tokens: int,
        logprobs: bool,
        top_logprobs: int,
        system: str | None,
        json_schema: JsonSchema | None,
    ) -> list[Generation]:
        """The report of the findings (the prompt is not read: the model only reports); on a
        study outside its validated domain, an abstention that states no finding."""
        domain = self.assess_domain(images)
        if not domain.in_domain:
            text = f"{NOTICE}\n\nThe model abstains: {domain.reason}. No finding is stated."
        elif domain.domain == REAL_FILMS:
            # Only the admitted types were read: every section is otherwise not commented.
            from radloop.vocabulary import Category

            silent = [c.value for c in Category]
            text = f"{NOTICE}\n\n{write(self.predict_findings(images), unaddressed=silent)}"
        else:
            text = f"{NOTICE}\n\n{write(self.predict_findings(images))}"
        return [Generation(text, self.model_id, finish_reason="stop") for _ in range(n)]


def _frontal(images: Sequence[Image]) -> list[Image]:
    """The images whose header calls them frontal (PA or AP)."""
    return [im for im in images if (im.view_position or "").upper() in {"PA", "AP"}]


def _film(images: Sequence[Image]) -> Image:
    """The study's film the lung-fields network reads: its first frontal, else its first."""
    return (_frontal(images) or list(images))[0]


@register_model("builtin")
def load_reference_model(model: str | Path | None = None) -> VisionLanguageModel:
    """radloop's reference model: a compact network trained on the synthetic lab (ONNX)."""
    return ReferenceModel(Path(model) if model is not None else shipped_model_dir())
