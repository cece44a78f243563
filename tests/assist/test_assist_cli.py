"""radloop draft / ask / compare from the command line, with the mock backend."""

from __future__ import annotations

import json

from click.testing import CliRunner

from radloop.safety.assist_cli import ask, compare, draft
from radloop.study import sample_study_path

SAMPLE = str(sample_study_path())


def test_draft_prints_the_report_and_the_assistant_label() -> None:
    result = CliRunner().invoke(
        draft, [SAMPLE, "--model", "mock", "--option", "replies=Small left pleural effusion."]
    )
    assert result.exit_code == 0, result.output
    assert "Small left pleural effusion." in result.output
    assert "not a diagnosis" in result.output


def test_draft_json_gives_findings_prompt_version_and_raw_generations() -> None:
    result = CliRunner().invoke(
        draft,
        [SAMPLE, "--prior", SAMPLE, "--model", "mock", "--json", "--indication", "Cough"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["label"] == "assistant output — not a diagnosis"
    assert payload["prompt_version"] == "draft/1"
    assert {"code": "pneumothorax", "presence": "absent"} in payload["findings"]
    assert len(payload["generations"]) == 1


def test_ask_prints_the_answer_and_the_finding_it_rests_on() -> None:
    result = CliRunner().invoke(
        ask,
        [SAMPLE, "Is there a pneumothorax?", "--model", "mock",
         "--option", "replies=No pneumothorax."],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rests on: pneumothorax, absent" in result.output


def test_compare_lists_the_changes() -> None:
    result = CliRunner().invoke(
        compare,
        [SAMPLE, SAMPLE, "--model", "mock", "--option", "replies=New right pneumothorax."],
    )
    assert result.exit_code == 0, result.output
    assert "- right pneumothorax: new" in result.output


def test_the_default_builtin_model_drafts_a_structured_report() -> None:
    result = CliRunner().invoke(draft, [SAMPLE])
    assert result.exit_code == 0, result.output
    assert "FINDINGS:" in result.output and "not a diagnosis" in result.output


def test_the_builtin_model_says_it_was_trained_on_synthetic_radiographs_only() -> None:
    result = CliRunner().invoke(draft, [SAMPLE])
    assert result.exit_code == 0, result.output
    assert "trained only on synthetic radiographs" in result.output
