"""``radloop bench monitor``: drift alerts on simulated streams and aggregation speed.

Protocol (docs/benchmarks.md, "monitor"): pools of synthetic studies per site profile are rendered,
drafted by the reference model and checked by the safety layer once (cached); streams resample
them through a simulated reader (:mod:`radloop.lab.monitor_simulation`).

- detection: for each of ``seeds`` streams of 2,000 studies whose site profile switches from
  ``standard`` to ``portable`` (and, separately, to ``community``) at study 1,000, the number of
  studies from the switch to the first alert raised after it (the last study of the window
  that completed the persistence rule); the bar is ≤ 200 on every stream;
- false alarms: the share of ``seeds`` streams of 2,000 ``standard`` studies without a switch
  that raise any alert; the bar is ≤ 5 %; a Clopper–Pearson 95 % interval is given;
- aggregation: the time to turn 10,000 signed-case records (review store schema, as dicts)
  into per-case agreement, the window and subgroup summary with intervals, kappa per finding,
  and the drift report; median of ``repeats`` runs; the bar is ≤ 5 s.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from radloop.lab.monitor_simulation import Pool
    from radloop.monitor.cases import SignedCase
    from radloop.monitor.drift import DriftConfig, DriftReport

__all__ = ["BARS", "bench_monitor", "format_monitor_benchmark", "run_monitor_benchmark"]

BARS = {
    "detection_within_studies": ("<=", 200),
    "false_alarm_rate": ("<=", 0.05),
    "aggregate_10k_s": ("<=", 5.0),
}
STREAM = 2000
SHIFT_AT = 1000
# (name, profile, share of studies from it after the switch): a whole-site switch, and a
# subtler one where a quarter of the studies come from a new bedside unit.
SCENARIOS = (("portable", "portable", 1.0), ("community", "community", 1.0),
             ("portable 25 %", "portable", 0.25))  # fmt: skip
BAR_SCENARIOS = ("portable", "community")
NO_SHIFT_SEED_OFFSET = 10_000


def shift_start(seed: int) -> int:
    """Study index of the switch: 1,000 plus an offset of 0–49 that varies with the seed, so
    switches do not all fall on a window boundary."""
    return SHIFT_AT + (seed * 17) % 50


def _stream(
    pools: dict[str, Pool], seed: int, shift: str | None, fraction: float = 1.0
) -> list[SignedCase]:
    from radloop.lab.monitor_simulation import ReaderConfig, StreamConfig, simulate

    config = StreamConfig(
        n=STREAM,
        seed=seed,
        shift_profile=shift,
        shift_at=shift_start(seed) if shift else None,
        shift_fraction=fraction,
    )
    return list(simulate(pools, config, ReaderConfig()))


def _drift(cases: Sequence[SignedCase], config: DriftConfig) -> DriftReport:
    from radloop.monitor.aggregate import CaseTable
    from radloop.monitor.drift import detect_drift

    return detect_drift(CaseTable.build(cases), config)


def _clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from scipy import stats

    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return low, high


def run_monitor_benchmark(
    *,
    seeds: int = 20,
    repeats: int = 3,
    cache: Path | None = None,
    workers: int = 2,
    aggregate_n: int = 10_000,
    null_seeds: int | None = None,
) -> dict[str, Any]:
    """Run the protocol; returns the figures as a dict."""
    from tqdm import tqdm

    from radloop.lab.monitor_simulation import (
        DEFAULT_CACHE,
        PUBLIC_NOTICE,
        ReaderConfig,
        load_pools,
    )
    from radloop.monitor.drift import DriftConfig

    config = DriftConfig()
    with tqdm(unit="study", desc="render pools (cached)") as bar:

        def advance(k: int) -> None:
            bar.update(k)

        pools = load_pools(
            ["standard", *BAR_SCENARIOS],
            cache=cache or DEFAULT_CACHE,
            workers=workers,
            progress=advance,
        )
    delays: dict[str, list[int | None]] = {name: [] for name, _, _ in SCENARIOS}
    early: dict[str, int] = {name: 0 for name, _, _ in SCENARIOS}
    false_alarms: list[bool] = []
    alarm_tests: dict[str, int] = {}
    for seed in tqdm(range(seeds), unit="seed", desc="streams with a switch"):
        start = shift_start(seed)
        for name, profile, fraction in SCENARIOS:
            report = _drift(_stream(pools, seed, profile, fraction), config)
            after = [a for a in report.alerts if a.raised_at > start]
            early[name] += any(a.raised_at <= start for a in report.alerts)
            delays[name].append(after[0].raised_at - start if after else None)
    for seed in tqdm(range(null_seeds or seeds), unit="seed", desc="streams without"):
        quiet = _drift(_stream(pools, NO_SHIFT_SEED_OFFSET + seed, None), config)
        false_alarms.append(bool(quiet.alerts))
        for alert in quiet.alerts:
            for test in alert.tests:
                alarm_tests[test] = alarm_tests.get(test, 0) + 1
    timing = _aggregation_timing(pools, repeats, aggregate_n)
    detection = {
        shift: {
            "detected": sum(d is not None for d in values),
            "streams": len(values),
            "delay_median": statistics.median([d for d in values if d is not None])
            if any(d is not None for d in values)
            else None,
            "delay_max": max((d for d in values if d is not None), default=None),
            "delays": values,
            "alerts_before_shift": early[shift],
        }
        for shift, values in delays.items()
    }
    barred = [detection[name] for name in BAR_SCENARIOS]
    worst = [d["delay_max"] for d in barred]
    all_detected = all(d["detected"] == d["streams"] for d in barred)
    k = sum(false_alarms)
    fa_low, fa_high = _clopper_pearson(k, len(false_alarms))
    result: dict[str, Any] = {
        "benchmark": "monitor",
        "notice": PUBLIC_NOTICE,
        "seeds": seeds,
        "stream": STREAM,
        "shift_at": f"{SHIFT_AT} + (17 * seed mod 50)",
        "detection_bar_scenarios": list(BAR_SCENARIOS),
        "pools": {p: len(pool.studies) for p, pool in pools.items()},
        "drift_config": config.to_dict(),
        "reader": ReaderConfig().__dict__,
        "detection": detection,
        "detection_within_studies": max(w for w in worst if w is not None)
        if all_detected and worst
        else None,
        "false_alarm_streams": k,
        "false_alarm_seeds": len(false_alarms),
        "false_alarm_rate": k / len(false_alarms),
        "false_alarm_ci": [round(fa_low, 4), round(fa_high, 4)],
        "false_alarm_tests": alarm_tests,
        **timing,
    }
    result["bars"] = {
        name: {"op": op, "bar": bar, "value": result.get(name),
               "met": _meets(result.get(name), op, bar)}
        for name, (op, bar) in BARS.items()
    }  # fmt: skip
    return result


def _meets(value: Any, op: str, bar: float) -> bool:
    if value is None:
        return False
    return bool(value <= bar) if op == "<=" else bool(value >= bar)


def _aggregation_timing(pools: dict[str, Pool], repeats: int, n: int) -> dict[str, Any]:
    """Time 10,000 records (as the review store yields them) through the whole analysis."""
    from radloop.lab.monitor_simulation import ReaderConfig, StreamConfig, simulate
    from radloop.monitor.analysis import MonitorSettings, analyse, clear_caches
    from radloop.monitor.cases import SignedCase

    stream = StreamConfig(n=n, seed=424_242, shift_profile="portable", shift_at=int(n * 0.6),
                          per_day=60)  # fmt: skip
    records = [c.to_dict() for c in simulate(pools, stream, ReaderConfig())]
    records = json.loads(json.dumps(records))  # plain JSON values, as from a database or file
    seconds, parse_seconds = [], []
    analysis = None
    for _ in range(repeats):
        clear_caches()  # every run starts cold, as a fresh process would
        start = time.perf_counter()
        cases = [SignedCase.from_dict(r) for r in records]
        parsed = time.perf_counter()
        analysis = analyse(cases, MonitorSettings())
        seconds.append(time.perf_counter() - start)
        parse_seconds.append(parsed - start)
    assert analysis is not None
    overall = analysis.summary.overall
    return {
        "aggregate_cases": len(records),
        "aggregate_10k_s": round(statistics.median(seconds), 3),
        "aggregate_10k_runs_s": [round(s, 3) for s in seconds],
        "parse_10k_s": round(statistics.median(parse_seconds), 3),
        "aggregate_windows": len(analysis.summary.windows),
        "aggregate_drift_windows": len(analysis.drift.windows),
        "agreement_10k": None if overall is None else overall.to_dict(),
    }


def format_monitor_benchmark(result: dict[str, Any]) -> str:
    """The figures as text."""
    lines = [f"radloop bench monitor — {result['seeds']} seeds, streams of {result['stream']}",
             result["notice"]]  # fmt: skip
    for shift, d in result["detection"].items():
        lines.append(
            f"  standard → {shift} at study {result['shift_at']}: detected {d['detected']}/"
            f"{d['streams']}, delay median {d['delay_median']}, max {d['delay_max']} studies"
        )
    low, high = result["false_alarm_ci"]
    lines.append(
        f"  false alarms without shift: {result['false_alarm_streams']}/"
        f"{result['false_alarm_seeds']} "
        f"streams ({100 * result['false_alarm_rate']:.1f} %, 95 % CI {100 * low:.1f}–"
        f"{100 * high:.1f} %)"
    )
    lines.append(
        f"  aggregate {result['aggregate_cases']} signed cases: {result['aggregate_10k_s']} s "
        f"(median of {len(result['aggregate_10k_runs_s'])}; parsing {result['parse_10k_s']} s)"
    )
    for name, bar in result["bars"].items():
        lines.append(f"  bar {name} {bar['op']} {bar['bar']}: {bar['value']} "
                     f"{'met' if bar['met'] else 'NOT met'}")  # fmt: skip
    return "\n".join(lines)


@click.command("monitor")
@click.option("--seeds", type=int, default=20, show_default=True, help="Streams per scenario.")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="Runs of the 10,000-case aggregation (the median is reported).")  # fmt: skip
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the rendered study pools (default ~/.cache/radloop/monitor).",
)
@click.option(
    "--null-seeds",
    type=int,
    default=None,
    help="Streams without a switch for the false-alarm rate (default: --seeds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_monitor(
    seeds: int, repeats: int, cache: Path | None, null_seeds: int | None, as_json: bool
) -> None:
    """Drift detection delay, false alarms over seeds, and 10,000-case aggregation time."""
    result = run_monitor_benchmark(seeds=seeds, repeats=repeats, cache=cache,
                                   null_seeds=null_seeds)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_monitor_benchmark(result))
