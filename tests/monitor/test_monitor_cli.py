"""``radloop monitor check|report|simulate`` on JSONL files of signed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from monitor_builders import hand_pools, random_cases

from radloop.cli import main
from radloop.lab.monitor_simulation import StreamConfig, simulate
from radloop.monitor.cases import write_cases

SMALL = ["--reference-size", "200", "--window-size", "100", "--step", "50"]


@pytest.fixture
def quiet_file(tmp_path: Path) -> Path:
    path = tmp_path / "quiet.jsonl"
    write_cases(random_cases(600, seed=21), path)
    return path


@pytest.fixture
def shifted_file(tmp_path: Path) -> Path:
    path = tmp_path / "shifted.jsonl"
    cases = random_cases(400, seed=22) + random_cases(200, seed=23, start_index=400,
                                                      stats_shift=0.15)  # fmt: skip
    write_cases(cases, path)
    return path


def test_check_exits_0_without_an_alert(quiet_file: Path) -> None:
    result = CliRunner().invoke(main, ["monitor", "check", "--cases", str(quiet_file), *SMALL])
    assert result.exit_code == 0, result.output
    assert "no drift alert" in result.output


def test_check_exits_1_while_an_alert_is_active(shifted_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["monitor", "check", "--cases", str(shifted_file), *SMALL, "--json"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["active_alerts"] == 1 and data["alerts"][0]["active"]
    assert "image mean" in data["alerts"][0]["tests"]


def test_check_with_a_bad_file_exits_2_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"study_id": "a", "signed_at": "soon", "model": "m"}\n')
    result = CliRunner().invoke(main, ["monitor", "check", "--cases", str(bad)])
    assert result.exit_code == 2
    assert "signed_at as ISO-8601 date-time" in result.output


def test_check_needs_exactly_one_source(quiet_file: Path) -> None:
    result = CliRunner().invoke(main, ["monitor", "check"])
    assert result.exit_code == 2 and "exactly one of --cases" in result.output
    result = CliRunner().invoke(main, ["monitor", "check", "--cases", str(quiet_file), *SMALL,
                                       "--alpha", "2"])  # fmt: skip
    assert result.exit_code == 2 and '"alpha" must be in' in result.output


def test_report_writes_the_dashboard_data_and_csv_tables(shifted_file: Path, tmp_path: Path
                                                         ) -> None:  # fmt: skip
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["monitor", "report", "--cases", str(shifted_file), *SMALL, "--out", str(out),
               "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["active_alerts"] == 1 and summary["summary"]["n"] == 600
    names = sorted(p.name for p in out.iterdir())
    assert names == ["calibration.csv", "cases.csv", "dashboard.html", "data.json", "drift.csv",
                     "kappa.csv", "subgroups.csv", "windows.csv"]  # fmt: skip
    page = (out / "dashboard.html").read_text()
    assert "href='cases.csv'" in page and 'id="chart-drift-input"' in page


def test_simulate_writes_a_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from radloop.lab import monitor_simulation as module

    monkeypatch.setattr(module, "load_pools", lambda profiles, **kwargs: hand_pools())
    out = tmp_path / "stream.jsonl"
    result = CliRunner().invoke(
        main, ["monitor", "simulate", "--n", "30", "--shift-profile", "portable", "--out",
               str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["written"] == 30 and data["shift_at"] == 15 and "Not a diagnosis" in data["notice"]
    expected = [c.to_dict() for c in simulate(hand_pools(), StreamConfig(
        n=30, seed=0, shift_profile="portable", shift_at=15))]  # fmt: skip
    assert [json.loads(line) for line in out.read_text().splitlines()] == expected


def test_reference_until_picks_the_reference_by_time(shifted_file: Path) -> None:
    # random_cases are one hour apart from 2025-03-03 08:00: 100 hours → 100 reference cases.
    args = ["monitor", "check", "--cases", str(shifted_file), "--json", "--window-size", "100",
            "--reference-until", "2025-03-07T12:00:00"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert json.loads(result.output.strip().splitlines()[-1])["reference"] == [0, 100]
    bad = CliRunner().invoke(main, [*args[:-1], "tuesday"])
    assert bad.exit_code == 2 and "--reference-until as an ISO-8601 time" in bad.output
