"""``radloop bench safety``: the error-injection challenge for the safety layer.

Synthetic test studies (seeds never used in training; the held-out ``enhanced`` profile and the
training profile ``standard``) get a perfect draft made from their truth findings plus the
pertinent negatives a radiologist writes (no pneumothorax, no effusion, no consolidation when
absent); exactly one error of a known kind (:mod:`radloop.lab.challenge`) is injected per
draft, so every claim's correctness is known. Wrong change direction is injected on
prior/current pairs. Each draft goes through :func:`radloop.safety.check` with the
``reference`` verifier and a calibrator fitted on a separate calibration split (written in the
labelled format ``radloop calibrate`` reads). Protocol in docs/benchmarks.md ("safety"):

- recall of injected errors per kind: caught when the affected claim's verdict is not
  ``supported`` (an omission: when the omitted finding comes back as a possible omission). A
  claim of a finding type the verifier does not assess (the reference model suppresses
  nodule, endotracheal tube, central catheter and rib fracture) is ``unverifiable`` and not
  caught; recall is given over all injections and over verifiable ones, and ``recall_flagged``
  counts only ``unsupported``/``contradicted`` (what the reviewer is shown as a flag);
- share of correct claims flagged (unsupported or contradicted);
- ECE (15 equal-width bins) and Brier of the presence probability before (the verifier's raw
  probability) and after calibration, on test claims the verifier assesses;
- scope-guard decisions on the test studies;
- overhead: (verify + calibrate + write + triage) / reference inference, summed over drafts;
- optionally the same on the reference model's own drafts (correct = the finding type is in
  the truth on the stated side).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from radloop.lab.bench._synthetic import load_rendered, pair_folders, render
from radloop.lab.challenge import (
    Challenge,
    ErrorKind,
    applicable_kinds,
    challenge_draft,
    inject,
    perfect_draft,
)
from radloop.report import Finding, Verdict
from radloop.vocabulary import ancestors

__all__ = [
    "BARS",
    "SAFETY_PROFILES",
    "SAFETY_SEED",
    "SafetyBenchmark",
    "bench_safety",
    "format_safety_benchmark",
    "run_safety_benchmark",
]

SAFETY_SEED = 880_001
SAFETY_PROFILES = ("enhanced", "standard")  # held out, and one training profile
BARS = {
    "recall_per_kind": (">=", 0.90),
    "correct_flagged_share": ("<=", 0.05),
    "ece_after": ("<=", 0.03),
    "overhead": ("<=", 0.20),
}
_SINGLE_KINDS: list[ErrorKind] = [k for k in ErrorKind if k is not ErrorKind.WRONG_CHANGE]


@dataclass
class _Claims:
    """Per-claim records gathered over drafts."""

    present: list[bool] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    calibrated: list[float] = field(default_factory=list)


@dataclass
class SafetyBenchmark:
    """The figures of ``radloop bench safety``; ``to_dict()`` is its JSON form."""

    verifier: str
    seeds: dict[str, int]
    profiles: tuple[str, ...]
    n_studies: int
    n_pairs: int
    n_calibration_studies: int
    injected: dict[str, int]
    unverifiable: dict[str, int]
    recall: dict[str, float | None]
    recall_verifiable: dict[str, float | None]
    recall_flagged: dict[str, float | None]
    correct_claims: int
    correct_flagged_share: float | None
    correct_flagged_by_claim: dict[str, float | None]
    correct_flagged_reasons: dict[str, int]
    correct_unverifiable_share: float | None
    spurious_omissions_per_study: float | None
    n_claims_calibrated: int
    calibration_method: str
    omission_thresholds: dict[str, float]
    ece_before: float | None
    ece_after: float | None
    brier_before: float | None
    brier_after: float | None
    scope: dict[str, int]
    scope_reasons: dict[str, int]
    overhead: float | None
    timings_s: dict[str, float]
    calibration_data: str | None
    own_drafts: dict[str, Any] | None
    misses: list[dict[str, Any]]
    in_domain: dict[str, Any] = field(default_factory=dict)
    bars: dict[str, bool | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["benchmark"] = "safety"
        out["profiles"] = list(self.profiles)
        return out


def _rate(hits: Sequence[bool]) -> float | None:
    return round(float(np.mean(hits)), 4) if hits else None


def _covers(code: str, other: str) -> bool:
    return code == other or code in ancestors(other) or other in ancestors(code)


def _assessed(code: str, assessed: frozenset[str]) -> bool:
    return any(c in assessed for c in (code, *ancestors(code)))


def _choose(
    findings: Sequence[Finding], counts: Counter[ErrorKind], kinds: Sequence[ErrorKind], rng: Any
) -> ErrorKind | None:
    """The applicable kind injected least so far (ties drawn), so the kinds stay balanced."""
    options = [k for k in applicable_kinds(findings) if k in kinds]
    if not options:
        return None
    fewest = min(counts[k] for k in options)
    tied = [k for k in options if counts[k] == fewest]
    return tied[int(rng.integers(len(tied)))]


def _label(found: Finding, correct: bool) -> bool:
    """Whether the claimed finding is truly present (as claimed): the calibration label."""
    return correct if found.is_positive else not correct


def run_safety_benchmark(
    *,
    n: int = 150,
    seed: int = SAFETY_SEED,
    pairs: int | None = None,
    n_calibration: int | None = None,
    workers: int = 1,
    calibration_data: Path | None = None,
    own_drafts: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> SafetyBenchmark:
    """Render the studies, inject, check, score; see the module docstring.

    ``n`` test studies split over :data:`SAFETY_PROFILES`; ``pairs`` prior/current pairs
    (default n // 5, at least 2) for wrong change direction; ``n_calibration`` calibration
    studies (default n, at least 8: ECE over 15 bins needs hundreds of claims) from other
    seeds, written to ``calibration_data`` (a ``.csv``) when given.
    """
    from radloop.safety import check, fit_calibrator, load_verifier
    from radloop.safety.calibration import (
        LabelledClaim,
        read_labelled_claims,
        write_labelled_claims,
    )
    from radloop.safety.pipeline import claim_signals
    from radloop.safety.reliability import brier_score, expected_calibration_error
    from radloop.safety.scope import assess_study, study_decision
    from radloop.safety.verify import Thresholds

    n_pairs = pairs if pairs is not None else max(2, n // 5)
    n_cal = n_calibration if n_calibration is not None else max(8, n)
    seeds = {"studies": seed, "pairs": seed + 1, "calibration": seed + 2}
    started = time.perf_counter()
    verifier = load_verifier("reference")
    rng = np.random.default_rng([seed, 5])
    with tempfile.TemporaryDirectory(prefix="radloop-bench-safety-") as scratch:
        root = Path(scratch)

        def advance(stage: str) -> Callable[[int], None] | None:
            if progress is None:
                return None
            report = progress
            return lambda k: report(stage, k)

        def render_split(name: str, count: int, split_seed: int) -> list[Path]:
            folders: list[Path] = []
            halves = ((count + 1) // 2, count // 2)
            for offset, (profile, k) in enumerate(zip(SAFETY_PROFILES, halves, strict=True)):
                if k == 0:
                    continue
                out = root / f"{name}-{profile}"
                manifest = render(k, split_seed + 10 * offset, out, profile=profile,
                                  workers=workers, progress=advance("render"))  # fmt: skip
                folders.extend(out / e["path"] for e in manifest["studies"])
            return folders

        test_folders = render_split("test", n, seeds["studies"])
        cal_folders = render_split("calibration", n_cal, seeds["calibration"])
        pair_manifest = render(n_pairs, seeds["pairs"], root / "pairs", profile=SAFETY_PROFILES[0],
                               pairs=True, workers=workers, progress=advance("render"))  # fmt: skip
        pair_current = [
            (root / "pairs" / p["current"], root / "pairs" / p["prior"])
            for _, p in sorted(pair_folders(pair_manifest).items())
        ]
        render_seconds = time.perf_counter() - started

        assessed: frozenset[str] | None = None

        def challenge_of(
            findings: tuple[Finding, ...], counts: Counter[ErrorKind], kinds: Sequence[ErrorKind],
            key: Sequence[int],
        ) -> Challenge | None:  # fmt: skip
            kind = _choose(findings, counts, kinds, rng)
            if kind is None:
                return None
            counts[kind] += 1
            return inject(findings, kind, list(key))

        # --- calibration split: claims with their verifier probability and label ------------
        cal_claims: list[LabelledClaim] = []
        cal_counts: Counter[ErrorKind] = Counter()
        for i, folder in enumerate(cal_folders):
            study, truth = load_rendered(folder)
            challenge = challenge_of(perfect_draft(truth), cal_counts, _SINGLE_KINDS, [seed, 2, i])
            if challenge is None:
                continue
            checked = check(
                challenge_draft(challenge.findings, study, "challenge"), study, verifier
            )
            for claim in checked.checks:
                # A claim the verifier does not assess has no signal to calibrate.
                if claim.index is None or claim.numbers.p_claim is None:
                    continue
                cal_claims.append(
                    LabelledClaim(
                        study_id=study.study_instance_uid,
                        code=claim.finding.code,
                        signals=claim_signals(claim),
                        present=_label(claim.finding, challenge.correct(claim.index)),
                    )
                )
            if progress:
                progress("calibration", 1)
        cal_path = calibration_data or root / "calibration.csv"
        write_labelled_claims(cal_path, cal_claims)
        fitted = fit_calibrator(read_labelled_claims(cal_path), seed=seed)
        calibrator = fitted.calibrator

        # --- test split and pairs --------------------------------------------------------------
        counts: Counter[ErrorKind] = Counter()
        injected: Counter[str] = Counter()
        unverifiable: Counter[str] = Counter()
        caught: dict[str, list[bool]] = {k.value: [] for k in ErrorKind}
        caught_verifiable: dict[str, list[bool]] = {k.value: [] for k in ErrorKind}
        flagged_hits: dict[str, list[bool]] = {k.value: [] for k in ErrorKind}
        correct_flagged: dict[str, list[bool]] = {"positive": [], "negative": []}
        correct_unverifiable: list[bool] = []
        flag_reasons: Counter[str] = Counter()
        spurious: list[int] = []
        claims = _Claims()
        scope_counts: Counter[str] = Counter()
        scope_reasons: Counter[str] = Counter()
        stage_time: defaultdict[str, float] = defaultdict(float)
        misses: list[dict[str, Any]] = []
        domains: list[bool] = []
        out_of_domain: Counter[str] = Counter()
        jobs: list[tuple[Path, Sequence[ErrorKind], Path | None]] = [
            (f, _SINGLE_KINDS, None) for f in test_folders
        ]
        # A current study is checked with its prior, as in production after a comparison.
        jobs += [(f, [ErrorKind.WRONG_CHANGE], prior) for f, prior in pair_current]
        for i, (folder, kinds, prior_folder) in enumerate(jobs):
            study, truth = load_rendered(folder)
            prior_study = load_rendered(prior_folder)[0] if prior_folder is not None else None
            t0 = time.perf_counter()
            decisions = assess_study(study)
            stage_time["scope"] += time.perf_counter() - t0
            scope = study_decision(decisions)
            if scope is not None:
                scope_counts[scope.outcome.value] += 1
                scope_reasons.update(r.code for r in scope.reasons)
            challenge = challenge_of(perfect_draft(truth), counts, kinds, [seed, 1, i])
            if challenge is None:
                continue
            if assessed is None:
                assessed = frozenset(verifier.verify(study).presence)
            draft = challenge_draft(challenge.findings, study, "challenge")
            checked = check(draft, study, verifier, calibrator, scope=scope, prior=prior_study)
            for stage, seconds in checked.timings_s.items():
                stage_time[stage] += seconds
            # The gate must not switch the verifier off on the lab's own images.
            in_domain = checked.domain is not None and checked.domain.in_domain
            domains.append(in_domain)
            error = challenge.error
            kind = error.kind.value
            injected[kind] += 1
            # Verifiable: a finding type the verifier assesses, on a study inside its domain
            # (outside it the verifier may not speak; those studies are counted apart).
            verifiable = _assessed(error.finding.code, assessed) and in_domain
            if not in_domain:
                out_of_domain[kind] += 1
            if error.index is None:
                omitted = [
                    c for c in checked.checks
                    if c.index is None and c.possible_omission
                    and _covers(c.finding.code, error.finding.code)
                ]  # fmt: skip
                hit = flag = bool(omitted)
            else:
                verdict = checked.checks[error.index].verdict
                # A claim no valid evidence checked is not caught.
                hit = verifiable and verdict not in (Verdict.SUPPORTED, Verdict.NOT_CHECKED)
                flag = checked.checks[error.index].flagged
            if not verifiable:
                unverifiable[kind] += 1
            else:
                caught_verifiable[kind].append(hit)
            caught[kind].append(hit)
            flagged_hits[kind].append(flag)
            if verifiable and not hit and len(misses) < 40:
                miss: dict[str, Any] = {"study": folder.name, "error": error.to_dict()}
                if error.index is not None:
                    miss["check"] = checked.checks[error.index].to_dict()
                else:  # what the verifier gave the omitted finding, against its threshold
                    presence = verifier.verify(study).presence
                    code = next(c for c in presence if _covers(c, error.finding.code))
                    miss["verifier_probability"] = round(presence[code], 4)
                    th = Thresholds().with_omissions(calibrator.omission_thresholds)
                    miss["omission_threshold"] = round(th.omission_for(code), 4)
                misses.append(miss)
            n_spurious = 0
            for claim in checked.checks:
                if claim.index is None:
                    if not (
                        error.index is None and _covers(claim.finding.code, error.finding.code)
                    ):
                        n_spurious += 1
                    continue
                correct = challenge.correct(claim.index)
                if correct:
                    group = "positive" if claim.finding.is_positive else "negative"
                    correct_flagged[group].append(claim.flagged)
                    if claim.flagged:  # why a correct claim was flagged, in words
                        stated = "" if claim.finding.is_positive else "no "
                        why = claim.reasons[0].split(":")[0] if claim.reasons else "?"
                        flag_reasons[f"{stated}{claim.finding.code}: {why}"] += 1
                    correct_unverifiable.append(claim.verdict is Verdict.UNVERIFIABLE)
                p = claim.numbers.p_claim
                if p is not None:
                    present = _label(claim.finding, correct)
                    signals = claim_signals(claim)
                    claims.present.append(present)
                    claims.raw.append(p)
                    claims.calibrated.append(calibrator.presence_probability(signals))
            spurious.append(n_spurious)
            if progress:
                progress("check", 1)
        own = None
        if own_drafts:
            own = _own_drafts(test_folders, verifier, calibrator, assessed or frozenset())

    def ece(p: list[float]) -> float | None:
        if not p:
            return None
        return round(expected_calibration_error(p, [int(v) for v in claims.present]), 4)

    def brier(p: list[float]) -> float | None:
        if not p:
            return None
        return round(brier_score(p, [int(v) for v in claims.present]), 4)

    all_correct = correct_flagged["positive"] + correct_flagged["negative"]
    overhead_s = sum(stage_time[s] for s in ("verify", "calibrate", "write", "triage"))
    inference_s = stage_time["verifier_inference"]
    result = SafetyBenchmark(
        verifier=verifier.verifier_id,
        seeds=seeds,
        profiles=SAFETY_PROFILES,
        n_studies=len(test_folders),
        n_pairs=len(pair_current),
        n_calibration_studies=len(cal_folders),
        injected={k.value: injected[k.value] for k in ErrorKind},
        unverifiable={k.value: unverifiable[k.value] for k in ErrorKind},
        recall={k: _rate(v) for k, v in caught.items()},
        recall_verifiable={k: _rate(v) for k, v in caught_verifiable.items()},
        recall_flagged={k: _rate(v) for k, v in flagged_hits.items()},
        correct_claims=len(all_correct),
        correct_flagged_share=_rate(all_correct),
        correct_flagged_by_claim={k: _rate(v) for k, v in correct_flagged.items()},
        correct_flagged_reasons=dict(flag_reasons.most_common()),
        correct_unverifiable_share=_rate(correct_unverifiable),
        spurious_omissions_per_study=(round(float(np.mean(spurious)), 4) if spurious else None),
        n_claims_calibrated=len(claims.present),
        calibration_method=calibrator.method,
        omission_thresholds=dict(calibrator.omission_thresholds),
        ece_before=ece(claims.raw),
        ece_after=ece(claims.calibrated),
        brier_before=brier(claims.raw),
        brier_after=brier(claims.calibrated),
        scope=dict(scope_counts),
        scope_reasons=dict(scope_reasons),
        overhead=round(overhead_s / inference_s, 4) if inference_s > 0 else None,
        timings_s={
            "render": round(render_seconds, 2),
            **{k: round(v, 4) for k, v in sorted(stage_time.items())},
            "total": round(time.perf_counter() - started, 2),
        },
        calibration_data=str(calibration_data) if calibration_data is not None else None,
        own_drafts=own,
        misses=misses,
        in_domain={
            "studies": len(domains),
            "in_domain": sum(domains),
            "share": _rate(domains),
            "errors_out_of_domain": {k.value: out_of_domain[k.value] for k in ErrorKind},
        },
    )
    result.bars = _bars(result)
    return result


def _bars(result: SafetyBenchmark) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for kind, value in result.recall_verifiable.items():
        out[f"recall_verifiable.{kind}"] = None if value is None else value >= 0.95
    for kind, value in result.recall.items():
        out[f"recall.{kind}"] = None if value is None else value >= 0.90
    share = result.correct_flagged_share
    out["correct_flagged_share"] = None if share is None else share <= 0.04
    out["ece_after"] = None if result.ece_after is None else result.ece_after <= 0.02
    in_domain = result.in_domain.get("share")
    out["in_domain_share"] = None if in_domain is None else in_domain >= 0.95
    out["overhead"] = None if result.overhead is None else result.overhead <= 0.20
    return out


def _own_drafts(
    folders: Sequence[Path], verifier: Any, calibrator: Any, assessed: frozenset[str]
) -> dict[str, Any]:
    """The reference model's own drafts of the test studies through the safety layer.

    A positive claim is correct when its finding type is in the truth and, if both state a
    side, on the same side. A true finding the draft leaves out counts as caught when it comes
    back as a possible omission.
    """
    from radloop.assist import draft
    from radloop.lab.synth.truth import truth_findings
    from radloop.models.builtin import load_reference_model
    from radloop.safety import check
    from radloop.safety.pipeline import claim_signals
    from radloop.safety.reliability import brier_score, expected_calibration_error

    model = load_reference_model()
    correct_flags: list[bool] = []
    wrong_flags: list[bool] = []
    omitted_caught: list[bool] = []
    labels: list[int] = []
    raw: list[float] = []
    calibrated: list[float] = []
    model_s = 0.0
    safety_s = 0.0
    for folder in folders:
        study, truth = load_rendered(folder)
        truth_found = truth_findings(truth)
        t0 = time.perf_counter()
        drafted = draft(study, model)
        model_s += time.perf_counter() - t0
        checked = check(drafted, study, verifier, calibrator)
        safety_s += sum(checked.timings_s[s] for s in ("verify", "calibrate", "write", "triage"))
        for claim in checked.checks:
            if claim.index is None:
                continue
            f = claim.finding
            same = [t for t in truth_found if _covers(t.code, f.code)]
            ok = any(t.side is None or f.side is None or t.side is f.side for t in same)
            ok = ok if f.is_positive else not same
            (correct_flags if ok else wrong_flags).append(claim.flagged)
            if claim.numbers.p_claim is not None:
                signals = claim_signals(claim)
                labels.append(int(_label(f, ok)))
                raw.append(claim.numbers.p_claim)
                calibrated.append(calibrator.presence_probability(signals))
        mentioned = {f.code for f in drafted.findings}
        omission_codes = {c.finding.code for c in checked.checks if c.possible_omission}
        for t in truth_found:
            if not any(_covers(t.code, m) for m in mentioned) and _assessed(t.code, assessed):
                omitted_caught.append(any(_covers(t.code, c) for c in omission_codes))
    return {
        "n_studies": len(folders),
        "correct_claims": len(correct_flags),
        "correct_flagged_share": _rate(correct_flags),
        "wrong_claims": len(wrong_flags),
        "wrong_flagged_share": _rate(wrong_flags),
        "omitted_assessed_findings": len(omitted_caught),
        "omitted_flagged_share": _rate(omitted_caught),
        "ece_before": round(expected_calibration_error(raw, labels), 4) if raw else None,
        "ece_after": round(expected_calibration_error(calibrated, labels), 4) if raw else None,
        "brier_before": round(brier_score(raw, labels), 4) if raw else None,
        "brier_after": round(brier_score(calibrated, labels), 4) if raw else None,
        "overhead": round(safety_s / model_s, 4) if model_s > 0 else None,
    }


def format_safety_benchmark(result: SafetyBenchmark) -> str:
    """The figures as a table, each with its bar."""
    verdict = {True: "meets", False: "MISSES", None: "n/a"}
    lines = [
        f"safety layer ({result.verifier}) on {result.n_studies} studies "
        f"({', '.join(result.profiles)}), {result.n_pairs} pairs; calibrated "
        f"({result.calibration_method}) on {result.n_calibration_studies} other studies",
        f"  {'error kind':18s} {'injected':>8s} {'unverif.':>8s} {'recall':>7s} "
        f"{'verifiable':>10s} {'flagged':>8s}   bar >= 0.95 (verifiable)",
    ]
    for kind in ErrorKind:
        k = kind.value
        lines.append(
            f"  {k:18s} {result.injected[k]:8d} {result.unverifiable[k]:8d} "
            f"{result.recall[k]!s:>7s} {result.recall_verifiable[k]!s:>10s} "
            f"{result.recall_flagged[k]!s:>8s}   {verdict[result.bars[f'recall_verifiable.{k}']]}"
        )
    lines += [
        f"  correct claims flagged  {result.correct_flagged_share} of {result.correct_claims} "
        f"{result.correct_flagged_by_claim}   bar <= 0.04   "
        f"{verdict[result.bars['correct_flagged_share']]}",
        f"  correct claims unverifiable {result.correct_unverifiable_share}; spurious "
        f"omission flags per study {result.spurious_omissions_per_study}",
        f"  ECE {result.ece_before} -> {result.ece_after}   bar <= 0.02   "
        f"{verdict[result.bars['ece_after']]}; Brier {result.brier_before} -> "
        f"{result.brier_after} ({result.n_claims_calibrated} assessed claims)",
        f"  overhead {result.overhead}   bar <= 0.20   {verdict[result.bars['overhead']]}",
        f"  verifier in its domain on {result.in_domain.get('in_domain')} of "
        f"{result.in_domain.get('studies')} studies (share {result.in_domain.get('share')})   "
        f"bar >= 0.95   {verdict[result.bars['in_domain_share']]}",
        f"  scope guard {result.scope}, reasons {result.scope_reasons}",
        f"  timings {result.timings_s}",
    ]
    if result.own_drafts is not None:
        lines.append(f"  reference model's own drafts {result.own_drafts}")
    return "\n".join(lines)


@click.command("safety")
@click.option("--n", "n", type=int, default=150, show_default=True, help="Test studies.")
@click.option(
    "--seed",
    type=int,
    default=SAFETY_SEED,
    show_default=True,
    help="Seed of the test studies (pairs: seed + 1, calibration: seed + 2).",
)
@click.option("--pairs", type=int, default=None, help="Prior/current pairs (default n // 5).")
@click.option("--workers", type=int, default=1, show_default=True, help="Rendering processes.")
@click.option(
    "--calibration-data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the calibration split here (.csv, as `radloop calibrate --data` reads).",
)
@click.option("--no-own-drafts", is_flag=True, help="Skip the reference model's own drafts.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
def bench_safety(
    n: int,
    seed: int,
    pairs: int | None,
    workers: int,
    calibration_data: Path | None,
    no_own_drafts: bool,
    as_json: bool,
) -> None:
    """The error-injection challenge for the safety layer.

    Perfect drafts of synthetic test studies with one injected error each (false finding,
    wrong side, wrong zone, inflated size, false negation, omitted critical finding, wrong
    change direction) through the safety layer: recall per error kind, share of correct
    claims flagged, ECE and Brier before and after calibration, scope decisions, overhead.
    """  # fmt: skip
    result = run_safety_benchmark(
        n=n, seed=seed, pairs=pairs, workers=workers, calibration_data=calibration_data,
        own_drafts=not no_own_drafts,
    )  # fmt: skip
    click.echo(json.dumps(result.to_dict()) if as_json else format_safety_benchmark(result))
