"""``radloop calibrate`` (defined in radloop.safety.cli); ``radloop scope`` is tested in
test_scope_classifier.py."""

from __future__ import annotations

import json

from click.testing import CliRunner
from test_calibration import miscalibrated_claims

from radloop.safety import write_labelled_claims
from radloop.safety.cli import calibrate


def test_calibrate_writes_the_calibrator_and_a_reliability_diagram(tmp_path) -> None:
    write_labelled_claims(tmp_path / "claims.csv", miscalibrated_claims())
    out = tmp_path / "calibration.json"
    result = CliRunner().invoke(calibrate, ["--data", str(tmp_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["held_out"]["isotonic"]["ece"] < summary["held_out"]["identity"]["ece"]
    assert out.is_file() and out.with_suffix(".png").is_file()
