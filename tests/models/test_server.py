"""``radloop serve-model``: the OpenAI chat-completions API in front of any backend."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fastapi.testclient import TestClient

from radloop.models.cli import serve_model
from radloop.models.mock import MockModel
from radloop.models.server import create_app


def _client(**options: str) -> TestClient:
    return TestClient(create_app(MockModel("No pneumothorax.", **options)))


def test_v1_models_lists_the_served_model() -> None:
    body = _client(model="radloop-mock").get("/v1/models").json()
    assert [entry["id"] for entry in body["data"]] == ["radloop-mock"]


def test_a_chat_completion_has_the_openai_shape() -> None:
    response = _client().post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Describe."}], "n": 2, "logprobs": True},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert [c["message"]["content"] for c in body["choices"]] == ["No pneumothorax."] * 2
    assert body["choices"][0]["logprobs"]["content"][0]["token"] == "No"
    assert body["usage"]["completion_tokens"] == 4


def test_an_image_url_that_is_not_a_data_url_is_a_400_in_openai_error_form() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.org/x.png"}}
    response = _client().post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": [part, {"type": "text", "text": "?"}]}]},
    )
    assert response.status_code == 400
    assert "data URL" in response.json()["error"]["message"]


def test_a_malformed_request_is_a_400_naming_the_field() -> None:
    response = _client().post("/v1/chat/completions", json={"messages": [], "n": 0})
    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]


def test_streaming_is_refused_with_a_reason() -> None:
    response = _client().post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert response.status_code == 400
    assert "stream=true is not supported" in response.json()["error"]["message"]


def test_serve_model_get_answers_one_request_and_exits_zero() -> None:
    result = CliRunner().invoke(
        serve_model, ["--model", "mock", "--option", "model=smoke", "--get", "/v1/models"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"][0]["id"] == "smoke"
