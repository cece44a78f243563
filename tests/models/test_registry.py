"""Backends registered by name, imported only when used; options checked with the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from radloop.models import (
    MissingReferenceModelError,
    ModelOptionError,
    UnknownModelError,
    available_models,
    describe_model,
    load_model,
    parse_options,
    register_model,
    registry,
)
from radloop.models.mock import MockModel


def test_built_in_backends_are_listed_without_importing_them() -> None:
    code = (
        "import sys; from radloop.models import available_models; "
        "names = available_models(); "
        "assert {'builtin', 'mock', 'openai', 'transformers'} <= set(names), names; "
        "loaded = [m for m in ('torch', 'transformers', 'fastapi', 'httpx', "
        "'radloop.models.openai_backend') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_name_after_a_slash_is_the_model_option() -> None:
    model = load_model("mock/served-name")
    assert model.model_id == "served-name"


def test_an_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"one of builtin, mock, openai, transformers"):
        load_model("vllm")


def test_an_unknown_option_is_refused_with_the_options_the_backend_takes() -> None:
    with pytest.raises(ModelOptionError, match=r"takes the options .*base_url.*got 'temprature'"):
        load_model("openai", temprature=0.2)


def test_the_builtin_backend_says_how_to_build_missing_reference_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingReferenceModelError, match="radloop train-reference"):
        load_model("builtin", model=tmp_path)


def test_backends_describe_themselves_in_one_line() -> None:
    assert describe_model("mock").startswith("Deterministic replies")
    assert "OpenAI-compatible" in describe_model("openai")


class _EntryPoint:
    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self._target = target

    def load(self) -> Any:
        return self._target


def test_a_third_party_backend_is_loaded_from_its_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class ThirdParty(MockModel):
        """A backend from another package."""

    models = registry._MODELS
    monkeypatch.setattr(
        models, "_entry_points", lambda: {"thirdparty": _EntryPoint("thirdparty", ThirdParty)}
    )
    monkeypatch.setattr(models, "_factories", dict(models._factories))
    assert "thirdparty" in available_models()
    assert isinstance(load_model("thirdparty", replies="hi"), ThirdParty)


def test_a_second_backend_under_a_taken_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry._MODELS, "_factories", {"taken": MockModel})

    class Other(MockModel):
        """Another."""

    with pytest.raises(ValueError, match="'taken' is already registered"):
        register_model("taken")(Other)


def test_options_are_read_as_json_where_they_parse() -> None:
    options = parse_options(
        ["max_concurrency=4", "structured_output=false", "model=medgemma", "base-url=http://x/v1"]
    )
    assert options == {
        "max_concurrency": 4,
        "structured_output": False,
        "model": "medgemma",
        "base_url": "http://x/v1",
    }


def test_an_option_without_equals_is_refused() -> None:
    with pytest.raises(ModelOptionError, match="expected an option as key=value, got 'verbose'"):
        parse_options(["verbose"])
