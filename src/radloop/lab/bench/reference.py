"""``radloop bench reference``: the reference model on synthetic studies it never saw.

Test studies come from ``BENCH_SEED`` and pairs from ``PAIR_SEED`` (training uses
``data.TRAIN_SEED``), all on the ``enhanced`` site profile, which training never used. They are
written as DICOM and read back with ``radloop.study.load_study``, so the benchmark runs the
same path as a user. Protocol in docs/benchmarks.md ("reference"):

- macro AUROC over the inserted finding types (frontal image, study-level truth);
- zone accuracy on true positives: the predicted zone set equals the truth's (zoned findings);
- nodule size MAE (mm, in the patient) on detected nodules; as a check of the caliper alone
  (``radloop.models.reference.caliper``), its MAE when started at each nodule's true centre;
  CTR MAE on every study;
  endotracheal tube tip-to-carina MAE (mm) on studies with a tube;
- VQA accuracy on templated questions answered through ``radloop.assist.ask``: presence of
  each finding type, side of each sided finding, endotracheal tube placement (30–70 mm);
- change-direction accuracy through ``radloop.assist.compare`` on prior/current pairs: each
  truth change of the current study (new, increased, decreased, stable, resolved), scored by
  the change reported for the same finding on the same side, else for the same finding;
- draft latency p50 per study through ``radloop.assist.draft`` (image already loaded).

The figures score the model's reading of every test study. On the few its domain check places
outside the synthetic lab (the OOD reference's 99th-percentile threshold) the product abstains;
those studies and pairs are counted (``abstained_studies``, ``abstained_pairs``) and scored on
the reading the model would have given.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from radloop.lab.bench._synthetic import load_rendered, pair_folders, render
from radloop.models.reference.spec import FINDINGS, ZONED
from radloop.report import Finding
from radloop.stats import auroc, counted_share
from radloop.study import Image

__all__ = [
    "BENCH_PROFILE",
    "BENCH_SEED",
    "PAIR_SEED",
    "bench_reference",
    "format_benchmark",
    "run_benchmark",
]

BENCH_SEED = 770_001
PAIR_SEED = 770_002
BENCH_PROFILE = "enhanced"
BARS = {
    "macro_auroc": (">=", 0.95),
    "zone_accuracy": (">=", 0.90),
    "nodule_size_mae_mm": ("<=", 3.0),
    "ctr_mae": ("<=", 0.03),
    "ett_tip_mae_mm": ("<=", 5.0),
    "vqa_accuracy": (">=", 0.90),
    "change_direction_accuracy": (">=", 0.85),
    "draft_latency_p50_ms": ("<=", 150.0),
}
_SIDED = {"nodule", "mass", "consolidation", "pleural_effusion", "pneumothorax", "rib_fracture"}


class _Cached:
    """A FindingsPredictor that reads each image set once (VQA asks many questions).

    It has no domain check of its own, so through it the tasks score the model's reading of
    every lab study, including the few its domain check places outside (where the product
    abstains; the benchmark counts those apart)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: dict[tuple[str, ...], tuple[Finding, ...]] = {}

    @property
    def model_id(self) -> str:
        return str(self.model.model_id)

    def predict_findings(self, images: Sequence[Image]) -> tuple[Finding, ...]:
        key = tuple(im.sop_instance_uid for im in images)
        if key not in self.cache:
            self.cache[key] = self.model.predict_findings(images)
        return self.cache[key]

    def predict_extents(self, images: Sequence[Image]) -> dict[str, float]:
        return dict(self.model.predict_extents(images))

    def predict_local(self, images: Sequence[Image]) -> dict[str, Any]:
        return dict(self.model.predict_local(images))


def _predicted_direction(changes: Sequence[Any], item: Mapping[str, Any]) -> str | None:
    """The direction predicted for a truth change: of the change reported for the same
    finding on the same side when there is one (a resolved left fracture is not scored by a
    new right one), else of the first change reported for that finding."""
    same = [c for c in changes if c.code == item["code"]]
    sided = [c for c in same if c.side is not None and c.side.value == item.get("side")]
    chosen = (sided or same)[:1]
    return str(chosen[0].direction.value) if chosen else None


def _question_name(code: str) -> str:
    from radloop.vocabulary import finding

    return finding(code).name


def run_benchmark(
    *, n: int = 300, pairs: int = 60, model_dir: Path | None = None, workers: int = 2
) -> dict[str, Any]:
    """Render the test set, run the model, score it; returns the figures as a dict."""
    from tqdm import tqdm

    from radloop.assist import ask, compare, draft
    from radloop.assist.ask import ETT_TIP_RANGE_MM
    from radloop.assist.domain import abstention
    from radloop.models.builtin import ReferenceModel, shipped_model_dir
    from radloop.models.reference.caliper import Caliper
    from radloop.models.reference.predictor import reliable_findings

    model = ReferenceModel(model_dir or shipped_model_dir())
    reportable = reliable_findings(model.sidecar)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="radloop-bench-reference-") as scratch:
        root = Path(scratch)
        with tqdm(total=n + pairs, unit="study", desc="render") as bar:

            def advance(k: int) -> None:
                bar.update(k)

            manifest = render(n, BENCH_SEED, root / "studies", profile=BENCH_PROFILE,
                              workers=workers, progress=advance)  # fmt: skip
            pair_manifest = render(
                pairs, PAIR_SEED, root / "pairs", profile=BENCH_PROFILE, pairs=True,
                workers=workers, progress=advance,
            )  # fmt: skip
        render_seconds = time.perf_counter() - started
        scores: dict[str, list[float]] = {c: [] for c in FINDINGS}
        labels: dict[str, list[bool]] = {c: [] for c in FINDINGS}
        zone_hits: list[bool] = []
        side_hits: list[bool] = []
        nodule_errors: list[float] = []
        nodule_head_errors: list[float] = []
        caliper_errors: list[float] = []
        caliper = Caliper()
        ctr_errors: list[float] = []
        tip_errors: list[float] = []
        vqa: dict[str, list[bool]] = {"presence": [], "side": [], "placement": []}
        latencies: list[float] = []
        cached = _Cached(model)
        abstained = abstained_pairs = 0
        for entry in tqdm(manifest["studies"], unit="study", desc="score"):
            study, truth = load_rendered(root / "studies" / entry["path"])
            t0 = time.perf_counter()
            drafted = draft(study, model)
            latencies.append(time.perf_counter() - t0)
            output = model.read(study.images)
            reading = drafted.report.findings
            if drafted.abstained is not None:  # outside its domain check: score the reading
                abstained += 1
                reading = cached.predict_findings(study.images)
            found = {f.code: f for f in reading if f.is_positive}
            image_truth = truth["images"][0]
            present = {f["code"]: f for f in truth["findings"] if f["presence"] == "present"}
            zones_of = {f["code"]: f.get("zones", []) for f in image_truth["findings"]}
            for code in FINDINGS:
                scores[code].append(output.probabilities[code])
                labels[code].append(code in present)
            for code, item in present.items():
                if code not in found:
                    continue
                if code in ZONED and zones_of.get(code):
                    zone_hits.append({z.value for z in found[code].zones} == set(zones_of[code]))
                if code in _SIDED and item.get("side"):
                    side = found[code].side
                    side_hits.append(side is not None and side.value == item["side"])
            if "nodule" in present and present["nodule"].get("size_mm"):
                size = float(present["nodule"]["size_mm"])
                nodule_head_errors.append(abs(output.regressions["nodule_mm"] - size))
                if "nodule" in found and found["nodule"].size_mm is not None:
                    nodule_errors.append(abs(found["nodule"].size_mm - size))
                caliper_errors += _caliper_error(caliper, study.images[0], image_truth, size)
            if image_truth.get("ctr") is not None:
                ctr_errors.append(abs(output.regressions["ctr"] - float(image_truth["ctr"])))
            ett = present.get("endotracheal_tube")
            if ett and ett.get("tip_distance_mm") is not None:
                tip_errors.append(abs(output.regressions["ett_tip_mm"] - ett["tip_distance_mm"]))
            for code in FINDINGS:
                answer = ask(study, f"Is there evidence of {_question_name(code)}?", cached)
                vqa["presence"].append(answer.answer is (code in present))
            for code, item in present.items():
                if code in _SIDED and item.get("side"):
                    answer = ask(study, f"Which side is the {_question_name(code)} on?", cached)
                    side = answer.finding.side if answer.finding is not None else None
                    vqa["side"].append(side is not None and side.value == item["side"])
            if ett and ett.get("tip_distance_mm") is not None:
                low, high = ETT_TIP_RANGE_MM
                well = low <= float(ett["tip_distance_mm"]) <= high
                answer = ask(study, "Is the endotracheal tube well positioned?", cached)
                vqa["placement"].append(answer.answer is well)
        change_hits: dict[str, list[bool]] = {}
        change_by_code: dict[str, list[bool]] = {}
        by_pair = pair_folders(pair_manifest)
        for pair_id in tqdm(sorted(by_pair), unit="pair", desc="compare"):
            current, truth = load_rendered(root / "pairs" / by_pair[pair_id]["current"])
            prior, _ = load_rendered(root / "pairs" / by_pair[pair_id]["prior"])
            outside = abstention(model, current.images) or abstention(model, prior.images)
            abstained_pairs += outside is not None
            comparison = compare(current, prior, _Cached(model))
            for item in truth["findings"]:
                if item.get("change") is None:
                    continue
                hit = _predicted_direction(comparison.changes, item) == item["change"]
                change_hits.setdefault(item["change"], []).append(hit)
                change_by_code.setdefault(item["code"], []).append(hit)
    aurocs = {c: auroc(labels[c], scores[c]) for c in FINDINGS}
    finite = [v for v in aurocs.values() if not np.isnan(v)]
    all_vqa = [h for hits in vqa.values() for h in hits]
    all_changes = [h for hits in change_hits.values() for h in hits]

    def mean(values: Sequence[float | bool]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    result: dict[str, Any] = {
        "benchmark": "reference",
        "model": model.model_id,
        "profile": BENCH_PROFILE,
        "seeds": {"studies": BENCH_SEED, "pairs": PAIR_SEED},
        "n_studies": n,
        "n_pairs": pairs,
        "macro_auroc": round(float(np.mean(finite)), 4) if finite else None,
        "auroc": {c: (round(v, 4) if not np.isnan(v) else None) for c, v in aurocs.items()},
        "positives": {c: int(sum(labels[c])) for c in FINDINGS},
        "zone_accuracy": mean(zone_hits),
        "zone_true_positives": len(zone_hits),
        "abstained_studies": abstained,
        "abstained_pairs": abstained_pairs,
        "side_accuracy": mean(side_hits),
        "nodule_size_mae_mm": mean(nodule_errors),
        "nodule_size_mae_all_mm": mean(nodule_head_errors),
        "nodules_detected": f"{len(nodule_errors)}/{len(nodule_head_errors)}",
        "nodule_caliper_mae_at_truth_mm": mean(caliper_errors),
        "nodule_caliper_n": len(caliper_errors),
        "ctr_mae": mean(ctr_errors),
        "ett_tip_mae_mm": mean(tip_errors),
        "ett_tubes": len(tip_errors),
        "vqa_accuracy": mean(all_vqa),
        "vqa_by_kind": {k: mean(v) for k, v in vqa.items()},
        "vqa_questions": len(all_vqa),
        "change_direction_accuracy": mean(all_changes),
        "change_by_direction": {k: mean(v) for k, v in sorted(change_hits.items())},
        "change_by_finding": {k: mean(v) for k, v in sorted(change_by_code.items())},
        "change_direction_accuracy_reportable": mean(
            [h for code, hits in change_by_code.items() if code in reportable for h in hits]
        ),
        "changes": len(all_changes),
        "draft_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "draft_latency_p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 1),
        "render_seconds": round(render_seconds, 1),
    }
    result["bars"] = {k: _meets(result.get(k), op, bar) for k, (op, bar) in BARS.items()}
    # The accuracies are shares of a few hundred items (change direction of about 100): their
    # 95 % Wilson intervals say how much another draw of test studies could move them.
    counted = {"zone_accuracy": zone_hits, "vqa_accuracy": all_vqa,
               "change_direction_accuracy": all_changes}  # fmt: skip
    result["intervals"] = {
        k: counted_share(int(sum(hits)), len(hits)) for k, hits in counted.items() if hits
    }
    return result


def _caliper_error(
    caliper: Any, image: Image, image_truth: dict[str, Any], size_mm: float
) -> list[float]:
    """The caliper's error (mm) started at the nodule's true centre on this image, if shown."""
    entry = next((f for f in image_truth["findings"] if f["code"] == "nodule"), None)
    if entry is None or not entry.get("centre_px") or image.pixel_spacing_mm is None:
        return []
    col, row = entry["centre_px"]
    reading = caliper.measure(image.pixels, image.pixel_spacing_mm, (row, col))
    return [] if reading is None else [abs(reading.diameter_mm - size_mm)]


def _meets(value: Any, op: str, bar: float) -> bool | None:
    if value is None:
        return None
    return bool(value >= bar) if op == ">=" else bool(value <= bar)


def format_benchmark(result: dict[str, Any]) -> str:
    """The figures as a table, each with its bar."""
    lines = [f"reference model {result['model']} on {result['n_studies']} {result['profile']} "
             f"studies and {result['n_pairs']} pairs (unseen seeds and profile)"]  # fmt: skip
    for key, (op, bar) in BARS.items():
        verdict = {True: "meets", False: "MISSES", None: "n/a"}[result["bars"][key]]
        share = result.get("intervals", {}).get(key)
        ci = f"   95 % interval {share['ci95'][0]}-{share['ci95'][1]}" if share else ""
        lines.append(f"  {key:28s} {result.get(key)!s:>8}   bar {op} {bar:g}   {verdict}{ci}")
    lines.append("  AUROC per finding: " + ", ".join(
        f"{c} {v}" for c, v in result["auroc"].items()))  # fmt: skip
    lines.append(f"  side accuracy {result['side_accuracy']}; VQA by kind {result['vqa_by_kind']}")
    lines.append(
        f"  nodule caliper at the true centre: MAE {result['nodule_caliper_mae_at_truth_mm']} mm "
        f"(n = {result['nodule_caliper_n']}); regression head on all nodules "
        f"{result['nodule_size_mae_all_mm']} mm"
    )
    lines.append(f"  change by direction {result['change_by_direction']}")
    lines.append(
        f"  change by finding {result['change_by_finding']}; over the types the model reports "
        f"{result['change_direction_accuracy_reportable']}"
    )
    return "\n".join(lines)


@click.command("reference")
@click.option("--n", "n", type=int, default=300, show_default=True, help="Test studies.")
@click.option(
    "--pairs",
    type=int,
    default=60,
    show_default=True,
    help="Prior/current pairs for change direction.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A folder with reference.onnx/.json (default: shipped weights).",
)
@click.option("--workers", type=int, default=2, show_default=True, help="Rendering processes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
def bench_reference(
    n: int, pairs: int, model_dir: Path | None, workers: int, as_json: bool
) -> None:
    """The reference model on synthetic test studies it never saw.

    Seeds never used in training and the held-out enhanced site profile: macro AUROC, zone
    accuracy, nodule size, cardiothoracic ratio and tube-tip MAE, VQA and change-direction
    accuracy, draft latency p50.
    """  # fmt: skip
    result = run_benchmark(n=n, pairs=pairs, model_dir=model_dir, workers=workers)
    click.echo(json.dumps(result) if as_json else format_benchmark(result))
