"""The mock backend: deterministic, scripted, and a record of what it was asked."""

from __future__ import annotations

import pytest

from radloop.models.mock import MockModel, MockRequest


def test_a_script_is_replied_in_turn_and_its_last_reply_repeats() -> None:
    model = MockModel(["first", "second"])
    texts = [g.text for g in model.generate([], "a", n=3)]
    assert texts == ["first", "second", "second"]


def test_a_callable_reply_sees_the_request() -> None:
    model = MockModel(lambda request: request.prompt.upper())
    assert model.generate([], "loud", system="s")[0].text == "LOUD"
    assert model.requests == [
        MockRequest((), "loud", "s", 1, 0.0, 512, False, 0, None),
    ]


def test_logprobs_are_deterministic_one_per_word() -> None:
    model = MockModel("No acute abnormality.")
    first = model.generate([], "p", logprobs=True, top_logprobs=2)[0]
    second = model.generate([], "p", logprobs=True, top_logprobs=2)[0]
    assert first.logprobs == second.logprobs
    assert first.logprobs is not None and len(first.logprobs) == 3
    assert first.mean_logprob == pytest.approx(-0.1)


def test_a_reply_longer_than_max_tokens_is_cut_and_says_so() -> None:
    generation = MockModel("one two three four").generate([], "p", max_tokens=2)[0]
    assert (generation.text, generation.finish_reason) == ("one two", "length")


def test_invalid_generate_arguments_name_the_rule() -> None:
    with pytest.raises(ValueError, match=r'"n" must be at least 1, got 0'):
        MockModel().generate([], "p", n=0)
    with pytest.raises(ValueError, match=r'"temperature" must be in \[0, 2\], got 3'):
        MockModel().generate([], "p", temperature=3)
