"""Benchmark parts of the evidence issue: the calibration learning curve and the second-opinion
path on real films (docs/benchmarks.md, "evidence").

(b) Learning curve, :func:`run_learning_curve`. The lab's synthetic studies (the monitor's
pools: rendered, drafted by the reference model and checked by the ``reference`` verifier,
:mod:`radloop.lab.monitor_simulation`) are signed by the monitor's simulated reader
(``read_as_reader``). Each draft claim carries the reference verifier's probability as stored
and a contradiction flag from its verdict; the other sources a real deployment would have are
simulated per claim from whether the claim is right about the study's truth, each present only
part of the time (``SOURCE_PRESENCE``): the share of 5 sampled drafts that agree, ask-back
P(yes) and P(side), a token probability, and a second opinion's probability of the finding.
The label is what the simulated reader signed. ``radloop calibrate --from-signed``'s fit
(:func:`radloop.safety.signed_calibration.fit_from_signed`, latest 20 % held out for its choice
of map) runs on the first 100, 300 and 1,000 signed cases; ECE (15 bins) is measured on the
claims of the next 1,000 signed cases. The figures are the mean over ``repeats`` streams.
Bar: ``ece_after_1000`` ≤ 0.03.

(c) Second opinion, :func:`run_second_opinion_share`. A DenseNet-121 with torchxrayvision's
architecture and random weights is converted by ``radloop verifier import torchxrayvision``
and used as the ``onnx`` verifier on the frontal (PA/AP) films of a real collection
(realcxr-dev). A fixed draft states four claims the network's label map covers. The share of
those claims the fail-safe gate lets it check (``second_opinion_in_domain_share``; bar ≥ 0.95)
and the share that received a second-opinion reading beside a verifier that says nothing are
counted; so is the share of claims on the collection's other films (CT, lateral) that stay
not checked. Random weights say nothing about the films: this measures the gate, not accuracy.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from radloop.report import Finding, Presence, Verdict

__all__ = [
    "BARS",
    "SOURCE_PRESENCE",
    "bench_evidence_calibration",
    "run_learning_curve",
    "run_second_opinion_share",
]

BARS = {"ece_after_1000": ("<=", 0.03), "second_opinion_in_domain_share": (">=", 0.95)}
SOURCE_PRESENCE = {
    "sample_agreement": 0.8,
    "ask_yes": 0.7,
    "ask_side": 0.7,
    "token_probability": 0.5,
    "second_opinion": 0.6,
}
"""How often each simulated source is present for a claim (independently)."""
FIT_SIZES = (100, 300, 1000)
TEST_SIZE = 1000
_CLAIMS = (
    Finding("lung_opacity"),
    Finding("pleural_effusion", presence=Presence.ABSENT),
    Finding("pneumothorax", presence=Presence.ABSENT),
    Finding("cardiomegaly", presence=Presence.ABSENT),
)


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


def _claim_signals(found: Finding, truth: Sequence[Finding], rng: np.random.Generator) -> Any:
    """A draft claim's signals: the stored verifier reading, and simulated other sources."""
    from radloop.safety.calibration import ClaimSignals
    from radloop.safety.signed_calibration import signed_states

    right = signed_states(found, truth) == found.is_positive
    present = signed_states(found.with_(presence=Presence.PRESENT, side=None), truth)

    def maybe(source: str) -> bool:
        return bool(rng.random() < SOURCE_PRESENCE[source])

    agreement = float(rng.binomial(5, 0.9 if right else 0.45) / 5) if maybe("sample_agreement") \
        else None  # fmt: skip
    ask_yes = _sigmoid(rng.normal(1.2 if present else -1.0, 1.0)) if maybe("ask_yes") else None
    lateral = found.is_positive and found.side is not None
    ask_side = (_sigmoid(rng.normal(1.5 if right else -0.5, 1.0))
                if lateral and maybe("ask_side") else None)  # fmt: skip
    token = _sigmoid(rng.normal(2.0 if right else 0.8, 1.0)) if maybe("token_probability") else None
    second = _sigmoid(rng.normal(1.2 if present else -1.2, 1.2)) if maybe("second_opinion") \
        else None  # fmt: skip
    return ClaimSignals(
        positive=found.is_positive,
        verifier_probability=found.probability,
        sample_agreement=agreement,
        contradicted=found.is_positive and found.verdict is Verdict.CONTRADICTED,
        code=found.code,
        p_ask_yes=ask_yes,
        p_ask_side=ask_side,
        token_probability=token,
        p_second_opinion=second,
    )


def _signed_stream(pool: Any, n: int, seed: int) -> list[list[Any]]:
    """``n`` signed cases, each a list of its claims' SignedClaim records."""
    import datetime

    from radloop.lab.monitor_simulation import ReaderConfig, read_as_reader
    from radloop.safety.calibration import LabelledClaim
    from radloop.safety.signed_calibration import SignedClaim, signed_states

    rng = np.random.default_rng(seed)
    reader = ReaderConfig()
    start = datetime.datetime(2025, 1, 6, 8, 0, tzinfo=datetime.UTC)
    cases = []
    for i in range(n):
        study = pool.studies[int(rng.integers(len(pool.studies)))]
        signed, _ = read_as_reader(study, reader, rng)
        when = start + datetime.timedelta(minutes=15 * i)
        claims = [
            SignedClaim(when, LabelledClaim(f"case-{seed}-{i:05d}", f.code,
                                            _claim_signals(f, study.truth, rng),
                                            signed_states(f, signed)))
            for f in study.draft_findings
        ]  # fmt: skip
        cases.append(claims)
    return cases


def run_learning_curve(
    *, repeats: int = 3, seed: int = 0, cache: Path | None = None,
    fit_sizes: Sequence[int] = FIT_SIZES, test_size: int = TEST_SIZE,
) -> dict[str, Any]:  # fmt: skip
    """ECE on the next ``test_size`` signed cases after fitting on each of ``fit_sizes``."""
    from radloop.lab.monitor_simulation import DEFAULT_CACHE, load_pools
    from radloop.safety.signed_calibration import fit_from_signed
    from radloop.stats import brier_score, expected_calibration_error

    started = time.perf_counter()
    pool = load_pools(("standard",), cache=cache or DEFAULT_CACHE)["standard"]
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in fit_sizes}
    claims_per_case: list[float] = []
    for r in range(repeats):
        stream = _signed_stream(pool, max(fit_sizes) + test_size, seed + r)
        claims_per_case.append(sum(len(c) for c in stream) / len(stream))
        for n in fit_sizes:
            # Every signed case of the window is used (a case whose draft states nothing gives
            # no claim, so the minimum count is the product's business, not the benchmark's).
            fitted = fit_from_signed([c for case in stream[:n] for c in case], min_cases=2)
            test = [c.claim for case in stream[n : n + test_size] for c in case]
            signals = [c.signals for c in test]
            present = np.array([c.present for c in test], dtype=np.float64)
            p = fitted.result.calibrator.presence_probabilities(signals)
            raw = np.array([s.verifier_probability if s.verifier_probability is not None
                            else 0.5 for s in signals])  # fmt: skip
            runs[n].append({
                "ece": expected_calibration_error(p, present),
                "brier": brier_score(p, present),
                "ece_verifier_alone": expected_calibration_error(raw, present),
                "n_test_claims": float(len(test)),
            })  # fmt: skip
    out: dict[str, Any] = {}
    for n, values in runs.items():
        out[f"ece_after_{n}"] = round(statistics.mean(v["ece"] for v in values), 4)
    out["detail"] = {
        str(n): {k: round(statistics.mean(v[k] for v in values), 4) for k in values[0]}
        | {"ece_per_stream": [round(v["ece"], 4) for v in values]}
        for n, values in runs.items()
    }
    out.update(
        repeats=repeats, test_cases=test_size, claims_per_case=round(
            statistics.mean(claims_per_case), 3), source_presence=SOURCE_PRESENCE,
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip
    return out


def _films(data: Path) -> tuple[Any, list[Any], list[Any]]:
    from radloop.evaluate.datasets import open_dataset

    dataset = open_dataset(f"folder:{data}")
    cases = dataset.cases()
    frontal = [c for c in cases if c.attributes.get("view") in ("PA", "AP")]
    # Films outside the declared domain: another modality (CT) or a lateral view.
    other = [c for c in cases if c.attributes.get("view") == "LL"
             or c.attributes.get("modality") not in ("DX", None)]  # fmt: skip
    return dataset, frontal, other


def run_second_opinion_share(
    data: Path, *, limit: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """The random-weight DenseNet-121 as the ``onnx`` verifier and as a second opinion on the
    frontal films of ``data``: the share of claims gated in, and of others' claims kept out."""
    import torch

    from radloop.assist import DraftReport, OutputMode
    from radloop.report import Report, write
    from radloop.safety import TableVerifier, check, load_verifier
    from radloop.safety.verifier_cli import import_torchxrayvision
    from radloop.safety.xrv_densenet import XrvDenseNet

    started = time.perf_counter()
    dataset, frontal, other = _films(data)
    if limit is not None:
        frontal, other = frontal[:limit], other[:limit]
    draft = DraftReport(
        report=Report(_CLAIMS, write(_CLAIMS)), generations=(), prompt="",
        prompt_version="bench", model_id="fixed-draft", latency_s=0.0,
        output_mode=OutputMode.TEXT,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        torch.save(XrvDenseNet().state_dict(), Path(tmp) / "weights.pt")
        summary = import_torchxrayvision(Path(tmp) / "weights.pt", Path(tmp) / "out")
        # Not ReadOnce: PNG films of one folder share a synthetic Study Instance UID.
        onnx = load_verifier("onnx", sidecar=summary["sidecar"])
        silent = TableVerifier({}, name="none")
        counts = {"claims": 0, "checked": 0, "second_opinion": 0, "other_claims": 0,
                  "other_not_checked": 0}  # fmt: skip
        seconds: list[float] = []
        for case in frontal:
            study = dataset.load_study(case)
            t0 = time.perf_counter()
            as_verifier = check(draft, study, onnx)
            seconds.append(time.perf_counter() - t0)
            beside = check(draft, study, silent, second_opinion=onnx)
            claims = [c for c in as_verifier.checks if c.index is not None]
            counts["claims"] += len(claims)
            counts["checked"] += sum(c.checked for c in claims)
            counts["second_opinion"] += sum(
                c.numbers.p_second_opinion is not None for c in beside.checks if c.index is not None
            )
        for case in other:
            checked = check(draft, dataset.load_study(case), onnx)
            claims = [c for c in checked.checks if c.index is not None]
            counts["other_claims"] += len(claims)
            counts["other_not_checked"] += sum(not c.checked for c in claims)
    n = max(counts["claims"], 1)
    return {
        "second_opinion_in_domain_share": round(counts["checked"] / n, 4),
        "second_opinion_filled_share": round(counts["second_opinion"] / n, 4),
        "outside_domain_not_checked_share": round(
            counts["other_not_checked"] / max(counts["other_claims"], 1), 4),
        "frontal_films": len(frontal),
        "other_films": len(other),
        "claims": counts["claims"],
        "onnx_seconds_per_film": round(statistics.median(seconds), 4) if seconds else None,
        "architecture": summary["architecture"],
        "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def _bars(result: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for key, (op, bar) in BARS.items():
        if key in result:
            out[key] = result[key] <= bar if op == "<=" else result[key] >= bar
    return out


@click.command("evidence-calibration")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="A folder of real films in the folder: layout for the second-"
              "opinion part (realcxr-dev); without it that part is skipped.")  # fmt: skip
@click.option("--repeats", type=int, default=3, show_default=True,
              help="Simulated streams of the learning curve (the mean is reported).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the rendered study pools (default: the monitor's cache).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_evidence_calibration(
    data: Path | None, repeats: int, seed: int, cache: Path | None, as_json: bool
) -> None:
    """The calibration learning curve on signed cases and the second opinion's domain gate."""
    result: dict[str, Any] = {"learning_curve": run_learning_curve(repeats=repeats, seed=seed,
                                                                   cache=cache)}  # fmt: skip
    flat = dict(result["learning_curve"])
    if data is not None:
        result["second_opinion"] = run_second_opinion_share(data, seed=seed)
        flat.update(result["second_opinion"])
    result["bars"] = _bars(flat)
    if as_json:
        click.echo(json.dumps(result))
        return
    curve = result["learning_curve"]
    click.echo("ECE on the next 1,000 signed cases after fitting on "
               + ", ".join(f"{n}: {curve[f'ece_after_{n}']:.4f}" for n in FIT_SIZES))  # fmt: skip
    if "second_opinion" in result:
        s = result["second_opinion"]
        click.echo(f"second opinion gated in on {s['second_opinion_in_domain_share']:.1%} of "
                   f"{s['claims']} claims on {s['frontal_films']} frontal films")  # fmt: skip
    click.echo("bars: " + ", ".join(f"{k} {'met' if v else 'MISSED'}"
                                    for k, v in result["bars"].items()))  # fmt: skip
