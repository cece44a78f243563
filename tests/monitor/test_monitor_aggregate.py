"""Aggregation over windows and subgroups: figures, intervals and Cohen's kappa."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pytest
from monitor_builders import START, effusion, make_case, random_cases
from sklearn.metrics import cohen_kappa_score

from radloop.monitor.aggregate import (
    CaseTable,
    age_band,
    cohen_kappa,
    finding_kappas,
    summarise,
    wilson_interval,
)
from radloop.monitor.cases import FlagOutcome
from radloop.report.types import Finding, Presence


def test_kappa_matches_scikit_learn_on_random_ratings() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.random(200) < rng.uniform(0.05, 0.6)
        b = np.where(rng.random(200) < 0.8, a, ~a)
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_per_finding_matches_scikit_learn_on_cases() -> None:
    table = CaseTable.build(random_cases(300, seed=4, miss=0.3))
    kappas = {k.code: k for k in finding_kappas(table)}
    column = table.codes.index("pleural_effusion")
    expected = cohen_kappa_score(table.draft_positive[:, column], table.signed_positive[:, column])
    found = kappas["pleural_effusion"]
    assert found.kappa == pytest.approx(expected, abs=1e-12)
    low, high = found.kappa_ci
    assert low is not None and high is not None and low < found.kappa < high


def test_kappa_is_undefined_when_both_raters_say_one_class_throughout() -> None:
    assert np.isnan(cohen_kappa([True] * 5, [True] * 5))


def test_wilson_interval_of_known_values() -> None:
    # Brown, Cai and DasGupta (2001): 0 of 10 → [0, 0.278]
    low, high = wilson_interval([0, 5], [10, 10])
    assert low[0] == pytest.approx(0.0, abs=1e-12) and high[0] == pytest.approx(0.2775, abs=1e-3)
    assert low[1] == pytest.approx(0.2366, abs=1e-3) and high[1] == pytest.approx(0.7634, abs=1e-3)


@pytest.mark.parametrize(
    "age, band", [(None, "unknown"), (12, "<18"), (18, "18-39"), (59, "40-59"), (80, "80+")]
)
def test_age_bands(age: int | None, band: str) -> None:
    assert age_band(age) == band


def test_subgroups_and_windows_are_counted_with_their_figures() -> None:
    good = (effusion(),)
    cases = [
        # Men: every draft signed as is. Women: every other draft's finding removed.
        *(make_case(i, good, good, sex="M", when=START + datetime.timedelta(days=i))
          for i in range(4)),
        *(make_case(10 + i, good, good if i % 2 else (), sex="F",
                    when=START + datetime.timedelta(days=7 + i)) for i in range(4)),
    ]  # fmt: skip
    summary = summarise(CaseTable.build(cases), window_days=7)
    by_sex = {g.label: g for g in summary.subgroups["sex"]}
    assert by_sex["M"].n == 4 and by_sex["M"].f1 == 1.0 and by_sex["M"].revised_rate == 0.0
    assert by_sex["F"].n == 4 and by_sex["F"].f1 == 0.5 and by_sex["F"].revised_rate == 0.5
    assert by_sex["F"].precision == 0.5 and by_sex["F"].recall == 1.0
    low, high = by_sex["F"].f1_ci
    assert 0.0 <= low < 0.5 < high <= 1.0
    assert [(w.label, w.n) for w in summary.windows] == [("2025-03-03", 4), ("2025-03-10", 4)]
    assert summary.overall is not None and summary.overall.n == 8
    assert summary.overall.unchanged_rate == pytest.approx(6 / 8)


def test_guard_precision_counts_rejected_and_edited_flags_as_right() -> None:
    flags = (FlagOutcome("mass", "", "rejected"), FlagOutcome("edema", "", "kept"))
    cases = [make_case(i, flags=flags) for i in range(3)] + [
        make_case(9, flags=(FlagOutcome("mass", "", "edited"),))
    ]
    overall = summarise(CaseTable.build(cases)).overall
    assert overall is not None and overall.flags == 7
    assert overall.guard_precision == pytest.approx(4 / 7)
    low, high = overall.guard_ci
    assert low is not None and high is not None and low < 4 / 7 < high


def test_summary_is_json_ready_and_sorted_by_receipt() -> None:
    cases = random_cases(50, seed=1)[::-1]
    table = CaseTable.build(cases)
    assert list(table.received_at) == sorted(table.received_at)
    data = summarise(table).to_dict()
    assert data["n"] == 50 and data["kappa"][0]["code"] == "pleural_effusion"
    assert set(data["subgroups"]) == {"age_band", "sex", "site", "manufacturer", "view"}


def test_summary_of_no_cases_is_empty_not_an_error() -> None:
    summary = summarise(CaseTable.build([]))
    assert summary.n == 0 and summary.overall is None and summary.windows == []


def test_absent_findings_do_not_count_as_positive() -> None:
    case = make_case(0, (Finding("pneumothorax", presence=Presence.ABSENT),), ())
    table = CaseTable.build([case])
    assert table.codes == () and table.f1[0] == 1.0


def _stored(i: int, verdicts: list[str | None], *, sex: str, day: int) -> dict[str, Any]:
    """A signed case as the review store yields it: the draft's findings with their verdicts."""
    findings = []
    for k, verdict in enumerate(verdicts):
        found = Finding(
            "pleural_effusion" if k % 2 == 0 else "pneumothorax",
            presence=Presence.PRESENT if k == 0 else Presence.ABSENT,
        ).to_dict()
        if verdict is not None:
            found["verdict"] = verdict
        findings.append(found)
    signed = [
        {k: v for k, v in f.items() if k != "verdict"}
        for f in findings
        if f.get("presence", "present") != "absent"
    ]
    when = (START + datetime.timedelta(days=day, hours=i)).isoformat()
    return {
        "study_id": f"v{i:03d}",
        "signed_at": when,
        "received_at": when,
        "sex": sex,
        "model": "test-model",
        "draft_findings": findings,
        "signed_findings": signed,
    }


def test_claims_not_checked_are_counted_apart_per_window_and_subgroup_never_as_supported() -> None:
    from radloop.monitor.aggregate import CLAIM_VERDICTS
    from radloop.monitor.cases import SignedCase

    records = [
        # Week 1, men: drafts checked by a verifier in its domain.
        *(_stored(i, ["supported", "supported"], sex="M", day=0) for i in range(3)),
        # Week 2, women: films outside the verifier's domain, every claim not checked.
        *(_stored(10 + i, ["not_checked", "not_checked"], sex="F", day=7) for i in range(3)),
        # Week 2: one draft with a flagged claim and one stored without any verdict.
        _stored(20, ["unsupported", "not_checked"], sex="M", day=8),
        _stored(21, [None, None], sex="M", day=8),
    ]
    cases = [SignedCase.from_dict(r) for r in records]
    summary = summarise(CaseTable.build(cases), window_days=7)
    overall = summary.overall
    assert overall is not None and overall.n_claims == 16
    assert overall.claims == {"supported": 6, "unsupported": 1, "contradicted": 0,
                              "unverifiable": 0, "not_checked": 7, "unrecorded": 2}  # fmt: skip
    assert overall.not_checked_rate == pytest.approx(7 / 16)
    first, second = summary.windows
    assert (first.claims["not_checked"], first.claims["supported"]) == (0, 6)
    assert first.not_checked_rate == 0.0
    assert (second.claims["not_checked"], second.claims["supported"]) == (7, 0)
    assert second.not_checked_rate == pytest.approx(7 / 10)
    low, high = second.not_checked_ci
    assert low is not None and high is not None and low < 0.7 < high
    by_sex = {g.label: g for g in summary.subgroups["sex"]}
    assert by_sex["F"].not_checked_rate == 1.0 and by_sex["F"].claims["supported"] == 0
    assert by_sex["M"].claims["not_checked"] == 1
    data = summary.to_dict()
    assert data["overall"]["claims_not_checked"] == 7 and data["overall"]["claims_supported"] == 6
    assert data["windows"][1]["not_checked_rate"] == pytest.approx(0.7)
    assert all(f"claims_{v}" in data["windows"][0] for v in CLAIM_VERDICTS)
