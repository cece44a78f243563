"""The ``builtin`` backend: radloop's reference model (not built yet).

The reference model is a compact network trained on the synthetic lab (``radloop.synth``) and
shipped as ONNX. It will implement both interfaces of ``radloop.models.base``:

- ``VisionLanguageModel.generate``: a report written from its findings with
  ``radloop.report.write`` (so ``radloop serve-model --model builtin`` can stand in for a
  vLLM server), and
- ``FindingsPredictor.predict_findings``: the structured findings themselves, which
  ``radloop.assist`` uses directly (``compare`` diffs two of them).

Until it is trained, loading it raises ``MissingReferenceModelError`` with the fix.
"""

from __future__ import annotations

from pathlib import Path

from radloop.models.base import VisionLanguageModel
from radloop.models.errors import MissingReferenceModelError
from radloop.models.registry import register_model

__all__ = ["load_reference_model"]


@register_model("builtin")
def load_reference_model(model: str | Path | None = None) -> VisionLanguageModel:
    """radloop's reference model, trained on the synthetic lab (not built yet)."""
    where = f" at {model}" if model is not None else ""
    raise MissingReferenceModelError(
        f"the reference model is not built yet{where}: run `radloop train-reference` once the "
        "synthetic lab is installed (pip install 'radloop[synth]'), or choose another backend "
        "with --model (mock, openai, transformers; see docs/models.md)"
    )
