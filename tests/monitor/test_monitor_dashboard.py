"""The dashboard router with FastAPI's TestClient on simulated cases."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from monitor_builders import hand_pools

from radloop.lab.monitor_simulation import StreamConfig, simulate
from radloop.monitor.analysis import MonitorSettings
from radloop.monitor.cases import SignedCase
from radloop.monitor.drift import DriftConfig

pytest.importorskip("fastapi")
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from radloop.monitor.dashboard import monitor_router

SETTINGS = MonitorSettings(drift=DriftConfig(reference_size=100, window_size=50, step=25))


def require_auditor(x_role: str | None = Header(None)) -> str:
    if x_role is None:
        raise HTTPException(status_code=401, detail="log in")
    if x_role not in ("auditor", "admin"):
        raise HTTPException(status_code=403, detail="auditors and admins only")
    return x_role


def shifted_cases() -> list[SignedCase]:
    stream = StreamConfig(n=300, seed=5, shift_profile="portable", shift_at=200, per_day=20)
    return list(simulate(hand_pools(), stream))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    cases = shifted_cases()
    app = FastAPI()
    app.include_router(monitor_router(lambda: cases, require_auditor, settings=SETTINGS),
                       prefix="/admin")  # fmt: skip
    with TestClient(app) as test_client:
        yield test_client


AUDITOR = {"X-Role": "auditor"}


@pytest.mark.parametrize("path", ["/admin/monitor", "/admin/monitor/data.json",
                                  "/admin/monitor/export.csv"])  # fmt: skip
def test_only_auditors_and_admins_see_the_dashboard(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-Role": "radiologist"}).status_code == 403
    assert client.get(path, headers={"X-Role": "admin"}).status_code == 200


def test_page_has_every_chart_and_the_active_alert(client: TestClient) -> None:
    page = client.get("/admin/monitor", headers=AUDITOR)
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    for chart in ("chart-agreement", "chart-revised", "chart-subgroups", "chart-drift-input",
                  "chart-drift-output", "chart-not-checked",
                  "chart-subgroups-not-checked"):  # fmt: skip
        assert f'id="{chart}"' in text
    assert "Active alerts" in text and "input" in text
    assert "<script" not in text and "http://" not in text.replace('"http://www.w3.org', "")
    assert "not a measure of diagnostic accuracy" in text


def test_json_carries_summary_drift_and_alerts(client: TestClient) -> None:
    data: dict[str, Any] = client.get("/admin/monitor/data.json", headers=AUDITOR).json()
    assert data["summary"]["n"] == 300
    assert {g["label"] for g in data["summary"]["subgroups"]["manufacturer"]} == {
        "Vendor standard", "Vendor portable"}  # fmt: skip
    assert data["drift"]["active_alerts"] == 1
    alert = data["drift"]["alerts"][0]
    assert 200 < alert["raised_at"] <= 300 and "image mean" in alert["tests"]


def test_claims_not_checked_are_shown_apart_from_supported_ones(client: TestClient) -> None:
    # Every hand-made draft: one supported claim, one unsupported, one not checked.
    data: dict[str, Any] = client.get("/admin/monitor/data.json", headers=AUDITOR).json()
    overall = data["summary"]["overall"]
    assert overall["claims"] == 900
    assert (overall["claims_supported"], overall["claims_not_checked"]) == (300, 300)
    assert overall["not_checked_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert all(w["claims_not_checked"] * 3 == w["claims"] for w in data["summary"]["windows"])
    text = client.get("/admin/monitor", headers=AUDITOR).text
    assert "300 of 900 draft claims were not checked" in text and "claim-verdicts" in text
    cases = client.get("/admin/monitor/export.csv?table=cases", headers=AUDITOR).text
    rows = list(csv.DictReader(io.StringIO(cases)))
    assert {(r["claims_supported"], r["claims_not_checked"]) for r in rows} == {("1", "1")}


def test_window_days_query_changes_the_windows(client: TestClient) -> None:
    weekly = client.get("/admin/monitor/data.json", headers=AUDITOR).json()
    daily = client.get("/admin/monitor/data.json?window_days=1", headers=AUDITOR).json()
    assert len(daily["summary"]["windows"]) > len(weekly["summary"]["windows"])
    assert client.get("/admin/monitor/data.json?window_days=0", headers=AUDITOR).status_code == 422


@pytest.mark.parametrize("table, column", [("cases", "significantly_revised"),
                                           ("windows", "revised_rate"), ("subgroups", "subgroup"),
                                           ("kappa", "kappa"), ("drift", "p_value")])  # fmt: skip
def test_csv_exports(client: TestClient, table: str, column: str) -> None:
    response = client.get(f"/admin/monitor/export.csv?table={table}", headers=AUDITOR)
    assert response.headers["content-type"].startswith("text/csv")
    assert f"monitor-{table}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and column in rows[0]
    if table == "cases":
        assert len(rows) == 300


def test_unknown_csv_table_is_a_clear_422(client: TestClient) -> None:
    response = client.get("/admin/monitor/export.csv?table=secrets", headers=AUDITOR)
    assert response.status_code == 422 and "expected table one of" in response.text


def test_dashboard_with_no_cases_says_so() -> None:
    app = FastAPI()
    app.include_router(monitor_router(lambda: [], require_auditor))
    with TestClient(app) as empty:
        text = empty.get("/monitor", headers=AUDITOR).text
    assert "No signed cases yet." in text and "No active drift alert" in text


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text() -> None:
    from dataclasses import replace

    from monitor_builders import make_case

    from radloop.monitor.analysis import analyse, csv_table, neutralise_csv_cell

    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"]
    cases = [replace(make_case(i), study_id=s) for i, s in enumerate(hostile)]
    rows = list(csv.DictReader(io.StringIO(csv_table(analyse(cases), "cases"))))
    assert [row["study_id"] for row in rows] == ["'" + s for s in hostile]
    assert neutralise_csv_cell("\rx") == "'\rx"
    assert neutralise_csv_cell("s00001") == "s00001"
    app = FastAPI()
    app.include_router(monitor_router(lambda: cases, require_auditor), prefix="/admin")
    with TestClient(app) as test_client:
        text = test_client.get("/admin/monitor/export.csv?table=cases", headers=AUDITOR).text
    assert "'=HYPERLINK" in text and "\n=" not in text and ",=" not in text
