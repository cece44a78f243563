"""The monitor's ECE over time per finding type on newly signed cases, and its alert."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from click.testing import CliRunner

from radloop.monitor.analysis import MonitorSettings, analyse, csv_table
from radloop.monitor.calibration import (
    CalibrationConfig,
    calibration_over_time,
    scored_claims,
)
from radloop.monitor.cases import SignedCase, write_cases
from radloop.monitor.page import render_dashboard
from radloop.report import Finding, Presence

START = datetime.datetime(2025, 5, 5, 8, 0, tzinfo=datetime.UTC)
CODES = ("pleural_effusion", "pneumothorax", "cardiomegaly")


def _stream(n: int, *, drift_from: int | None = None, seed: int = 0) -> list[SignedCase]:
    """Cases whose stated probabilities are calibrated, except for effusion after
    ``drift_from``, where the finding is present far less often than stated."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        draft, signed = [], []
        for code in CODES:
            p = float(rng.uniform(0.05, 0.95))
            truth = p
            if drift_from is not None and i >= drift_from and code == "pleural_effusion":
                truth = p / 3
            present = bool(rng.random() < truth)
            stated = Presence.PRESENT if p >= 0.5 else Presence.ABSENT
            draft.append(Finding(code, presence=stated, probability=p))
            if present:
                signed.append(Finding(code))
        when = START + datetime.timedelta(minutes=20 * i)
        cases.append(SignedCase(f"c{i:05d}", when, when, 60, "F", "site", None, "PA", "mllm",
                                tuple(draft), tuple(signed), "", ""))  # fmt: skip
    return cases


def test_a_claim_is_scored_against_what_was_signed() -> None:
    (case,) = _stream(1)
    scored = scored_claims(case)
    assert [code for code, _, _ in scored] == list(CODES)
    signed = {f.code for f in case.signed_findings}
    assert [present for _, _, present in scored] == [c in signed for c in CODES]


def test_calibrated_probabilities_raise_no_alert() -> None:
    report = calibration_over_time(_stream(1200), CalibrationConfig())
    assert report.n_claims == 3600
    assert report.windows and not report.alerts
    overall = [w for w in report.windows if w.finding == "all"]
    assert len(overall) == 11 and all(w.ece < 0.08 for w in overall)


def test_drifting_calibration_of_one_finding_type_raises_an_alert_for_it() -> None:
    report = calibration_over_time(_stream(1200, drift_from=600))
    active = report.active
    assert "pleural_effusion" in {a.finding for a in active}
    assert not {a.finding for a in report.alerts} & {"pneumothorax", "cardiomegaly"}
    effusion = [w for w in report.series()["pleural_effusion"] if w.start >= 600]
    assert all(w.ece > 0.1 for w in effusion)
    assert "refit with `radloop calibrate --from-signed`" in active[0].message
    before = [w for w in report.series()["pleural_effusion"] if w.end <= 600]
    assert not any(w.alarm for w in before)


def test_a_small_window_of_calibrated_claims_does_not_alarm_on_chance() -> None:
    config = CalibrationConfig(window_size=20, step=20, min_claims=10, threshold=0.05)
    report = calibration_over_time(_stream(400, seed=4), config)
    windows = [w for w in report.windows if w.finding != "all"]
    assert any(w.ece > 0.05 for w in windows)  # small samples show a sizeable ECE...
    assert sum(w.alarm for w in windows) <= 0.1 * len(windows)  # ...that is seldom an alarm


def test_the_dashboard_shows_the_ece_chart_and_the_alert(tmp_path) -> None:
    analysis = analyse(_stream(1200, drift_from=600), MonitorSettings())
    page = render_dashboard(analysis, export_base=None)
    assert "chart-calibration" in page and "calibration drift (active)" in page
    assert analysis.to_dict()["calibration"]["active_alerts"] >= 1
    assert csv_table(analysis, "calibration").startswith("finding,start,end")


def test_monitor_check_exits_1_on_a_calibration_alert(tmp_path) -> None:
    pytest.importorskip("scipy")
    from radloop.monitor.cli import monitor

    path = tmp_path / "cases.jsonl"
    write_cases(_stream(1200, drift_from=600), path)
    result = CliRunner().invoke(monitor, ["check", "--cases", str(path)])
    assert result.exit_code == 1, result.output
    assert "calibration drift (active) of pleural effusion" in result.output
    quiet = tmp_path / "quiet.jsonl"
    write_cases(_stream(1200), quiet)
    calm = CliRunner().invoke(monitor, ["check", "--cases", str(quiet), "--json"])
    assert '"calibration"' in calm.output
