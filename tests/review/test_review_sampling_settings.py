"""The workstation's sampling and ask-back settings: defaults, the variables, bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from radloop.errors import InputError
from radloop.review.settings import settings_from_env


def test_sampling_and_ask_back_are_on_by_default() -> None:
    settings = settings_from_env(env={})
    assert (settings.samples, settings.sample_temperature, settings.ask_back) == (5, 0.7, True)


def test_the_variables_set_them_and_zero_turns_sampling_off() -> None:
    settings = settings_from_env(
        env={"RADLOOP_SAMPLES": "0", "RADLOOP_SAMPLE_TEMPERATURE": "1.1", "RADLOOP_ASK_BACK": "0"}
    )
    assert (settings.samples, settings.sample_temperature, settings.ask_back) == (0, 1.1, False)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RADLOOP_SAMPLES", "many", "whole number of samples"),
        ("RADLOOP_SAMPLES", "30", "from 0 \\(off\\) to 16"),
        ("RADLOOP_SAMPLE_TEMPERATURE", "3", "above 0 and at most 2"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(InputError, match=f"{variable}: expected .*{expected}"):
        settings_from_env(env={variable: value})


def test_another_model_answers_the_questions_when_the_settings_name_one(
    store: Any, tmp_path: Path
) -> None:
    import dataclasses
    import datetime

    from pydicom.uid import generate_uid
    from reviewkit import write_sample_copy

    from radloop.models.mock import MockModel
    from radloop.review.db import Draft
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import DraftingWorker, draft_study
    from radloop.safety import TableVerifier

    env = {"RADLOOP_ASK_BACK_MODEL": "mock", "RADLOOP_ASK_BACK_MODEL_OPTIONS": "model=asker",
           "RADLOOP_SAMPLES": "2"}  # fmt: skip
    tuned = dataclasses.replace(store, settings=settings_from_env(store.data_dir, env=env))
    assert tuned.settings.ask_back_model_options == {"model": "asker"}
    asker = DraftingWorker(tuned).asking_model()
    assert asker.model_id == "asker"
    folder = write_sample_copy(tmp_path / "s", uid=generate_uid(), patient="AB",
                               date=datetime.date(2024, 3, 1)).parent  # fmt: skip
    (study_id,) = ingest_path(tuned, folder).added
    drafter = MockModel("Small left pleural effusion.")
    draft_study(tuned, study_id, drafter, TableVerifier({}), asker=asker)
    assert [(r.n, r.temperature) for r in drafter.requests] == [(1, 0.0), (2, 0.7)]
    assert asker.requests and all("Answer" in r.prompt for r in asker.requests)
    with tuned.sessions() as session:
        cost = session.get(Draft, study_id).cost
    assert cost["samples"]["requests"] == 1 and cost["ask_back"]["requests"] == len(asker.requests)
    assert cost["total"]["requests"] == 2 + len(asker.requests)
