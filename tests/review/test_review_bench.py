"""`radloop bench review` end to end on a tiny store: a real server process, real clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")


def test_bench_review_runs_clients_against_a_server_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from radloop.cli import main

    monkeypatch.delenv("RADLOOP_DATABASE_URL", raising=False)
    result = CliRunner().invoke(
        main, ["bench", "review", "--json", "--studies", "300", "--clients", "4", "--seconds", "1"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["studies"] == 300 and figures["clients"] == 4
    assert figures["requests"] > 0 and figures["errors"] == 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    # every answered view was audited (group commit loses nothing) and the chain verifies
    assert figures["audited_views"] == figures["requests"]
    assert figures["audit_chain_intact"] is True


def test_the_printed_verdict_holds_the_run_to_the_100_ms_bar_and_a_full_audit() -> None:
    from dataclasses import replace

    from radloop.lab.bench.review import ReviewLoadResult, format_review_benchmark

    run = ReviewLoadResult(
        studies=10_000,
        clients=50,
        seconds=30.0,
        requests=30_000,
        errors=0,
        requests_per_s=1000.0,
        p50_ms=40.0,
        p95_ms=99.0,
        p99_ms=120.0,
        worklist_p95_ms=99.0,
        study_p95_ms=98.0,
        server_workers=2,
        database="sqlite",
        server_cpu_ms_per_request=1.5,
        client_cpu_ms_per_request=0.1,
        load_generator="test",
        audited_views=30_000,
        audit_chain_intact=True,
        load_average=4.0,
    )
    assert "meets the bar (p95 <= 100 ms" in format_review_benchmark(run)
    for worse in (
        replace(run, p95_ms=101.0),
        replace(run, errors=1),
        replace(run, audited_views=29_999),
        replace(run, audit_chain_intact=False),
    ):
        assert "misses the bar" in format_review_benchmark(worse)
