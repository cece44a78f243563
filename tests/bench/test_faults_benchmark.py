"""``radloop bench faults`` on small counts, and its fake model server.

The cheap parts (racing sign-offs and decisions, bombs, audit tampering) run here with a few
rounds each against real ``radloop serve`` subprocesses and must meet their bars. The parts
that need the drafting worker or the ask pool for tens of seconds (``model_hang``,
``worker_kills``, ``throughput``) run only with ``RADLOOP_SLOW_TESTS=1``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from radloop.lab.bench import faults
from radloop.lab.bench.slow_model_server import DRAFT_REPLY, FakeModelServer

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

SLOW = pytest.mark.skipif(
    os.environ.get("RADLOOP_SLOW_TESTS") != "1",
    reason="tens of seconds of worker and server processes; set RADLOOP_SLOW_TESTS=1",
)


def _completion(base_url: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(
        f"{base_url}/chat/completions",
        json={"model": "fake-slow-model", "messages": [{"role": "user", "content": "x"}]},
        timeout=timeout,
    )


def test_the_fake_server_serves_at_most_its_slots_at_once() -> None:
    with FakeModelServer("slow", latency_s=0.3, slots=2) as fake:
        models = httpx.get(f"{fake.base_url}/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == ["fake-slow-model"]
        answers: list[httpx.Response] = []
        started = time.perf_counter()
        threads = [
            threading.Thread(target=lambda: answers.append(_completion(fake.base_url)))
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        elapsed = time.perf_counter() - started
    assert [a.status_code for a in answers] == [200] * 5
    assert fake.max_in_flight == 2 and fake.completed == 5
    assert elapsed >= 0.85  # three waves of 0.3 s through two slots
    content = answers[0].json()["choices"][0]["message"]["content"]
    assert json.loads(content) == DRAFT_REPLY


def test_the_fake_server_in_hang_mode_never_answers_until_stopped() -> None:
    fake = FakeModelServer("hang").start()
    try:
        with pytest.raises(httpx.ReadTimeout):
            _completion(fake.base_url, timeout=0.5)
        assert fake.requests == 1 and fake.completed == 0
        assert httpx.get(f"{fake.base_url}/models", timeout=5).status_code == 200
    finally:
        started = time.perf_counter()
        fake.stop()
    assert time.perf_counter() - started < 5


def test_the_openai_backend_drafts_from_the_fake_server() -> None:
    from radloop.assist import draft
    from radloop.models.openai_backend import OpenAICompatibleModel
    from radloop.study import load_study, sample_study_path

    study = load_study(sample_study_path())
    with FakeModelServer("slow", latency_s=0.0, slots=1) as fake:
        model = OpenAICompatibleModel(base_url=fake.base_url, max_retries=0)
        drafted = draft(study, model)
        model.close()
    assert drafted.failure is None and drafted.model_id == "fake-slow-model"
    assert "No acute cardiopulmonary abnormality" in drafted.report.text


@pytest.fixture(scope="module")
def signoff() -> dict[str, Any]:
    return faults.run_faults_benchmark(
        ["double_finals", "signed_unseen_text", "lost_decisions"],
        sizes={
            "double_finals": {"rounds": 3},
            "signed_unseen_text": {"rounds": 4},
            "lost_decisions": {"rounds": 3},
        },
    )


def test_racing_signers_leave_one_final_report(signoff: dict[str, Any]) -> None:
    details = signoff["details"]["double_finals"]
    assert signoff["double_finals"] == 0, details
    assert details["studies_signed_once"] == 3
    assert details["responses"] == {"200": 3, "409": 3}


def test_no_reader_signs_text_they_did_not_see(signoff: dict[str, Any]) -> None:
    details = signoff["details"]["signed_unseen_text"]
    assert signoff["signed_unseen_text"] == 0, details
    assert details["rounds"] == 4 and "500" not in details["sign_responses"]


def test_concurrent_decisions_on_different_findings_are_all_kept(
    signoff: dict[str, Any],
) -> None:
    details = signoff["details"]["lost_decisions"]
    assert signoff["lost_decisions"] == 0, details
    assert details["decisions_sent"] == 6 and details["responses"] == {"200": 6}
    assert signoff["bars"]["lost_decisions"] == {"bar": "= 0", "meets": True}


def test_bombs_are_refused_and_the_server_stays_small(tmp_path: Path) -> None:
    result = faults.part_bombs(tmp_path, zipped=4)
    assert result["refused_422"] == "6/6", result["sends"]
    assert result["studies_stored"] == 0
    assert result["bomb_peak_rss_mb"] is not None and result["bomb_peak_rss_mb"] <= 1024
    assert result["largest_refused_decoded_mb"] == 572.1  # 9,999^2 x 3 samples x 16 bits


def test_each_tampering_is_found_by_audit_verify(tmp_path: Path) -> None:
    result = faults.part_audit_tamper(tmp_path, signed=2)
    assert result["untampered_copy_verifies"], result["untampered_says"]
    assert result["audit_tamper_detected"] == "3/3", result["scenarios"]


def test_the_command_prints_the_json_object_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        faults._RUNNERS, "lost_decisions", lambda scratch: {"lost_decisions": 0, "rounds": 1}
    )
    out = CliRunner().invoke(faults.bench_faults, ["--only", "lost_decisions", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["parts"] == ["lost_decisions"] and result["lost_decisions"] == 0
    assert result["bars"] == {"lost_decisions": {"bar": "= 0", "meets": True}}
    assert "faults: lost_decisions done" in out.stderr
    text = CliRunner().invoke(faults.bench_faults, ["--only", "lost_decisions"])
    assert "lost_decisions: 0  (bar = 0: meets)" in text.stdout


def test_a_broken_part_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(scratch: Path) -> dict[str, Any]:
        raise RuntimeError("the server did not answer")

    monkeypatch.setitem(faults._RUNNERS, "bombs", broken)
    result = faults.run_faults_benchmark(["bombs"])
    assert result["bomb_peak_rss_mb"] is None
    assert result["details"]["bombs"]["error"] == "RuntimeError: the server did not answer"
    assert result["bars"]["bomb_peak_rss_mb"]["meets"] is None
    with pytest.raises(ValueError, match="unknown part"):
        faults.run_faults_benchmark(["nothing"])


@SLOW
def test_the_worklist_stays_fast_while_the_model_hangs(tmp_path: Path) -> None:
    result = faults.part_model_hang(tmp_path, seconds=3.0)
    assert result["failed_or_timed_out"] == 0, result
    assert result["worklist_p95_ms_while_model_hangs"] <= 200, result


@SLOW
def test_killed_workers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    result = faults.part_worker_kills(tmp_path, studies=10, kills=4)
    assert result["kills"] >= 1
    assert result["stuck_jobs"] == 0 and result["lost_jobs"] == 0, result
    assert result["duplicate_drafts"] in (0, None), result


@SLOW
def test_one_worker_fills_the_model_servers_slots(tmp_path: Path) -> None:
    result = faults.part_throughput(tmp_path, studies=24)
    assert result["drafted"] == 24, result
    assert result["model_max_in_flight"] == 8, result
