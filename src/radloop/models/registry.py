"""The registry of model backends: built-ins and third-party entry points, imported on use.

A backend is registered by name with ``@register_model("name")`` on a ``VisionLanguageModel``
subclass (or a factory function returning one); its docstring's first line describes it.
radloop's own backends are listed here by module path and imported only when first loaded, so
a missing optional package affects only the backend that needs it. Third-party packages add
backends through the ``radloop.models`` entry-point group::

    [project.entry-points."radloop.models"]
    mybackend = "mypackage.radloop_backend:MyModel"
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from radloop.models.base import VisionLanguageModel
from radloop.models.errors import ModelOptionError, UnknownModelError
from radloop.registry import Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelFactory",
    "available_models",
    "describe_model",
    "load_model",
    "model_factory",
    "parse_options",
    "register_model",
]

ENTRY_POINT_GROUP = "radloop.models"

ModelFactory = Callable[..., VisionLanguageModel]
F = TypeVar("F", bound=ModelFactory)

# Built-ins by module path: importing the module runs its @register_model.
_BUILTIN_MODULES: dict[str, str] = {
    "builtin": "radloop.models.builtin",
    "mock": "radloop.models.mock",
    "openai": "radloop.models.openai_backend",
    "transformers": "radloop.models.transformers_backend",
}
_MODELS: Registry[VisionLanguageModel] = Registry(
    "model backend", ENTRY_POINT_GROUP, unknown_error=UnknownModelError, builtins=_BUILTIN_MODULES
)


def register_model(name: str) -> Callable[[F], F]:
    """Register a backend class or factory under ``name`` (lower case, no slash)."""
    return _MODELS.register(name)


def available_models() -> list[str]:
    """Names of every backend: built-in, registered in this process, or from entry points."""
    return _MODELS.names()


def model_factory(name: str) -> ModelFactory:
    """The factory (class or function) registered as backend ``name``."""
    return _MODELS.factory(name)


_factory = model_factory


def describe_model(name: str) -> str:
    """The one-line description of a backend (its docstring's first line)."""
    return _MODELS.describe(name)


def _split(name: str) -> tuple[str, str | None]:
    # "openai/medgemma-4b" is the openai backend with model="medgemma-4b"; "transformers/DIR"
    # the transformers backend with model=DIR.
    backend, slash, rest = name.partition("/")
    return backend, (rest if slash else None)


def load_model(name: str, **options: Any) -> VisionLanguageModel:
    """An instance of backend ``name`` built with ``options``.

    ``name`` may carry the model after a slash (``openai/medgemma-4b``), which is the same as
    passing ``model=``. Options a backend does not take are refused with the ones it does.
    """
    backend, model = _split(name)
    factory = _factory(backend)
    if model is not None:
        options = {"model": model, **options}
    _check_options(backend, factory, options)
    instance = factory(**options)
    if not isinstance(instance, VisionLanguageModel):
        raise TypeError(f"backend {backend!r} returned {type(instance).__name__}, not a model")
    return instance


def _check_options(backend: str, factory: ModelFactory, options: Mapping[str, Any]) -> None:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        p.name
        for p in parameters.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelOptionError(
            f"backend {backend!r} takes the options {', '.join(accepted) or '(none)'}; "
            f"got {', '.join(map(repr, unknown))}"
        )


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings (from ``--option``) as a dict; values read as JSON when they are.

    ``max_concurrency=8`` gives an int, ``structured_output=false`` a bool, ``model=medgemma``
    a string. Quote a value that must stay a string: ``model='"7"'``.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key.isidentifier():
            raise ModelOptionError(f"expected an option as key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
