"""The command line: the demo, ingest and parse verbs, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from radloop.cli import main


def test_demo_prints_the_sample_metadata_and_parsed_findings() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "radloop sample hospital" in result.output.lower()
    assert "PA" in result.output
    assert "pleural effusion: present" in result.output
    assert "pneumothorax: absent" in result.output
    assert "not a diagnosis" in result.output
    assert "drafted by the reference model" in result.output
    # The sample (a lab image) is drafted beside its report: its tube, nodule and effusion.
    sample_draft = result.output.split("The sample drafted by the reference model")[1]
    sample_draft = sample_draft.split("A synthetic study")[0]
    for finding in ("Endotracheal tube with tip", "13 mm nodule", "pleural effusion"):
        assert finding in sample_draft
    assert "trained only on synthetic radiographs" in result.output
    assert "Truth inserted by the synthetic lab" in result.output


def test_ingest_json_gives_one_object_per_study() -> None:
    from radloop.study import sample_study_path

    result = CliRunner().invoke(main, ["ingest", str(sample_study_path()), "--json"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    summary = json.loads(lines[0])
    assert summary["metadata"]["patient_sex"] == "M"
    assert summary["metadata"]["modality"] in {"CR", "DX"}
    assert summary["series"][0]["images"][0]["pixel_spacing_mm"] is not None


def test_ingest_of_a_text_file_exits_2_with_the_expectation(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not an image\n")
    result = CliRunner().invoke(main, ["ingest", str(bogus)])
    assert result.exit_code == 2
    assert "expected" in result.output


def test_parse_json_reports_presence_side_and_size() -> None:
    text = "A 2.3 cm nodule in the right upper lobe. No pneumothorax."
    result = CliRunner().invoke(main, ["parse", text, "--json"])
    assert result.exit_code == 0, result.output
    findings = {f["code"]: f for f in json.loads(result.output)}
    assert findings["nodule"]["presence"] == "present"
    assert findings["nodule"]["side"] == "right"
    assert findings["nodule"]["size_mm"] == 23.0
    assert findings["pneumothorax"]["presence"] == "absent"


def test_parse_json_keeps_dimensions_as_numbers() -> None:
    result = CliRunner().invoke(main, ["parse", "2 x 3 cm mass in the left lower lobe.", "--json"])
    (mass,) = json.loads(result.output)
    assert mass["dimensions_mm"] == [20.0, 30.0]
    assert mass["lobes"] == ["left_lower_lobe"]


def test_parse_without_text_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["parse"])
    assert result.exit_code == 2
    assert "report text" in result.output
