"""The openai backend against ``radloop serve-model`` over real HTTP on loopback."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from radloop.models import (
    ModelConnectionError,
    ModelServerError,
    ModelTimeoutError,
    load_model,
)
from radloop.models.mock import MockModel, MockRequest
from radloop.models.server import Fault, FaultInjection
from radloop.study import Image

ServerFactory = Callable[..., AbstractContextManager[tuple[Any, Any]]]


class Sleeps:
    """Records backoff delays instead of sleeping, so retry tests are fast."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_generates_n_completions_from_radloop_serve_model(serve: ServerFactory) -> None:
    with serve(MockModel("No pneumothorax.", model="served-mock"), model="served-mock") as (
        model,
        _,
    ):
        generations = model.generate([], "Describe.", n=2)
    assert [g.text for g in generations] == ["No pneumothorax.", "No pneumothorax."]
    assert {g.model for g in generations} == {"served-mock"}
    assert all(g.latency_s > 0 for g in generations)


def test_the_model_is_found_under_v1_models_when_not_named(serve: ServerFactory) -> None:
    with serve(MockModel(model="only-model")) as (model, _):
        assert model.model_id == "only-model"


def test_images_arrive_at_the_served_model_as_pixels(
    serve: ServerFactory, radiograph: Image
) -> None:
    def reply(request: MockRequest) -> str:
        return " ".join(f"{i.shape[0]}x{i.shape[1]}" for i in request.images)

    with serve(MockModel(reply)) as (model, _):
        text = model.generate([radiograph, radiograph], "Sizes?")[0].text
    assert text == "48x40 48x40"


def test_large_images_are_shrunk_to_max_image_side_before_sending(
    serve: ServerFactory, radiograph: Image
) -> None:
    with serve(MockModel(lambda r: str(r.images[0].shape)), max_image_side=24) as (model, _):
        assert model.generate([radiograph], "Size?")[0].text == "(24, 20)"


def test_logprobs_are_requested_when_asked_and_returned(serve: ServerFactory) -> None:
    with serve(MockModel("Small left effusion.")) as (model, _):
        plain = model.generate([], "Describe.")[0]
        scored = model.generate([], "Describe.", logprobs=True, top_logprobs=2)[0]
    assert plain.logprobs is None
    assert scored.logprobs is not None
    assert [t.token for t in scored.logprobs] == ["Small", "left", "effusion."]
    assert [t.logprob for t in scored.logprobs] == pytest.approx([0.0, -0.1, -0.2])
    assert len(scored.logprobs[0].top) == 2


def test_structured_output_is_requested_as_a_json_schema(serve: ServerFactory) -> None:
    mock = MockModel('{"findings": []}', supports_json_schema=True)
    schema = {"type": "object", "properties": {"findings": {"type": "array"}}}
    with serve(mock) as (model, _):
        model.generate([], "Findings as JSON.", json_schema=schema)
    assert mock.requests[0].json_schema == schema


def test_429_is_retried_after_the_servers_retry_after(serve: ServerFactory) -> None:
    faults = FaultInjection.fail_first(2, 429, retry_after="0.25")
    sleeps = Sleeps()
    with serve(MockModel("ok"), fault_injection=faults, sleep=sleeps) as (model, app):
        assert model.generate([], "Describe.")[0].text == "ok"
    assert app.state.stats.requests == 3
    assert sleeps.delays == [0.25, 0.25]


def test_5xx_is_retried_with_exponential_backoff_and_jitter(serve: ServerFactory) -> None:
    faults = FaultInjection([Fault(500), Fault(502), Fault(503)])
    sleeps = Sleeps()
    options: dict[str, Any] = {"backoff_s": 1.0, "jitter": random.Random(7), "sleep": sleeps}
    with serve(MockModel("ok"), fault_injection=faults, **options) as (model, app):
        assert model.generate([], "Describe.")[0].text == "ok"
    assert app.state.stats.requests == 4
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        step = 2.0**attempt
        assert step / 2 <= delay <= step  # half the step plus up to half of it at random


def test_persistent_5xx_gives_up_with_a_typed_error(serve: ServerFactory) -> None:
    faults = FaultInjection.fail_first(10, 503)
    with (
        serve(MockModel("ok"), fault_injection=faults, max_retries=2, sleep=Sleeps()) as (
            model,
            app,
        ),
        pytest.raises(ModelServerError, match=r"HTTP 503.*gave up after 3 attempts"),
    ):
        model.generate([], "Describe.")
    assert app.state.stats.requests == 3


def test_a_retry_after_beyond_the_limit_fails_at_once(serve: ServerFactory) -> None:
    faults = FaultInjection.fail_first(1, 429, retry_after="600")
    with (
        serve(MockModel("ok"), fault_injection=faults, max_retry_after_s=30) as (model, app),
        pytest.raises(ModelServerError, match="asks to wait 600 s"),
    ):
        model.generate([], "Describe.")
    assert app.state.stats.requests == 1


def test_client_errors_are_not_retried(serve: ServerFactory) -> None:
    with (
        serve(MockModel("ok", model="served"), model="other", sleep=Sleeps()) as (model, app),
        pytest.raises(ModelServerError, match=r"HTTP 404.*'other' does not exist"),
    ):
        model.generate([], "Describe.")
    assert app.state.stats.requests == 1


def test_a_slow_server_raises_a_timeout_error(serve: ServerFactory) -> None:
    faults = FaultInjection([Fault(delay_s=1.5)])
    with (
        serve(MockModel("late"), fault_injection=faults, timeout_s=0.3) as (model, _),
        pytest.raises(ModelTimeoutError, match=r"no answer within 0\.3 s"),
    ):
        model.generate([], "Describe.")


def test_an_unreachable_server_raises_a_connection_error_after_retries() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{port}/v1"
    with (
        load_model("openai", model="m", base_url=url, max_retries=1, sleep=sleeps) as model,
        pytest.raises(ModelConnectionError, match=r"could not connect.*Is the server running"),
    ):
        model.generate([], "Describe.")
    assert len(sleeps.delays) == 1


def test_concurrency_limit_caps_the_requests_in_flight(serve: ServerFactory) -> None:
    with serve(MockModel("ok", delay_s=0.15), max_concurrency=2) as (model, app):
        model.model_id  # noqa: B018 - discover the model before the threads start
        threads = [
            threading.Thread(target=model.generate, args=([], "Describe.")) for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert app.state.stats.requests == 6
    assert app.state.stats.max_in_flight == 2


def _chat(content: str, choices: int = 1) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": content}}
            for i in range(choices)
        ],
    }


def test_a_server_that_ignores_n_is_asked_again_for_the_rest() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_chat("one"))  # like Ollama: always one choice

    transport = httpx.MockTransport(handler)
    with load_model("openai", model="m", transport=transport) as model:
        generations = model.generate([], "Describe.", n=3, temperature=0.8)
    assert len(generations) == 3
    assert [body["n"] for body in seen] == [3, 1, 1]


def test_a_server_without_structured_output_is_asked_again_without_it() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if "response_format" in body:
            return httpx.Response(400, json={"error": {"message": "unknown response_format"}})
        return httpx.Response(200, json=_chat("{}"))

    transport = httpx.MockTransport(handler)
    with load_model("openai", model="m", transport=transport) as model:
        model.generate([], "JSON please.", json_schema={"type": "object"})
        assert model.supports_json_schema is False
    assert ["response_format" in body for body in seen] == [True, False]


def test_the_api_key_is_read_from_the_named_environment_variable() -> None:
    headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=_chat("ok"))

    transport = httpx.MockTransport(handler)
    environ = {"RADLOOP_TEST_KEY": "sk-test"}
    with load_model(
        "openai", model="m", api_key_env="RADLOOP_TEST_KEY", environ=environ, transport=transport
    ) as model:
        model.generate([], "Describe.")
    assert headers == ["Bearer sk-test"]


def test_a_reply_that_is_not_a_chat_completion_is_a_typed_error() -> None:
    from radloop.models import ModelResponseError

    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"choices": "nope"}))
    with (
        load_model("openai", model="m", transport=transport) as model,
        pytest.raises(ModelResponseError, match="expected a chat completion"),
    ):
        model.generate([], "Describe.")
