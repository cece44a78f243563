"""``evaluate(...)``: dataset + model + safety layer → run folder → MetricTable → JSON + HTML.

Also :func:`score_run`, which re-scores a finished run folder without any inference (what
``radloop eval`` does when every case is cached, and what the scoring benchmark times).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.evaluate.errors import RunFolderError

__all__ = [
    "EvalOutcome",
    "default_cache_dir",
    "evaluate",
    "score_run",
]


@dataclass(frozen=True)
class EvalOutcome:
    """Where a run's report went, and its figures."""

    out: Path
    json_path: Path
    html_path: Path
    table: dict[str, Any]


def default_cache_dir() -> Path:
    """Where datasets rendered for an evaluation are kept: ``~/.cache/radloop/eval``."""
    return Path.home() / ".cache" / "radloop" / "eval"


def score_run(
    out: Path,
    *,
    resamples: int = 1000,
    subgroup_resamples: int = 200,
    seed: int = 0,
    min_group: int = 10,
    compare: Path | None = None,
    extra_run: Mapping[str, Any] | None = None,
) -> EvalOutcome:
    """Score a run folder (no inference) and write ``metrics.json`` and ``report.html``."""
    from radloop.evaluate.arrays import build_arrays
    from radloop.evaluate.cost import cost_section
    from radloop.evaluate.report import compare_runs, write_report
    from radloop.evaluate.runner import load_run
    from radloop.evaluate.scoring import ScoringOptions, score_arrays

    settings, cases, predictions = load_run(out)
    codes = settings.get("codes") or sorted({c for case in cases for c in case.labels})
    arrays = build_arrays(cases, predictions, codes)
    table = score_arrays(arrays, ScoringOptions(resamples, subgroup_resamples, seed, min_group))
    table["cost"] = cost_section(predictions)
    model_ids = sorted({p.model for p in predictions if p.error is None})
    table["run"] = {
        **{k: v for k, v in settings.items() if k != "codes"},
        **dict(extra_run or {}),
        "model_id": ", ".join(model_ids),
    }
    comparison = None
    if compare is not None:
        other_path = compare / "metrics.json"
        if not other_path.is_file():
            raise RunFolderError(
                "a run folder with metrics.json to compare with", str(compare), source=compare
            )
        comparison = compare_runs(table, json.loads(other_path.read_text(encoding="utf-8")))
    json_path, html_path = write_report(out, table, comparison)
    return EvalOutcome(out, json_path, html_path, table)


def evaluate(
    model_name: str,
    data: str,
    out: Path,
    *,
    model_options: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    verifier_name: str | None = "reference",
    calibration: Path | None = None,
    ood: str | None = "reference",
    cache_dir: Path | None = None,
    concurrency: int = 1,
    resamples: int = 1000,
    subgroup_resamples: int = 200,
    seed: int = 0,
    compare: Path | None = None,
    progress: Callable[[str, int, int], Callable[[int], None]] | None = None,
    samples: int = 5,
    sample_temperature: float = 0.7,
    ask_back: bool = True,
    second_opinion: Path | None = None,
    ask_back_model: str | None = None,
    ask_back_options: Mapping[str, Any] | None = None,
) -> EvalOutcome:
    """Run ``model_name`` over ``data`` (``KIND:PATH``) into ``out`` and write the report.

    Drafts are sampled ``samples`` more times at ``sample_temperature`` for self-consistency
    where the model can sample (0: off), and ``ask_back`` puts closed questions about each
    claim to the drafting model; the cost of both is in the report's cost section.
    ``second_opinion`` (an ONNX sidecar) adds that classifier's reading of each claim;
    ``ask_back_model`` (with ``ask_back_options``) answers the questions instead of the
    drafting model.

    ``progress(stage, done, total)`` returns a callback advanced per unit of work; stages are
    ``render`` (synthetic studies), ``ood`` (the OOD reference, once) and ``cases``.
    """
    from radloop.evaluate.datasets import open_dataset
    from radloop.evaluate.runner import RunSettings, run_evaluation
    from radloop.models import load_model

    cache = cache_dir or default_cache_dir()
    options = dict(data_options or {})
    if data.lower().startswith("synth:"):
        options.setdefault("cache_dir", cache)
        n = int(options.get("n", 120))
        if progress is not None:
            options["progress"] = progress("render", 0, n)
    dataset = open_dataset(data, **options)
    if not dataset.image_based or model_name == "parser":
        if dataset.image_based or model_name != "parser":
            from radloop.evaluate.errors import DatasetError

            raise DatasetError(
                "--model parser with a report-only dataset (reports:PATH), image models with "
                "image datasets",
                f"--model {model_name} with {data}",
            )
        model: Any = None
        verifier_name, ood = None, None
    else:
        model = load_model(model_name, **dict(model_options or {}))
    verifier = None
    if verifier_name:
        from radloop.safety import load_verifier

        verifier = load_verifier(verifier_name)
    calibrator = None
    if calibration is not None:
        from radloop.safety import Calibrator

        calibrator = Calibrator.load(calibration)
    scorer = None
    if ood and ood != "none" and verifier is not None:
        from radloop.evaluate.ood import reference_ood_scorer
        from radloop.safety import MahalanobisScorer

        if ood == "reference":
            scorer = reference_ood_scorer(verifier)
        else:
            scorer = MahalanobisScorer.from_file(Path(ood))
    settings = RunSettings(
        model=model_name,
        dataset=dataset.name,
        verifier=getattr(verifier, "verifier_id", None),
        calibration=str(calibration) if calibration else None,
        ood=ood if scorer is not None else None,
        extra={
            **{k: str(v) for k, v in (data_options or {}).items()},
            "samples": str(samples),
            "sample_temperature": str(sample_temperature),
            "ask_back": str(ask_back),
            "second_opinion": str(second_opinion),
            "ask_back_model": str(ask_back_model),
        },
    )
    second = None
    if second_opinion is not None and verifier is not None:
        from radloop.safety import load_verifier

        second = load_verifier("onnx", sidecar=str(second_opinion))
    from radloop.assist import Sampling

    sampling = Sampling(samples, sample_temperature)
    cases = dataset.cases()
    run_evaluation(
        dataset,
        model,
        out,
        settings,
        verifier=verifier,
        calibrator=calibrator,
        ood=scorer,
        concurrency=concurrency,
        cases=cases,
        progress=progress("cases", 0, len(cases)) if progress else None,
        sampling=sampling,
        ask_back=ask_back,
        second_opinion=second,
        asker=load_model(ask_back_model, **dict(ask_back_options or {}))
        if ask_back and ask_back_model and model is not None
        else None,
    )
    extra = {
        "model_notice": getattr(model, "notice", None),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "ood_threshold": getattr(scorer, "threshold", None),
    }
    return score_run(
        out,
        resamples=resamples,
        subgroup_resamples=subgroup_resamples,
        seed=seed,
        compare=compare,
        extra_run=extra,
    )
