"""The runner: any model over any dataset, with the safety layer as in production.

Per case: read the study; run the independent verifier once (its output serves the scope
guard's out-of-distribution score and :func:`radloop.safety.check`); decide scope; draft with
the model; check the draft. The result is a :class:`~radloop.evaluate.types.Prediction`
written as ``OUT/cache/<case_id>.json`` (atomically: a temporary name, then a rename), so an
interrupted run resumes where it stopped and a finished one is re-scored without inference.
``OUT/run.json`` names the model, dataset and safety settings; a folder holding another run
is refused rather than mixed. Remote backends run with bounded concurrency (threads).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radloop.evaluate.datasets import Dataset
from radloop.evaluate.errors import RunFolderError
from radloop.evaluate.types import CASES_SCHEMA, Case, Prediction
from radloop.report import Finding, Presence
from radloop.study import Study

__all__ = [
    "RUN_SCHEMA",
    "RunSettings",
    "draft_scores",
    "load_run",
    "run_evaluation",
]

RUN_SCHEMA = "radloop.evaluate/run-v1"


@dataclass(frozen=True)
class RunSettings:
    """What makes two runs comparable: the model, the dataset and the safety settings."""

    model: str
    dataset: str
    verifier: str | None
    calibration: str | None
    ood: str | None
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RUN_SCHEMA,
            "model": self.model,
            "dataset": self.dataset,
            "verifier": self.verifier,
            "calibration": self.calibration,
            "ood": self.ood,
            "extra": dict(self.extra),
        }


def draft_scores(findings: Sequence[Finding]) -> dict[str, float]:
    """Per-code presence scores from a draft, for a model without per-code probabilities.

    A positive claim scores its probability (1.0 when it states none; an uncertain claim
    without one, 0.5); an absent statement scores 1 − its probability (0.0 without one); a
    code the draft does not mention scores 0.0 (see ``arrays.code_scores``).
    """
    out: dict[str, float] = {}
    for found in findings:
        p = found.probability
        if found.presence is Presence.ABSENT:
            score = 1.0 - p if p is not None else 0.0
        elif p is not None:
            score = p
        else:
            score = 0.5 if found.presence is Presence.UNCERTAIN else 1.0
        out[found.code] = max(out.get(found.code, 0.0), score)
    return out


def _scope(study: Study, ood: Any, output: Any) -> tuple[Any, float | None, str | None]:
    """The study's scope decision (:func:`radloop.safety.study_decision`), the OOD score, and
    why there is no decision when the scope guard could not run (a missing model file)."""
    from radloop.errors import RadloopError
    from radloop.safety.scope import assess_study, ood_inputs, study_decision

    embedding = getattr(output, "embedding", None)
    score = ood.score(embedding) if ood is not None and embedding is not None else None
    try:
        decisions = assess_study(study, **ood_inputs(study, output, ood))
    except RadloopError as error:
        return None, score, f"scope guard unavailable: {error}"
    return study_decision(decisions), score, None


PARSER_MODEL = "radloop-parser"


def parse_case(case: Case) -> Prediction:
    """A report-only case: the parser's findings of its text are the prediction."""
    from radloop.report import parse

    started = time.perf_counter()
    findings = tuple(parse(case.text or ""))
    return Prediction(
        case_id=case.case_id,
        model=PARSER_MODEL,
        scores=draft_scores(findings),
        draft=findings,
        latency_s={"model": time.perf_counter() - started},
    )


def predict_case(
    case: Case,
    dataset: Dataset,
    model: Any,
    *,
    verifier: Any | None,
    calibrator: Any | None,
    ood: Any | None,
    sampling: Any | None = None,
    ask_back: bool = False,
    second_opinion: Any | None = None,
    asker: Any | None = None,
) -> Prediction:
    """The prediction record of one case (see the module docstring).

    With ``sampling`` (:class:`radloop.assist.Sampling`) the draft is sampled for
    self-consistency; with ``ask_back`` the drafting model answers closed questions about
    each claim (:func:`radloop.safety.askback.ask_back`); ``second_opinion`` (a verifier)
    reads each claim too. ``asker`` answers the questions instead of the drafting model.
    """
    from radloop.assist import draft
    from radloop.models import VisionLanguageModel
    from radloop.safety import ReadOnce, check
    from radloop.safety.askback import ask_back as ask

    started = time.perf_counter()
    study = dataset.load_study(case)
    timings = {"load": time.perf_counter() - started}
    start = time.perf_counter()
    reading = ReadOnce(verifier) if verifier is not None else None
    vout = reading.verify(study) if reading is not None else None
    timings["verifier"] = time.perf_counter() - start
    decision, ood_score, scope_problem = _scope(study, ood, vout)
    start = time.perf_counter()
    logprobs = bool(getattr(model, "supports_logprobs", False))
    drafted = draft(study, model, sampling=sampling, logprobs=logprobs)
    asked = None
    asker = asker if asker is not None else model
    if ask_back and isinstance(asker, VisionLanguageModel) and drafted.failure is None:
        samples = sampling.samples if sampling is not None else 0
        temperature = sampling.temperature if sampling is not None else 0.7
        asked = ask(drafted, study, asker, samples=samples, temperature=temperature)
        if verifier is None:  # no check to carry the answers: keep their cost
            drafted = replace(drafted, cost={**drafted.cost, "ask_back": asked.cost})
    scores: dict[str, float]
    zone_scores: dict[str, dict[str, float]] = {}
    read = getattr(model, "read", None)
    output = read(study.images) if callable(read) else None
    if output is not None and hasattr(output, "probabilities"):
        unassessed: frozenset[str] = getattr(output, "unassessed", frozenset())
        scores = {c: float(p) for c, p in output.probabilities.items() if c not in unassessed}
        zone_scores = {
            c: {getattr(z, "value", str(z)): float(p) for z, p in by_zone.items()}
            for c, by_zone in getattr(output, "zone_probabilities", {}).items()
        }
    else:
        scores = draft_scores(drafted.findings)
    timings["model"] = time.perf_counter() - start
    checked_findings: tuple[Finding, ...] = ()
    omissions: tuple[Finding, ...] = ()
    invalid: tuple[int, ...] = ()
    domain: dict[str, Any] | None = None
    urgent = None
    if reading is not None:
        start = time.perf_counter()
        checked = check(drafted, study, reading, calibrator, scope=decision, asked=asked,
                        second_opinion=second_opinion)  # fmt: skip
        drafted = checked.draft  # with the ask-back's cost
        timings["safety"] = time.perf_counter() - start + timings["verifier"]
        checked_findings = checked.findings
        omissions = tuple(
            c.finding.with_(probability=c.numbers.p_claim)
            for c in checked.checks
            if c.possible_omission
        )
        urgent = checked.triage.urgent
        invalid = tuple(c.index for c in checked.checks if c.invalid_output and c.index is not None)
        domain = checked.domain.to_dict() if checked.domain is not None else None
    return Prediction(
        case_id=case.case_id,
        model=drafted.model_id,
        scores=scores,
        draft=tuple(drafted.findings),
        checked=checked_findings,
        omissions=omissions,
        zone_scores=zone_scores,
        scope=decision.outcome.value if decision is not None else None,
        scope_reasons=tuple(r.code for r in decision.reasons)
        if decision is not None
        else ((scope_problem,) if scope_problem else ()),
        ood_score=round(ood_score, 4) if ood_score is not None else None,
        ood_flagged=bool(ood_score > ood.threshold)
        if ood is not None and ood_score is not None
        else None,
        urgent=urgent,
        latency_s=timings,
        failure=drafted.failure.message if drafted.failure is not None else None,
        abstained=drafted.abstained,
        invalid_output=invalid,
        domain=domain,
        cost=drafted.cost_dict() if drafted.cost else {},
    )


def _write_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _check_folder(out: Path, settings: RunSettings) -> None:
    run_file = out / "run.json"
    if run_file.is_file():
        held = json.loads(run_file.read_text(encoding="utf-8"))
        for key in ("model", "dataset", "verifier", "calibration"):
            if held.get(key) != settings.to_dict()[key]:
                raise RunFolderError(
                    f"an empty folder or one holding the same run ({key} {held.get(key)!r})",
                    f"{key} {settings.to_dict()[key]!r}",
                    source=out,
                    fix="Give another --out, or remove the folder to start over.",
                )
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache").mkdir(exist_ok=True)
    _write_atomic(run_file, settings.to_dict())


def _safe_name(case_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in case_id)


def run_evaluation(
    dataset: Dataset,
    model: Any,
    out: Path,
    settings: RunSettings,
    *,
    verifier: Any | None = None,
    calibrator: Any | None = None,
    ood: Any | None = None,
    concurrency: int = 1,
    progress: Callable[[int], None] | None = None,
    cases: Sequence[Case] | None = None,
    sampling: Any | None = None,
    ask_back: bool = False,
    second_opinion: Any | None = None,
    asker: Any | None = None,
) -> tuple[list[Case], list[Prediction]]:
    """Run every case not cached yet; return every case and its prediction, in order.

    A case whose inference raises a :class:`radloop.errors.RadloopError` (an unreadable
    image) gets a prediction with ``error`` set, so one bad file does not stop a run; the
    report counts these.
    """
    from radloop.errors import RadloopError

    cases = list(cases if cases is not None else dataset.cases())
    names = [_safe_name(c.case_id) for c in cases]
    if len(set(names)) < len(names):
        from collections import Counter

        from radloop.evaluate.errors import DatasetError

        twice = sorted(n for n, k in Counter(names).items() if k > 1)[:3]
        raise DatasetError(
            "a unique id per case", f"ids used twice: {', '.join(twice)}", source=dataset.name
        )
    _check_folder(out, settings)
    _write_atomic(
        out / "cases.json",
        {
            "schema": CASES_SCHEMA,
            "dataset": dataset.name,
            "description": dataset.description,
            "codes": list(dataset.codes),
            "cases": [c.to_dict() for c in cases],
        },
    )
    cache = out / "cache"

    def path_of(case: Case) -> Path:
        return cache / f"{_safe_name(case.case_id)}.json"

    def done(case: Case) -> bool:
        # A cached failure (an unreadable file, a server down) is tried again on resume.
        path = path_of(case)
        return path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("error") is None

    todo = [c for c in cases if not done(c)]
    if progress and len(todo) < len(cases):
        progress(len(cases) - len(todo))

    def work(case: Case) -> None:
        try:
            if not dataset.image_based:
                prediction = parse_case(case)
            else:
                prediction = predict_case(
                    case, dataset, model, verifier=verifier, calibrator=calibrator, ood=ood,
                    sampling=sampling, ask_back=ask_back, second_opinion=second_opinion,
                    asker=asker,
                )  # fmt: skip
        except RadloopError as error:
            prediction = Prediction(case.case_id, settings.model, {}, (), error=str(error))
        _write_atomic(path_of(case), prediction.to_dict())
        if progress:
            progress(1)

    if concurrency <= 1:
        for case in todo:
            work(case)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for _ in pool.map(work, todo):
                pass
    predictions = [
        Prediction.from_dict(json.loads(path_of(c).read_text(encoding="utf-8"))) for c in cases
    ]
    return cases, predictions


def load_run(out: Path) -> tuple[dict[str, Any], list[Case], list[Prediction]]:
    """A finished run folder read back: its settings, cases and predictions."""
    run_file, cases_file = out / "run.json", out / "cases.json"
    if not run_file.is_file() or not cases_file.is_file():
        raise RunFolderError("a run folder with run.json and cases.json", str(out), source=out)
    settings = json.loads(run_file.read_text(encoding="utf-8"))
    data = json.loads(cases_file.read_text(encoding="utf-8"))
    cases = [Case.from_dict(c) for c in data["cases"]]
    predictions = []
    for case in cases:
        path = out / "cache" / f"{_safe_name(case.case_id)}.json"
        if not path.is_file():
            raise RunFolderError(
                f"a prediction for case {case.case_id}",
                "none (run unfinished)",
                source=out,
                fix="Run `radloop eval` again to resume.",
            )
        predictions.append(Prediction.from_dict(json.loads(path.read_text(encoding="utf-8"))))
    settings["description"] = data.get("description")
    settings["codes"] = data.get("codes")
    return settings, cases, predictions
