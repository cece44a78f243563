"""ask(study, question): the answer names the finding it rests on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from radloop.assist import QuestionKind, ask, question_finding, question_kind
from radloop.models.mock import MockModel
from radloop.report import Finding
from radloop.study import Study
from radloop.vocabulary import Lobe, Side


@pytest.mark.parametrize(
    ("question", "kind", "code"),
    [
        ("Is there a pneumothorax?", QuestionKind.PRESENCE, "pneumothorax"),
        ("Which side is the pleural effusion on?", QuestionKind.SIDE, "pleural_effusion"),
        ("Where is the nodule?", QuestionKind.LOCATION, "nodule"),
        ("How large is the nodule?", QuestionKind.SIZE, "nodule"),
        ("Is the endotracheal tube well placed?", QuestionKind.PLACEMENT, "endotracheal_tube"),
        ("Is the tube well positioned?", QuestionKind.PLACEMENT, "support_devices"),
        ("Describe the heart.", QuestionKind.OPEN, None),
    ],
)
def test_questions_are_sorted_by_what_they_ask_and_the_finding_they_name(
    question: str, kind: QuestionKind, code: str | None
) -> None:
    assert question_kind(question) == kind
    assert question_finding(question) == code


def test_a_yes_answer_in_text_rests_on_the_finding_it_names(study: Study) -> None:
    model = MockModel("Yes. There is a small left pleural effusion.")
    answer = ask(study, "Is there a pleural effusion?", model)
    assert answer.answer is True
    assert (answer.finding_code, answer.side) == ("pleural_effusion", Side.LEFT)
    assert answer.label == "assistant output — not a diagnosis"
    assert "Question: Is there a pleural effusion?" in model.requests[0].prompt


def test_a_negative_statement_answers_no_without_a_yes_or_no_word(study: Study) -> None:
    answer = ask(study, "Is there a pneumothorax?", MockModel("No pneumothorax is seen."))
    assert answer.answer is False
    assert answer.finding_code == "pneumothorax"


def test_a_json_answer_gives_location_and_size(study: Study) -> None:
    reply = json.dumps(
        {
            "answer": None,
            "text": "A 14 mm nodule in the right upper lobe.",
            "finding": {"code": "nodule", "presence": "present", "lobes": ["right_upper_lobe"],
                        "size_mm": 14},
        }
    )  # fmt: skip
    model = MockModel(reply, supports_json_schema=True)
    answer = ask(study, "How large is the nodule?", model)
    assert answer.kind is QuestionKind.SIZE
    assert (answer.size_mm, answer.lobes, answer.side) == (14.0, (Lobe.RIGHT_UPPER,), Side.RIGHT)
    assert answer.text == "A 14 mm nodule in the right upper lobe."
    assert model.requests[0].json_schema is not None


def test_an_answer_naming_no_finding_carries_a_warning(study: Study) -> None:
    answer = ask(study, "Is there a pneumothorax?", MockModel("I cannot tell."))
    assert answer.finding is None
    assert answer.warnings == ("the answer names no finding from the vocabulary",)


def test_the_reference_model_judges_tube_placement_from_the_tip_distance(
    study: Study, reference_model: Callable[..., Any]
) -> None:
    low_tube = Finding("endotracheal_tube", tip_distance_mm=10.0, tip_reference="carina")
    answer = ask(study, "Is the endotracheal tube well placed?", reference_model([low_tube]))
    assert answer.answer is False
    assert answer.finding == low_tube
    assert "10 mm above the carina" in answer.text


def test_the_reference_model_answers_no_for_a_finding_it_does_not_report(
    study: Study, reference_model: Callable[..., Any]
) -> None:
    answer = ask(study, "Is there a pneumothorax?", reference_model([]))
    assert (answer.answer, answer.text) == (False, "No pneumothorax detected.")


def test_an_empty_question_is_refused(study: Study) -> None:
    with pytest.raises(ValueError, match=r'"question" must be a non-empty question'):
        ask(study, "  ", MockModel())
