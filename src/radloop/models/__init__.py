"""One interface over every multimodal model backend, registered by name.

    >>> from radloop.models import load_model
    >>> model = load_model("mock", replies="No acute cardiopulmonary abnormality.")
    >>> model.generate([], "Describe the radiograph.")[0].text
    'No acute cardiopulmonary abnormality.'

Built in: ``openai`` (any OpenAI-compatible server), ``transformers`` (a local checkpoint),
``builtin`` (radloop's reference model) and ``mock`` (scripted replies). Each is imported only
when loaded; see ``docs/models.md``.
"""

from radloop.models.base import (
    ExtentPredictor,
    FindingsPredictor,
    Generation,
    JsonSchema,
    LocalPredictor,
    TokenLogprob,
    VisionLanguageModel,
    ZoneChange,
    ZoneChangePredictor,
)
from radloop.models.errors import (
    CheckpointNotFoundError,
    MissingReferenceModelError,
    ModelConnectionError,
    ModelError,
    ModelOptionError,
    ModelResponseError,
    ModelServerError,
    ModelTimeoutError,
    UnknownModelError,
)
from radloop.models.registry import (
    ENTRY_POINT_GROUP,
    available_models,
    describe_model,
    load_model,
    parse_options,
    register_model,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "CheckpointNotFoundError",
    "ExtentPredictor",
    "FindingsPredictor",
    "Generation",
    "JsonSchema",
    "LocalPredictor",
    "MissingReferenceModelError",
    "ModelConnectionError",
    "ModelError",
    "ModelOptionError",
    "ModelResponseError",
    "ModelServerError",
    "ModelTimeoutError",
    "TokenLogprob",
    "UnknownModelError",
    "VisionLanguageModel",
    "ZoneChange",
    "ZoneChangePredictor",
    "available_models",
    "describe_model",
    "load_model",
    "parse_options",
    "register_model",
]
