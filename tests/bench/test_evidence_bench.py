"""``radloop bench evidence`` part (a) on one study: serve-model subprocesses over HTTP, every
source reading the positive claims, cost per setting, the own-time figure; and the tiny
transformers model answering the closed questions from its top log-probabilities."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from radloop.lab.bench.evidence import bench_evidence, run_evidence_plumbing

HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def test_the_mock_over_http_gives_every_model_source_for_every_positive_claim() -> None:
    result = run_evidence_plumbing(studies=1, repeats=1, transformers=False,
                                   second_opinion=False)  # fmt: skip
    costs = result["cost_per_study"]["mock"]
    # One request for the report, one more for n samples, one per closed question.
    assert costs["samples_0"]["requests"] == 1
    assert costs["samples_3"]["requests"] == costs["samples_5"]["requests"] == 2
    assert costs["samples_5"]["completion_tokens"] > costs["samples_3"]["completion_tokens"]
    # The report claims a right consolidation and a left effusion (presence and side each)
    # and denies a pneumothorax (critical): five questions.
    assert costs["ask_back"]["requests"] == 1 + 5
    assert costs["full"]["requests"] == 2 + 5
    # The reference verifier is silent on these phantoms (outside its domain); the model's
    # own sources all read each positive claim.
    assert result["claims"] == 2
    assert set(result["readings_missing"]) <= {"verifier"}
    assert result["sources_per_claim"] >= 3
    assert result["own_time_overhead"] is not None
    assert result["own_seconds_per_study"]["full"] > 0


@pytest.mark.skipif(not HAS_TORCH, reason="torch and transformers are not installed")
def test_the_tiny_transformers_model_answers_from_its_top_logprobs_over_http() -> None:
    result = run_evidence_plumbing(studies=1, tiny_studies=1, repeats=1, second_opinion=False)
    tiny = result["cost_per_study"]["transformers"]
    assert tiny["samples_0"]["requests"] == 1 and tiny["samples_5"]["requests"] == 2
    assert tiny["samples_0"]["prompt_tokens"] > 0
    assert result["tiny_ask_back_readings"] == "2/2 positive claims"


def test_the_command_prints_one_json_object_with_its_bars() -> None:
    outcome = CliRunner().invoke(
        bench_evidence, ["--studies", "1", "--repeats", "1", "--no-transformers", "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.output)
    assert set(payload["bars"]) == {"sources_per_claim", "own_time_overhead"}
