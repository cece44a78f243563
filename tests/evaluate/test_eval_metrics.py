"""Every figure of the scorers recomputed independently from the records, to within 1e-6.

The reference computations below read the Case and Prediction records directly with plain
loops, scikit-learn (roc_auc_score, brier_score_loss) and Fairlearn, never the evaluate
module's arrays; intervals are recomputed by redrawing the documented resamples
(``default_rng(seed).integers(0, n, size=(B, n))``) and scoring each one from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from radloop.evaluate.arrays import build_arrays
from radloop.evaluate.scoring import ScoringOptions, score_arrays
from radloop.evaluate.simulate import PREVALENCE, simulate_run
from radloop.evaluate.types import Case, Prediction
from radloop.vocabulary import Zone, ancestors

CODES = tuple(PREVALENCE)
TOL = 1e-6
B = 40
SUB = 15
SEED = 11


@pytest.fixture(scope="module")
def run() -> tuple[list[Case], list[Prediction], dict[str, Any]]:
    cases, predictions = simulate_run(400, seed=3)
    table = score_arrays(
        build_arrays(cases, predictions, CODES),
        ScoringOptions(resamples=B, subgroup_resamples=SUB, seed=SEED, min_group=10),
    )
    return cases, predictions, table


# --- the reference: plain loops over the records --------------------------------------------


def counts(code: str, target: str) -> bool:
    return code == target or target in ancestors(code)


def positives(p: Prediction) -> list[Any]:
    return [f for f in p.draft if f.is_positive]


def claimed(p: Prediction, code: str, safe: bool) -> bool:
    if not safe:
        return any(counts(f.code, code) for f in positives(p))
    kept = any(
        counts(f.code, code) and f.verdict not in ("unsupported", "contradicted")
        for f in p.checked
        if f.is_positive
    )
    return kept or any(counts(f.code, code) for f in p.omissions)


def score(p: Prediction, code: str, safe: bool) -> float:
    value = max([v for c, v in p.scores.items() if counts(c, code)], default=0.0)
    if safe:
        probs = [
            f.probability
            for f in p.checked
            if f.is_positive and counts(f.code, code) and f.probability is not None
        ]
        if probs:
            value = max(probs)
    return value


def auroc(cases: Sequence[Case], preds: Sequence[Prediction], code: str, safe: bool) -> float:
    y = [c.labels[code] for c in cases]
    s = [score(p, code, safe) for p in preds]
    if len(set(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, s))


def confusion(
    cases: Sequence[Case], preds: Sequence[Prediction], code: str | None, safe: bool
) -> tuple[int, int, int, int]:
    tp = fn = fp = tn = 0
    for c, p in zip(cases, preds, strict=True):
        for k in [code] if code else CODES:
            said = claimed(p, k, safe)
            if c.labels[k] == 1:
                tp, fn = tp + said, fn + (not said)
            else:
                fp, tn = fp + said, tn + (not said)
    return tp, fn, fp, tn


def div(a: float, b: float) -> float:
    return a / b if b else math.nan


def false_findings(c: Case, p: Prediction, safe: bool) -> tuple[int, int]:
    """(false-finding claims, assessable claims) of one report."""
    false = total = 0
    verdicts = [f.verdict for f in p.checked if f.is_positive] or [None] * len(positives(p))
    for claim, verdict in zip(positives(p), verdicts, strict=False):
        target = next(k for k in CODES if counts(claim.code, k))
        total += 1
        if c.labels[target] == 0 and not (safe and verdict in ("unsupported", "contradicted")):
            false += 1
    return false, total


def critical(c: Case) -> list[Any]:
    out = []
    for f in c.findings:
        if (
            f.code == "pneumothorax"
            or (
                f.code == "pleural_effusion"
                and f.severity is not None
                and f.severity.value == "large"
            )
            or (
                f.code == "endotracheal_tube"
                and f.tip_distance_mm is not None
                and not 30 <= f.tip_distance_mm <= 70
            )
        ):
            out.append(f)
    return out


def ece(pairs: list[tuple[float, float]]) -> float:
    total = 0.0
    for b in range(15):
        members = [(p, y) for p, y in pairs if min(int(p * 15), 14) == b]
        if members:
            conf = sum(p for p, _ in members) / len(members)
            acc = sum(y for _, y in members) / len(members)
            total += len(members) / len(pairs) * abs(acc - conf)
    return total


def summary(cases: Sequence[Case], preds: Sequence[Prediction], safe: bool) -> dict[str, float]:
    if safe:
        kept = [(c, p) for c, p in zip(cases, preds, strict=True) if p.scope != "refused"]
        cases, preds = [c for c, _ in kept], [p for _, p in kept]
    tp, fn, fp, tn = confusion(cases, preds, None, safe)
    aurocs = [auroc(cases, preds, k, safe) for k in CODES]
    pairs = [
        (score(p, k, safe), float(c.labels[k]))
        for c, p in zip(cases, preds, strict=True)
        for k in CODES
    ]
    halluc = [false_findings(c, p, safe) for c, p in zip(cases, preds, strict=True)]
    crit = [
        (
            len(critical(c)),
            sum(
                not any(counts(f.code, t.code) for f in positives(p))
                and not (safe and any(counts(f.code, t.code) for f in p.omissions))
                for t in critical(c)
            ),
        )
        for c, p in zip(cases, preds, strict=True)
    ]
    missed_any = [
        sum(c.labels[k] == 1 and not claimed(p, k, safe) for k in CODES)
        for c, p in zip(cases, preds, strict=True)
    ]
    any_present = [any(c.labels[k] == 1 for k in CODES) for c in cases]
    return {
        "macro_auroc": float(np.nanmean(aurocs)),
        "sensitivity": div(tp, tp + fn),
        "specificity": div(tn, tn + fp),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "ece": ece(pairs),
        "brier": float(brier_score_loss([y for _, y in pairs], [p for p, _ in pairs])),
        "hallucination_rate": div(sum(h[0] for h in halluc), sum(h[1] for h in halluc)),
        "reports_with_hallucination": sum(h[0] > 0 for h in halluc) / len(halluc),
        "omission_rate": div(fn, tp + fn),
        "reports_with_omission": div(sum(m > 0 for m in missed_any), sum(any_present)),
        "critical_miss_rate": div(sum(m for _, m in crit), sum(n for n, _ in crit)),
    }


def sensitivity(cases: Sequence[Case], preds: Sequence[Prediction]) -> float:
    tp, fn, _, _ = confusion(cases, preds, None, False)
    return div(tp, tp + fn)


def ece_of(cases: Sequence[Case], preds: Sequence[Prediction]) -> float:
    return ece(
        [
            (score(p, k, False), float(c.labels[k]))
            for c, p in zip(cases, preds, strict=True)
            for k in CODES
        ]
    )


def macro_auroc(cases: Sequence[Case], preds: Sequence[Prediction]) -> float:
    return float(np.nanmean([auroc(cases, preds, k, False) for k in CODES]))


def unflagged_hallucinations(cases: Sequence[Case], preds: Sequence[Prediction]) -> float:
    kept = [(c, p) for c, p in zip(cases, preds, strict=True) if p.scope != "refused"]
    counted = [false_findings(c, p, True) for c, p in kept]
    return div(sum(h[0] for h in counted), sum(h[1] for h in counted))


def close(a: float | None, b: float) -> bool:
    if a is None:
        return math.isnan(b)
    return abs(a - b) <= TOL


def resampled(
    cases: Sequence[Case], preds: Sequence[Prediction], figure: Callable[..., float]
) -> tuple[float, float]:
    """The 95 % percentile interval of ``figure`` over the documented resamples."""
    draws = np.random.default_rng(SEED).integers(0, len(cases), size=(B, len(cases)))
    values = np.asarray([figure([cases[i] for i in d], [preds[i] for i in d]) for d in draws])
    values = values[~np.isnan(values)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# --- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["draft", "safety"])
def test_every_summary_figure_matches_an_independent_recomputation(run, variant) -> None:
    cases, preds, table = run
    expected = summary(cases, preds, variant == "safety")
    got = table["summary"][variant]
    assert set(expected) <= set(got)
    for name, value in expected.items():
        assert close(got[name]["value"], value), (variant, name, got[name]["value"], value)


def test_per_finding_auroc_sensitivity_specificity_f1_match_sklearn_and_loops(run) -> None:
    cases, preds, table = run
    kept = [i for i, p in enumerate(preds) if p.scope != "refused"]
    assert len(kept) < len(preds)  # the fixture has refused studies: "with safety" drops them
    for code in CODES:
        entry = table["per_finding"][code]
        for variant, safe in (("draft", False), ("safety", True)):
            c = [cases[i] for i in kept] if safe else cases
            p = [preds[i] for i in kept] if safe else preds
            tp, fn, fp, tn = confusion(c, p, code, safe)
            assert close(entry[variant]["auroc"]["value"], auroc(c, p, code, safe))
            assert close(entry[variant]["sensitivity"]["value"], div(tp, tp + fn))
            assert close(entry[variant]["specificity"]["value"], div(tn, tn + fp))
            assert close(entry[variant]["f1"]["value"], div(2 * tp, 2 * tp + fp + fn))
        assert entry["n_positive"] == sum(c.labels[code] == 1 for c in cases)


def test_intervals_match_resampling_the_cases_and_recomputing(run) -> None:
    cases, preds, table = run
    checks: list[tuple[dict[str, Any], Callable[..., float]]] = [
        (table["per_finding"]["nodule"]["draft"]["auroc"],
         lambda c, p: auroc(c, p, "nodule", False)),
        (table["summary"]["draft"]["sensitivity"], sensitivity),
        (table["summary"]["draft"]["ece"], ece_of),
        (table["summary"]["draft"]["macro_auroc"], macro_auroc),
        (table["summary"]["safety"]["hallucination_rate"], unflagged_hallucinations),
    ]  # fmt: skip
    for entry, figure in checks:
        low, high = resampled(cases, preds, figure)
        assert abs(entry["low"] - low) <= TOL and abs(entry["high"] - high) <= TOL


def test_reliability_bins_are_the_observed_frequency_per_probability_bin(run) -> None:
    cases, preds, table = run
    pairs = [
        (score(p, k, False), c.labels[k]) for c, p in zip(cases, preds, strict=True) for k in CODES
    ]
    for entry in table["calibration"]["draft"]:
        b = round(entry["low"] * 15)
        members = [(p, y) for p, y in pairs if min(int(p * 15), 14) == b]
        assert entry["n"] == len(members)
        assert close(entry["observed"], sum(y for _, y in members) / len(members))
        assert close(entry["mean_probability"], sum(p for p, _ in members) / len(members))


def test_hallucinations_per_error_type_match_a_claim_by_claim_count(run) -> None:
    cases, preds, table = run
    side = total = size = 0
    for c, p in zip(cases, preds, strict=True):
        for claim in positives(p):
            total += 1
            truth = [t for t in c.findings if t.code == claim.code]
            if not truth:
                continue
            if claim.side and truth[0].side and claim.side != truth[0].side:
                side += 1
            elif (
                claim.size_mm
                and truth[0].size_mm
                and abs(claim.size_mm - truth[0].size_mm) > max(5.0, 0.3 * truth[0].size_mm)
            ):
                size += 1
    draft = table["summary"]["draft"]
    assert close(draft["error_rate_wrong_side"]["value"], side / total)
    assert close(draft["error_rate_inflated_size"]["value"], size / total)
    assert side > 0 and size > 0  # the fixture exercises both


def test_spatial_accuracy_on_true_positives_matches_a_loop(run) -> None:
    cases, preds, table = run
    side_ok = side_n = size_n = 0
    size_err = 0.0
    for c, p in zip(cases, preds, strict=True):
        seen = set()
        for claim in positives(p):
            truth = [t for t in c.findings if t.code == claim.code]
            if not truth or claim.code in seen:
                continue
            seen.add(claim.code)
            match = next((t for t in truth if t.side == claim.side), truth[0])
            if claim.side and match.side:
                side_n += 1
                side_ok += claim.side == match.side
            if claim.size_mm and match.size_mm:
                size_n += 1
                size_err += abs(claim.size_mm - match.size_mm)
    spatial = table["spatial"]
    assert close(spatial["side_accuracy"]["value"], side_ok / side_n)
    assert close(spatial["size_mae_mm"]["value"], size_err / size_n)
    assert spatial["side_accuracy"]["n"] == side_n


def test_zone_level_auroc_pools_every_labelled_zone(run) -> None:
    cases, preds, table = run
    zones = [z.value for z in Zone]
    y = [c.zone_labels["nodule"][z] for c in cases for z in zones]
    s = [p.zone_scores["nodule"][z] for p in preds for z in zones]
    assert close(table["zones"]["nodule"]["auroc"]["value"], float(roc_auc_score(y, s)))
    per_zone = table["zones"]["nodule"]["per_zone"]["right_upper"]
    yz = [c.zone_labels["nodule"]["right_upper"] for c in cases]
    sz = [p.zone_scores["nodule"]["right_upper"] for p in preds]
    assert close(per_zone, float(roc_auc_score(yz, sz)))


def test_lesion_sensitivity_by_size_bin_matches_a_loop(run) -> None:
    cases, preds, table = run
    rows = {r["bin"]: r for r in table["subtle"]["nodule"]["by_size"]}
    hits: dict[str, list[bool]] = {}
    for c, p in zip(cases, preds, strict=True):
        for lesion in c.lesions:
            if lesion.code != "nodule":
                continue
            label = (
                "<10 mm"
                if lesion.size_mm < 10
                else "10–20 mm"
                if lesion.size_mm < 20
                else "20–30 mm"
            )
            found = any(
                f.code == "nodule"
                and (f.side is None or f.side.value in (lesion.side, "bilateral"))
                for f in positives(p)
            )
            hits.setdefault(label, []).append(found)
    assert set(hits) == set(rows)
    for label, found in hits.items():
        assert rows[label]["n"] == len(found)
        assert close(rows[label]["draft"]["value"], sum(found) / len(found))


def test_subgroup_figures_and_gaps_match_fairlearn_and_sklearn(run) -> None:
    from fairlearn.metrics import MetricFrame

    cases, preds, table = run
    block = table["fairness"]["draft"]["site"]
    sites = sorted({str(c.attributes["site"]) for c in cases})
    assert sorted(block["groups"]) == sites
    by_site = {}
    for site in sites:
        members = [i for i, c in enumerate(cases) if c.attributes["site"] == site]
        sub_c, sub_p = [cases[i] for i in members], [preds[i] for i in members]
        by_site[site] = summary(sub_c, sub_p, False)
        for name in ("macro_auroc", "sensitivity", "ece", "hallucination_rate"):
            assert close(block["groups"][site][name]["value"], by_site[site][name])
    frame = MetricFrame(
        metrics=lambda yt, yp: float(np.mean(yt == yp)),
        y_true=np.array([c.labels["nodule"] for c in cases]),
        y_pred=np.array([int(claimed(p, "nodule", False)) for p in preds]),
        sensitive_features=[str(c.attributes["site"]) for c in cases],
    )
    assert len(frame.by_group) == len(sites)
    sens = {s: v["sensitivity"] for s, v in by_site.items()}
    gap = block["gaps"]["sensitivity"]
    assert close(gap["gap"]["value"], max(sens.values()) - min(sens.values()))
    assert close(gap["fairlearn_difference"], max(sens.values()) - min(sens.values()))
    assert gap["interval_excludes_zero"] == (gap["gap"]["low"] > 0)


@pytest.mark.parametrize("variant", ["draft", "safety"])
def test_every_subgroup_figure_matches_fairlearn_over_the_reference(run, variant) -> None:
    from fairlearn.metrics import MetricFrame

    cases, preds, table = run
    safe = variant == "safety"
    everyone = np.arange(len(cases))

    def figure(name: str) -> Callable[[Any, Any], float]:
        def metric(y_true: Any, y_pred: Any) -> float:
            members = [int(i) for i in y_true]
            return summary([cases[i] for i in members], [preds[i] for i in members], safe)[name]

        return metric

    for feature, key in (("sex", "sex"), ("site", "site")):
        frame = MetricFrame(
            metrics={n: figure(n) for n in ("macro_auroc", "sensitivity", "brier",
                                            "critical_miss_rate")},
            y_true=everyone, y_pred=everyone,
            sensitive_features=[str(c.attributes[key]) for c in cases],
        )  # fmt: skip
        groups = table["fairness"][variant][feature]["groups"]
        for group, figures in groups.items():
            for name in frame.by_group.columns:
                assert close(figures[name]["value"], float(frame.by_group.loc[group, name]))


def test_out_of_distribution_score_is_summarised_per_site(run) -> None:
    cases, preds, table = run
    for site, entry in table["shift"]["sites"].items():
        scores = [
            p.ood_score for c, p in zip(cases, preds, strict=True) if c.attributes["site"] == site
        ]
        assert close(entry["ood_mean"], float(np.mean(scores)))
        assert entry["n"] == len(scores)
    sites = table["shift"]["sites"]
    assert sites["enhanced"]["ood_mean"] > sites["standard"]["ood_mean"]  # the simulated shift


def test_rare_findings_are_those_with_prevalence_under_five_percent(run) -> None:
    cases, _, table = run
    expected = [k for k in CODES if 0 < sum(c.labels[k] for c in cases) / len(cases) < 0.05]
    assert table["rare_findings"] == expected
    assert expected  # the fixture has rare findings (mass, rib fracture)


def test_lobe_and_vertebral_level_agreement_is_scored_where_a_claim_states_them() -> None:
    from radloop.report import Finding
    from radloop.vocabulary import Lobe, Side, VertebralLevel

    truth = Finding("nodule", side=Side.RIGHT, zones=(Zone.RIGHT_UPPER,),
                    lobes=(Lobe("right_upper_lobe"),), vertebral_level=VertebralLevel("T4"),
                    size_mm=12.0)  # fmt: skip
    case = Case("c1", "x", {"nodule": 1}, findings=(truth,))
    claims = [
        Finding("nodule", side=Side.RIGHT, lobes=(Lobe("right_upper_lobe"),),
                vertebral_level=VertebralLevel("T5"), size_mm=20.0, probability=0.9),
    ]  # fmt: skip
    pred = Prediction("c1", "m", {"nodule": 0.9}, tuple(claims))
    table = score_arrays(build_arrays([case], [pred], ("nodule",)), ScoringOptions(resamples=0))
    spatial = table["spatial"]
    assert spatial["lobe_accuracy"]["value"] == 1.0 and spatial["lobe_accuracy"]["n"] == 1
    assert spatial["vertebral_level_accuracy"]["value"] == 0.0  # T5 is not T4 ...
    assert spatial["vertebral_level_within_one"]["value"] == 1.0  # ... but within one level
    assert spatial["size_mae_mm"]["value"] == 8.0
    # 8 mm off a 12 mm nodule is over max(5 mm, 30 %): an inflated size.
    assert table["summary"]["draft"]["error_rate_inflated_size"]["value"] == 1.0


def test_not_checked_claims_and_abstained_drafts_have_categories_of_their_own() -> None:
    from radloop.evaluate.arrays import VERDICTS
    from radloop.report import Finding, Verdict

    cases = [
        Case("a", "x", {"nodule": 1}, findings=(Finding("nodule"),)),
        Case("b", "x", {"nodule": 0}),
        Case("c", "x", {"nodule": 0}),
        Case("d", "x", {"nodule": 0}),
    ]
    claim = Finding("nodule", probability=0.9)
    preds = [
        # Not checked: kept as written; its (verifier-free) probability never replaces the score.
        Prediction("a", "m", {"nodule": 0.7}, (claim,),
                   checked=(claim.with_(probability=0.2, verdict=Verdict.NOT_CHECKED),)),
        Prediction("b", "m", {"nodule": 0.1}, (), abstained="outside the model's domain"),
        Prediction("c", "m", {"nodule": 0.1}, (), failure="the model returned an empty reply"),
        Prediction("d", "m", {"nodule": 0.8}, (claim,),
                   checked=(claim.with_(probability=0.3, verdict=Verdict.UNSUPPORTED),)),
    ]  # fmt: skip
    arrays = build_arrays(cases, preds, ("nodule",))
    assert arrays.score_safe[0, 0] == 0.7 and arrays.score_safe[3, 0] == 0.3
    assert arrays.claimed_safe[:, 0].tolist() == [True, False, False, False]
    assert arrays.verdicts[0, VERDICTS.index("not_checked")] == 1
    table = score_arrays(arrays, ScoringOptions(resamples=0))
    safety = table["summary"]["safety"]
    assert safety["claims_not_checked"]["value"] == 0.5
    assert safety["claims_supported"]["value"] == 0.0
    assert safety["claims_unsupported"]["value"] == 0.5
    assert table["summary"]["draft"]["drafts_abstained"]["value"] == 0.25
    drafts = table["claim_checks"]["drafts"]
    assert (drafts["failed"], drafts["abstained"]) == (1, 1)
    # Only case d is a true negative with safety: the abstained and failed drafts state nothing.
    assert safety["specificity"]["value"] == 1.0
    assert table["summary"]["draft"]["specificity"]["value"] == 0.0  # d claims a nodule
