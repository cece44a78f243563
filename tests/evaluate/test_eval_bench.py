"""``radloop bench eval`` prints its figures as one JSON object on the last line."""

from __future__ import annotations

import json

from click.testing import CliRunner


def test_bench_eval_scores_simulated_records_and_reports_its_timings() -> None:
    from radloop.cli import main

    result = CliRunner().invoke(main, ["bench", "eval", "--n", "200", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["benchmark"] == "eval" and figures["n_cases"] == 200
    assert figures["score_seconds_median"] > 0 and figures["html_kib"] > 10
    assert figures["resamples"] == 1000 and isinstance(figures["meets_bar"], bool)
