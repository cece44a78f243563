"""Sampling and cost at the backends: ``n`` in one request where the server takes it, one
request at a time where it refuses, log-probabilities dropped where refused, and each
request's usage counted once."""

from __future__ import annotations

import json
from typing import Any

import httpx

from radloop.models import load_model
from radloop.models.base import Cost, Generation, Usage
from radloop.models.mock import MockModel
from radloop.study import Image


def _chat(choices: int, usage: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"reply {i}"}}
            for i in range(choices)
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def test_n_samples_travel_in_one_request_with_its_usage_counted_once() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        usage = {"prompt_tokens": 100, "completion_tokens": 7 * body["n"]}
        return httpx.Response(200, json=_chat(body["n"], usage))

    with load_model("openai", model="m", transport=httpx.MockTransport(handler)) as model:
        generations = model.generate([], "Describe.", n=5, temperature=0.7)
    assert [body["n"] for body in seen] == [5]
    cost = Cost.of(generations, 1.5)
    assert (cost.requests, cost.prompt_tokens, cost.completion_tokens) == (1, 100, 35)
    assert cost.seconds == 1.5


def test_a_server_refusing_n_is_asked_one_at_a_time_and_then_never_again_for_n() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["n"])
        if body["n"] > 1:
            return httpx.Response(400, json={"error": {"message": "n must be 1"}})
        return httpx.Response(200, json=_chat(1, {"prompt_tokens": 10, "completion_tokens": 3}))

    with load_model("openai", model="m", transport=httpx.MockTransport(handler)) as model:
        first = model.generate([], "Describe.", n=3, temperature=0.7)
        assert model.accepts_n is False
        second = model.generate([], "Describe.", n=2, temperature=0.7)
    assert seen == [3, 1, 1, 1, 1, 1]
    assert len(first) == 3 and len(second) == 2
    assert Cost.of(first, 0.0).requests == 3
    assert Cost.of(first, 0.0).prompt_tokens == 30


def test_a_server_refusing_logprobs_is_asked_again_without_them() -> None:
    seen: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append("logprobs" in body)
        if "logprobs" in body:
            return httpx.Response(400, json={"error": {"message": "logprobs not supported"}})
        return httpx.Response(200, json=_chat(1))

    with load_model("openai", model="m", transport=httpx.MockTransport(handler)) as model:
        generations = model.generate([], "Yes or no?", logprobs=True, top_logprobs=5)
        assert model.supports_logprobs is False
        model.generate([], "Yes or no?", logprobs=True, top_logprobs=5)
    assert seen == [True, False, False]
    assert generations[0].logprobs is None
    # A server without usage is still one request each.
    assert Cost.of(generations, 0.0).requests == 1


def test_an_image_is_encoded_once_for_several_requests(radiograph: Image) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        urls.append(body["messages"][-1]["content"][0]["image_url"]["url"])
        return httpx.Response(200, json=_chat(1))

    with load_model("openai", model="m", transport=httpx.MockTransport(handler)) as model:
        model.generate([radiograph], "Describe.")
        model.generate([radiograph], "Is there a pleural effusion?")
        assert len(model._urls) == 1
    assert urls[0] == urls[1] and urls[0].startswith("data:image/png;base64,")


def test_served_models_report_their_usage_over_http(serve: Any) -> None:
    with serve(MockModel("No pneumothorax seen.", model="m"), model="m") as (client, _):
        generations = client.generate([], "Any pneumothorax here?", n=3, temperature=0.7)
    cost = Cost.of(generations, 0.0)
    # The mock counts words: 3 prompt words, 3 words in each of 3 completions.
    assert (cost.requests, cost.prompt_tokens, cost.completion_tokens) == (1, 3, 9)


def test_cost_adds_and_round_trips() -> None:
    a = Cost(1, 10, 5, 0.5)
    b = Cost.from_dict((a + Cost(2, 1, 1, 0.25)).to_dict())
    assert b == Cost(3, 11, 6, 0.75)
    assert b.tokens == 17
    assert Cost.of([Generation("x", "m", usage=Usage(4, 2)), Generation("y", "m")], 0.1) == Cost(
        1, 4, 2, 0.1
    )


def test_the_mock_answers_prompts_that_hold_a_key_outside_its_script() -> None:
    model = MockModel(["report one", "report two"], answers={"Answer yes or no": "yes"})
    assert model.generate([], "Is there X? Answer yes or no.")[0].text == "yes"
    assert model.generate([], "Describe.")[0].text == "report one"


def test_the_reference_model_says_it_cannot_sample() -> None:
    from radloop.models.builtin import ReferenceModel

    assert ReferenceModel.supports_sampling is False
    assert MockModel.supports_sampling is True


def test_the_transformers_backend_samples_with_num_return_sequences_in_one_call(
    tiny_checkpoints: dict[str, Any], radiograph: Image
) -> None:
    model = load_model("transformers", model=str(tiny_checkpoints["llava"]), seed=0)
    sampled = model.generate([radiograph], "Describe.", n=3, temperature=0.7, max_tokens=5,
                             logprobs=True)  # fmt: skip
    cost = Cost.of(sampled, 0.0)
    assert cost.requests == 1 and cost.prompt_tokens > 0
    assert cost.completion_tokens == sum(len(g.logprobs or ()) for g in sampled)
    greedy = model.generate([radiograph], "Describe.", n=3, max_tokens=5)
    assert Cost.of(greedy, 0.0).requests == 1  # decoded once, repeated: one request
