"""``radloop bench monitor`` end to end on hand-made pools (no rendering): the figures and bars
come out of real streams and real detection, and the JSON is the last line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from monitor_builders import hand_pools

from radloop.cli import main


def test_bench_monitor_reports_detection_false_alarms_and_timing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from radloop.lab import monitor_simulation as simulate
    from radloop.lab.bench import monitor as bench

    def pools(profiles: Any, **kwargs: Any) -> Any:
        return hand_pools()

    monkeypatch.setattr(simulate, "load_pools", pools)
    result = bench.run_monitor_benchmark(seeds=2, repeats=1, aggregate_n=600)
    for shift in ("portable", "community", "portable 25 %"):
        detection = result["detection"][shift]
        assert detection["detected"] == 2 and detection["alerts_before_shift"] == 0
        assert all(0 < d <= 200 for d in detection["delays"])
    assert result["false_alarm_streams"] == 0 and result["false_alarm_seeds"] == 2
    assert result["false_alarm_ci"][1] < 1.0
    assert result["aggregate_cases"] == 600 and result["aggregate_10k_s"] > 0
    assert result["bars"]["detection_within_studies"]["met"]
    assert "Not a diagnosis" in result["notice"]
    text = bench.format_monitor_benchmark(result)
    assert "false alarms without shift: 0/2" in text


def test_bench_monitor_json_is_the_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from radloop.lab.bench import monitor as bench

    figures = {"benchmark": "monitor", "bars": {}}
    monkeypatch.setattr(bench, "run_monitor_benchmark", lambda **kwargs: figures)
    result = CliRunner().invoke(main, ["bench", "monitor", "--json", "--seeds", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == figures
