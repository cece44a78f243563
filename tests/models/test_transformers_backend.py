"""The transformers backend on two tiny local architectures, offline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from radloop.errors import MissingExtraError
from radloop.models import CheckpointNotFoundError, load_model
from radloop.models.server import create_app, running_server
from radloop.study import Image

ARCHITECTURES = ["llava", "gemma3"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_samples_n_generations_with_token_logprobs_from_a_local_checkpoint(
    tiny_checkpoints: dict[str, Path], architecture: str, radiograph: Image
) -> None:
    model = load_model("transformers", model=str(tiny_checkpoints[architecture]), seed=0)
    generations = model.generate(
        [radiograph],
        "Describe the lungs.",
        n=2,
        temperature=1.0,
        max_tokens=6,
        logprobs=True,
        top_logprobs=3,
        system="You are a radiology assistant.",
    )
    assert len(generations) == 2
    for generation in generations:
        assert generation.model == str(tiny_checkpoints[architecture])
        assert generation.logprobs is not None
        assert 1 <= len(generation.logprobs) <= 6
        for token in generation.logprobs:
            assert token.logprob <= 0.0
            assert len(token.top) == 3
            assert token.top[0][1] >= token.top[1][1] >= token.top[2][1]
            assert token.logprob <= token.top[0][1] + 1e-6
        assert generation.latency_s > 0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_greedy_decoding_returns_the_same_text_n_times_without_logprobs(
    tiny_checkpoints: dict[str, Path], architecture: str, radiograph: Image
) -> None:
    model = load_model(f"transformers/{tiny_checkpoints[architecture]}")
    generations = model.generate([radiograph], "Any effusion?", n=2, max_tokens=4)
    assert generations[0].text == generations[1].text
    assert generations[0].logprobs is None


def test_a_checkpoint_served_by_radloop_answers_the_openai_backend(
    tiny_checkpoints: dict[str, Path], radiograph: Image
) -> None:
    local = load_model("transformers", model=str(tiny_checkpoints["llava"]), seed=1)
    app = create_app(local, served_model_name="tiny-llava")
    with running_server(app) as base_url, load_model("openai", base_url=base_url) as remote:
        generations = remote.generate(
            [radiograph], "Describe.", n=2, temperature=0.7, max_tokens=4, logprobs=True
        )
    assert [g.model for g in generations] == ["tiny-llava", "tiny-llava"]
    assert all(g.logprobs for g in generations)


def test_a_hub_id_is_refused_because_nothing_is_downloaded() -> None:
    with pytest.raises(CheckpointNotFoundError, match="never downloads weights"):
        load_model("transformers", model="google/medgemma-4b-it")


def test_a_directory_without_config_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"without config\.json"):
        load_model("transformers", model=str(tmp_path))


def test_missing_torch_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'radloop\[transformers\]'"):
        load_model("transformers", model=str(tmp_path))
