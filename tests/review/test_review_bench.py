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
