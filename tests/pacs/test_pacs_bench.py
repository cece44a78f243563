"""``radloop bench pacs`` on two studies: the bars of the PACS link hold end to end."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_pacs_benchmark_pulls_each_study_once_and_every_report_reaches_orthanc(
    tmp_path: Path,
) -> None:
    from radloop.lab.bench.pacs import format_pacs_benchmark, run_pacs_benchmark
    from radloop.lab.orthanc import orthanc_missing

    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    result = run_pacs_benchmark(2, scratch=tmp_path)
    figures = result.to_dict()
    assert {k: figures[k] for k in ("studies", "pulled", "duplicates_pulled")} == {
        "studies": 2,
        "pulled": 2,
        "duplicates_pulled": 0,
    }
    assert result.drafted == result.signed == result.sr_sent == result.sr_stored == 2, figures
    assert result.sr_dciodvfy_errors in (0, None), result.dciodvfy_error_lines
    assert result.seconds_per_study_pull > 0 and result.instances_pulled == 4
    assert "duplicates 0" in format_pacs_benchmark(result)
