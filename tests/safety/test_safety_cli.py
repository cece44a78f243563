"""``radloop scope`` and ``radloop calibrate`` (commands defined in radloop.safety.cli)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image
from safety_builders import ct_phantom, frontal_phantom
from test_calibration import miscalibrated_claims

from radloop.safety import write_labelled_claims
from radloop.safety.cli import calibrate, scope


def _png(path, pixels) -> None:
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)


def test_scope_refuses_a_ct_like_png_and_says_why(tmp_path) -> None:
    _png(tmp_path / "ct.png", ct_phantom())
    result = CliRunner().invoke(scope, [str(tmp_path / "ct.png"), "--json"])
    assert result.exit_code == 1
    decision = json.loads(result.output.splitlines()[0])
    assert decision["outcome"] == "refused"
    assert decision["reasons"][0]["code"] == "looks_like_ct"


def test_scope_accepts_a_frontal_png(tmp_path) -> None:
    _png(tmp_path / "pa.png", frontal_phantom())
    result = CliRunner().invoke(scope, [str(tmp_path / "pa.png")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("accepted")


def test_calibrate_writes_the_calibrator_and_a_reliability_diagram(tmp_path) -> None:
    write_labelled_claims(tmp_path / "claims.csv", miscalibrated_claims())
    out = tmp_path / "calibration.json"
    result = CliRunner().invoke(calibrate, ["--data", str(tmp_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["held_out"]["isotonic"]["ece"] < summary["held_out"]["identity"]["ece"]
    assert out.is_file() and out.with_suffix(".png").is_file()
