"""VisionLanguageModel.generate: the arguments checked, the call timed and logged, once, for
every backend; the backend writes only _generate."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import pytest

from radloop.models import Generation, VisionLanguageModel
from radloop.study import Image


class _Scripted(VisionLanguageModel):
    """Two generations: one the backend timed (0.25 s), one it left to ``generate``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @property
    def model_id(self) -> str:
        return "scripted"

    def _generate(self, images: Sequence[Image], prompt: str, **options: Any) -> list[Generation]:
        self.calls.append({"prompt": prompt, **options})
        time.sleep(0.01)
        return [Generation("timed", self.model_id, 0.25), Generation("untimed", self.model_id)]


def test_generate_passes_every_option_to_the_backend() -> None:
    model = _Scripted()
    model.generate([], "p", n=2, temperature=0.5, max_tokens=9, system="s")
    assert model.calls == [
        {"prompt": "p", "n": 2, "temperature": 0.5, "max_tokens": 9, "logprobs": False,
         "top_logprobs": 0, "system": "s", "json_schema": None},
    ]  # fmt: skip


def test_bad_arguments_are_refused_before_the_backend_is_asked() -> None:
    model = _Scripted()
    with pytest.raises(ValueError, match=r'"max_tokens" must be at least 1, got 0'):
        model.generate([], "p", max_tokens=0)
    assert model.calls == []


def test_a_generation_the_backend_did_not_time_gets_the_time_of_the_whole_call() -> None:
    timed, untimed = _Scripted().generate([], "p")
    assert timed.latency_s == 0.25
    assert not math.isnan(untimed.latency_s) and untimed.latency_s >= 0.01


def test_each_call_is_logged_once_with_its_time(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="radloop.models.base"):
        _Scripted().generate([], "p")
    (record,) = caplog.records
    assert record.getMessage().startswith("scripted: 2 generation(s) of 0 image(s) in ")


def test_a_backend_that_still_overrides_generate_works_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"implement _generate\(\) instead"):

        class Legacy(VisionLanguageModel):
            @property
            def model_id(self) -> str:
                return "legacy"

            def generate(self, images: Any, prompt: str, **options: Any) -> list[Generation]:  # type: ignore[misc]
                return [Generation(prompt, self.model_id, 0.0)]

    assert Legacy().generate([], "still here")[0].text == "still here"
