"""Eval with self-consistency and ask-back: each prediction keeps its cost by part, and the
report gives a cost section per study (JSON and HTML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_eval_runner import _dataset_folder, _settings

from radloop.assist import Sampling
from radloop.evaluate import open_dataset
from radloop.evaluate.pipeline import score_run
from radloop.evaluate.runner import run_evaluation
from radloop.models.mock import MockModel, MockRequest
from radloop.safety import TableVerifier


def _reply(request: MockRequest) -> str:
    if "Answer yes or no" in request.prompt:
        return "yes"
    if "which side" in request.prompt:
        return "right"
    source = request.images[0].source.name
    if source.startswith("eff"):
        return "FINDINGS: Small right pleural effusion. No pneumothorax."
    return "FINDINGS: The lungs are clear. No pleural effusion. No pneumothorax."


@pytest.mark.parametrize("samples", [0, 3])
def test_predictions_keep_their_cost_and_the_report_sums_it(tmp_path: Path, samples: int) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data', n=6)}")
    out = tmp_path / "run"
    model = MockModel(_reply)
    cases, predictions = run_evaluation(
        dataset, model, out, _settings(), verifier=TableVerifier({}),
        sampling=Sampling(samples, 0.7), ask_back=True,
    )  # fmt: skip
    effusion = next(p for p in predictions if any(f.is_positive for f in p.draft))
    parts = set(effusion.cost)
    assert {"draft", "ask_back", "total"} <= parts
    assert ("samples" in parts) is (samples > 0)
    # A claimed right effusion: a presence and a side question (and the denied
    # pneumothorax, a critical finding: one more presence question).
    assert effusion.cost["ask_back"]["requests"] == 3
    assert effusion.cost["total"]["requests"] == 1 + (samples > 0) + 3
    outcome = score_run(out, resamples=20, subgroup_resamples=10, min_group=2)
    table = json.loads(outcome.json_path.read_text())
    per_study = table["cost"]["per_study"]
    assert table["cost"]["studies"] == len(cases)
    total = sum(p.cost["total"]["requests"] for p in predictions)
    assert per_study["total"]["requests"] == pytest.approx(total / len(cases))
    assert "Cost per study" in outcome.html_path.read_text()


def test_a_second_opinion_reads_each_claim_during_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import radloop.safety

    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data', n=3)}")
    second = TableVerifier({}, name="second")
    seen: list[object] = []
    real_check = radloop.safety.check

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("second_opinion"))
        return real_check(*args, **kwargs)

    monkeypatch.setattr(radloop.safety, "check", spy)
    run_evaluation(dataset, MockModel(_reply), tmp_path / "run", _settings(),
                   verifier=TableVerifier({}), second_opinion=second)  # fmt: skip
    assert seen == [second] * 3


def test_another_model_can_answer_the_questions(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data', n=3)}")
    drafter = MockModel(_reply)
    asker = MockModel("yes", model="asker")
    run_evaluation(dataset, drafter, tmp_path / "run", _settings(), verifier=TableVerifier({}),
                   ask_back=True, asker=asker)  # fmt: skip
    assert all("Answer yes or no" not in r.prompt for r in drafter.requests)
    # eff00 claims a right effusion (presence, side) and denies a pneumothorax; the two
    # others deny an effusion and a pneumothorax (both critical findings): 3 + 2 + 2.
    assert len(asker.requests) == 7
