"""The evidence benchmark's calibration learning curve (on hand-made pools, no rendering) and
its second-opinion path on real films."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

MONITOR_TESTS = Path(__file__).resolve().parents[1] / "monitor"


@pytest.fixture
def hand_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(MONITOR_TESTS))
    try:
        from monitor_builders import hand_pools as pools
    finally:
        sys.path.remove(str(MONITOR_TESTS))
    from radloop.lab import monitor_simulation

    def load(profiles: Any, **kwargs: Any) -> Any:
        return pools()

    monkeypatch.setattr(monitor_simulation, "load_pools", load)


def test_the_learning_curve_reports_ece_on_the_next_cases(hand_pools: None) -> None:
    from radloop.lab.bench.evidence_calibration import run_learning_curve

    result = run_learning_curve(repeats=1, fit_sizes=(100, 300), test_size=300)
    assert set(result) >= {"ece_after_100", "ece_after_300", "detail", "claims_per_case"}
    assert result["claims_per_case"] == 3.0  # the hand-made drafts state three findings
    detail = result["detail"]["300"]
    assert detail["n_test_claims"] == 900
    # The hand-made verifier says 0.8 for an effusion on the wrong side: fitted on the signed
    # cases, the combination is far better calibrated than the verifier's own number.
    assert result["ece_after_300"] < detail["ece_verifier_alone"] - 0.2
    assert 0.0 <= result["ece_after_100"] <= 1.0


def test_the_command_prints_the_keys_and_bars_as_json(hand_pools: None) -> None:
    from radloop.lab.bench.evidence_calibration import bench_evidence_calibration

    result = CliRunner().invoke(bench_evidence_calibration, ["--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    curve = data["learning_curve"]
    assert {"ece_after_100", "ece_after_300", "ece_after_1000"} <= set(curve)
    assert data["bars"] == {"ece_after_1000": curve["ece_after_1000"] <= 0.03}


def test_the_second_opinion_is_gated_in_on_frontal_films_and_out_elsewhere(
    shared: Callable[[str], Path],
) -> None:
    pytest.importorskip("torch")
    from radloop.lab.bench.evidence_calibration import run_second_opinion_share

    result = run_second_opinion_share(shared("data/realcxr-dev"), limit=3)
    assert (result["frontal_films"], result["other_films"], result["claims"]) == (3, 3, 12)
    assert result["second_opinion_in_domain_share"] == 1.0
    assert result["second_opinion_filled_share"] == 1.0
    assert result["outside_domain_not_checked_share"] == 1.0
