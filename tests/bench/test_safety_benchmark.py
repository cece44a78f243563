"""The safety challenge end to end on a tiny set of rendered synthetic studies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from radloop.lab.bench.safety import (
    SafetyBenchmark,
    bench_safety,
    format_safety_benchmark,
    run_safety_benchmark,
)
from radloop.lab.challenge import ErrorKind
from radloop.safety.calibration import read_labelled_claims

pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[SafetyBenchmark, float, Path]:
    path = tmp_path_factory.mktemp("safety") / "calibration.csv"
    started = time.perf_counter()
    result = run_safety_benchmark(n=4, pairs=1, n_calibration=6, calibration_data=path)
    return result, time.perf_counter() - started, path


def test_tiny_run_is_quick_and_returns_every_figure(
    tiny: tuple[SafetyBenchmark, float, Path],
) -> None:
    result, seconds, _ = tiny
    assert seconds < 30
    out = result.to_dict()
    assert out["benchmark"] == "safety" and out["n_studies"] == 4 and out["n_pairs"] == 1
    assert set(out["injected"]) == {k.value for k in ErrorKind}
    assert sum(out["injected"].values()) == 5  # one error per draft
    assert out["injected"]["wrong_change"] == 1
    for name in ("recall", "recall_verifiable", "recall_flagged"):
        assert set(out[name]) == {k.value for k in ErrorKind}
    for kind, count in out["injected"].items():
        assert (out["recall"][kind] is None) is (count == 0)
    for name in ("correct_flagged_share", "ece_before", "ece_after", "brier_before",
                 "brier_after", "overhead"):  # fmt: skip
        value = out[name]
        assert value is not None and value >= 0.0, name
    assert sum(out["scope"].values()) == 5
    assert out["own_drafts"] is not None and out["own_drafts"]["n_studies"] == 4
    assert {"correct_flagged_share", "ece_after", "overhead"} <= set(out["bars"])
    json.dumps(out)
    text = format_safety_benchmark(result)
    assert "wrong_change" in text and "ECE" in text


def test_calibration_split_is_in_the_calibrate_format(
    tiny: tuple[SafetyBenchmark, float, Path],
) -> None:
    _, _, path = tiny
    claims = read_labelled_claims(path)
    assert claims and {c.correct for c in claims} == {True, False}
    assert path.read_text().splitlines()[0].startswith("study_id,code,claim")


def test_command_prints_json(monkeypatch: pytest.MonkeyPatch,
                             tiny: tuple[SafetyBenchmark, float, Path]) -> None:  # fmt: skip
    import radloop.lab.bench.safety as module

    seen = {}

    def fake(**kwargs: object) -> SafetyBenchmark:
        seen.update(kwargs)
        return tiny[0]

    monkeypatch.setattr(module, "run_safety_benchmark", fake)
    result = CliRunner().invoke(bench_safety, ["--n", "4", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["benchmark"] == "safety"
    assert seen["n"] == 4 and seen["seed"] == 5
