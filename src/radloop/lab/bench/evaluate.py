"""``radloop bench eval``: scoring speed of ``radloop eval`` on 10,000 cases, inference excluded.

Simulated prediction records (:mod:`radloop.evaluate.simulate`: the synthetic lab's ten
finding types, four sites, drafts, safety verdicts, zones and lesions) are written as a run
folder exactly as the runner writes one (``run.json``, ``cases.json``, one JSON file per case
under ``cache/``); writing is not timed. The timed part is what ``radloop eval`` does after
inference: read the run folder, build the arrays, compute every figure with its bootstrap
interval (1,000 resamples; 200 for the breakdowns), and write ``metrics.json`` and the
self-contained ``report.html``. The figure is the median of ``--repeats`` runs; the bar is
30 s for 10,000 cases.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["BAR_SECONDS", "bench_eval", "run_eval_benchmark"]

BAR_SECONDS = 30.0


def write_simulated_run(out: Path, n: int, seed: int) -> None:
    """A run folder of ``n`` simulated cases, laid out as the runner writes it."""
    from radloop.evaluate.runner import RunSettings, _safe_name
    from radloop.evaluate.simulate import PREVALENCE, simulate_run
    from radloop.evaluate.types import CASES_SCHEMA

    cases, predictions = simulate_run(n, seed)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    settings = RunSettings("simulated", "simulated:records", "simulated", None, None)
    (out / "run.json").write_text(json.dumps(settings.to_dict()), encoding="utf-8")
    (out / "cases.json").write_text(
        json.dumps(
            {
                "schema": CASES_SCHEMA,
                "dataset": "simulated:records",
                "description": "simulated prediction records",
                "codes": list(PREVALENCE),
                "cases": [c.to_dict() for c in cases],
            }
        ),
        encoding="utf-8",
    )
    for prediction in predictions:
        path = out / "cache" / f"{_safe_name(prediction.case_id)}.json"
        path.write_text(json.dumps(prediction.to_dict()), encoding="utf-8")


def run_eval_benchmark(*, n: int = 10_000, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Write the records once, score them ``repeats`` times; the timings."""
    from radloop.evaluate.arrays import build_arrays
    from radloop.evaluate.pipeline import score_run
    from radloop.evaluate.runner import load_run

    with tempfile.TemporaryDirectory(prefix="radloop-bench-eval-") as scratch:
        out = Path(scratch)
        started = time.perf_counter()
        write_simulated_run(out, n, seed)
        write_seconds = time.perf_counter() - started
        totals, cpu, loads, arrays, scoring = [], [], [], [], []
        table: dict[str, Any] = {}
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            outcome = score_run(out)
            totals.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            table = outcome.table
            scoring.append(float(table["scoring_seconds"]))
            # The parts, measured separately (the total above is the figure).
            t1 = time.perf_counter()
            settings, cases, predictions = load_run(out)
            loads.append(time.perf_counter() - t1)
            t2 = time.perf_counter()
            build_arrays(cases, predictions, settings["codes"])
            arrays.append(time.perf_counter() - t2)
        html_bytes = (out / "report.html").stat().st_size
    total = statistics.median(totals)
    return {
        "benchmark": "eval",
        "n_cases": n,
        "repeats": repeats,
        "resamples": table["bootstrap"]["resamples"],
        "subgroup_resamples": table["bootstrap"]["subgroup_resamples"],
        "score_seconds_median": round(total, 2),
        "score_seconds_all": [round(t, 2) for t in totals],
        # CPU seconds of this process: what the figure would be on an idle machine (the
        # scoring is single-threaded numpy apart from BLAS).
        "score_cpu_seconds_median": round(statistics.median(cpu), 2),
        "parts_median_s": {
            "read_run_folder": round(statistics.median(loads), 2),
            "build_arrays": round(statistics.median(arrays), 2),
            "metrics_with_intervals": round(statistics.median(scoring), 2),
        },
        "cases_per_second": round(n / total, 1),
        "html_kib": round(html_bytes / 1024, 1),
        "write_records_seconds": round(write_seconds, 1),
        "bar_seconds": BAR_SECONDS,
        "meets_bar": total <= BAR_SECONDS,
    }


@click.command("eval")
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=10),
    default=10_000,
    show_default=True,
    help="Simulated cases.",
)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
def bench_eval(n: int, repeats: int, as_json: bool) -> None:
    """Scoring speed of `radloop eval` (figures, intervals, HTML) without model inference."""
    result = run_eval_benchmark(n=n, repeats=repeats)
    if as_json:
        click.echo(json.dumps(result))
        return
    verdict = "meets" if result["meets_bar"] else "MISSES"
    click.echo(
        f"scored {n} cases with intervals and HTML in {result['score_seconds_median']} s "
        f"(median of {repeats}; bar ≤ {BAR_SECONDS:g} s: {verdict}); "
        f"{result['score_cpu_seconds_median']} CPU s"
    )
    click.echo(f"  parts: {result['parts_median_s']}; report {result['html_kib']} KiB")
