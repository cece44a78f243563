"""radloop draft / ask / compare from the command line, with the mock backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
    assert payload["prompt_version"] == "draft/2"
    assert "Indication (given on the command line): Cough" in payload["context"]["text"]
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


def test_draft_checks_by_default_and_shows_each_claims_state() -> None:
    # The sample is a lab radiograph: the reference verifier is in its domain there.
    result = CliRunner().invoke(
        draft, [SAMPLE, "--model", "mock", "--option", "replies=Large right pneumothorax."]
    )
    assert result.exit_code == 0, result.output
    assert "Claims, checked against radloop-reference" in result.output
    assert "[unsupported] pneumothorax" in result.output  # the sample has none


def test_no_check_says_unchecked() -> None:
    result = CliRunner().invoke(
        draft, [SAMPLE, "--no-check", "--model", "mock", "--option", "replies=Nodule."]
    )
    assert result.exit_code == 0, result.output
    assert "UNCHECKED" in result.output and "Claims, checked" not in result.output
    payload = json.loads(
        CliRunner().invoke(draft, [SAMPLE, "--no-check", "--model", "mock", "--json"]).output
    )
    assert payload["checked"] is False


def test_a_degenerate_reply_fails_the_draft_with_exit_status_1() -> None:
    loop = "effusio effusion " * 30
    result = CliRunner().invoke(draft, [SAMPLE, "--model", "mock", "--option", f"replies={loop}"])
    assert result.exit_code == 1
    assert "Draft failed: the reply is a repetition loop" in result.output


def test_a_study_outside_the_intended_use_is_refused_and_not_drafted(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    noise = tmp_path / "noise.png"
    pixels = np.random.default_rng(5).integers(0, 255, (384, 384)).astype(np.uint8)
    Image.fromarray(pixels).save(noise)
    result = CliRunner().invoke(draft, [str(noise), "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["refused"] is True and "findings" not in payload


def test_the_builtin_model_abstains_on_a_real_film(shared: Callable[[str], Path]) -> None:
    film = shared("data/realcxr-dev/images/covid-19-pneumonia-15-PA.png")
    payload = json.loads(CliRunner().invoke(draft, [str(film), "--json"]).output)
    assert "validated on synthetic radiographs only" in payload["abstained"]
    assert payload["findings"] == [] and payload["checks"] == []
    assert not payload["triage"]["urgent"] and payload["banner"].startswith("The model abstained")
