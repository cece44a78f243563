"""Per-case agreement: added, removed, changed findings, F1, edit distance, revision, flags."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from monitor_builders import effusion, make_case

from radloop.monitor.agreement import agreement, match_findings, word_edit_distance
from radloop.monitor.cases import FlagOutcome
from radloop.report.types import Finding, Presence, Severity
from radloop.vocabulary import Side


def _levenshtein(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_bit_parallel_edit_distance_equals_the_dynamic_programme() -> None:
    rng = np.random.default_rng(3)
    words = ["no", "acute", "effusion", "left", "right", "small", "likely"]
    for _ in range(300):
        a = list(rng.choice(words, size=int(rng.integers(0, 90))))
        b = list(rng.choice(words, size=int(rng.integers(0, 90))))
        assert word_edit_distance(a, b) == _levenshtein(a, b)


def test_edit_distance_of_known_pairs() -> None:
    assert word_edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert word_edit_distance([], ["a", "b"]) == 2
    assert word_edit_distance(["kitten", "sat"], ["kitten", "sat"]) == 0
    # Over 64 words: the bit vectors span several machine words.
    long_a = [f"w{i}" for i in range(200)]
    long_b = [*long_a[:50], "x", *long_a[51:150], *long_a[160:]]
    assert word_edit_distance(long_a, long_b) == _levenshtein(long_a, long_b) == 11


def test_unchanged_draft_scores_perfect_agreement() -> None:
    found = (effusion(), Finding("pneumothorax", presence=Presence.ABSENT))
    result = agreement(make_case(0, found, found))
    assert result.unchanged
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.edit_distance == 0
    assert not result.significantly_revised


def test_normal_draft_signed_normal_counts_as_agreement() -> None:
    result = agreement(make_case(0, (), ()))
    assert result.f1 == 1.0 and not result.significantly_revised


def test_added_removed_and_changed_findings_are_told_apart() -> None:
    draft = (effusion(Side.RIGHT), Finding("cardiomegaly"), Finding("nodule", size_mm=10.0))
    signed = (effusion(Side.LEFT), Finding("nodule", size_mm=11.0), Finding("consolidation"))
    result = agreement(make_case(0, draft, signed), f1_threshold=0.0)
    assert [f.code for f in result.removed] == ["cardiomegaly"]
    assert [f.code for f in result.added] == ["consolidation"]
    assert [(c.code, c.fields) for c in result.changed] == [("pleural_effusion", ("side",))]
    # Effusion and nodule matched (nodule size within 2 mm: unchanged).
    assert result.true_positives == 2
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 / 3)
    assert not result.critical_changed
    assert not result.significantly_revised


def test_same_code_findings_pair_by_side_first() -> None:
    draft = (effusion(Side.LEFT), effusion(Side.RIGHT))
    signed = (effusion(Side.RIGHT),)
    pairs, removed, added = match_findings(draft, signed)
    assert [(a.side, b.side) for a, b in pairs] == [(Side.RIGHT, Side.RIGHT)]
    assert [f.side for f in removed] == [Side.LEFT] and added == []


def test_missed_critical_finding_is_a_significant_revision_even_with_high_f1() -> None:
    many = tuple(Finding(code) for code in ("cardiomegaly", "nodule", "consolidation", "edema"))
    signed = (*many, Finding("pneumothorax", side=Side.LEFT))
    result = agreement(make_case(0, many, signed))
    assert result.f1 == pytest.approx(8 / 9)
    assert result.critical_changed and result.significantly_revised


def test_effusion_upgraded_to_large_is_a_critical_change() -> None:
    draft = (effusion(severity=Severity.SMALL),)
    signed = (effusion(severity=Severity.LARGE),)
    result = agreement(make_case(0, draft, signed))
    assert result.f1 == 1.0 and result.critical_changed and result.significantly_revised


def test_low_f1_is_a_significant_revision_at_the_configured_threshold() -> None:
    draft = (Finding("cardiomegaly"), Finding("nodule"))
    signed = (Finding("cardiomegaly"), Finding("edema"), Finding("consolidation"))
    case = make_case(0, draft, signed)
    assert agreement(case).f1 == pytest.approx(0.4)
    assert agreement(case, f1_threshold=0.5).significantly_revised
    assert not agreement(case, f1_threshold=0.3).significantly_revised


def test_flag_decisions_are_counted() -> None:
    flags = tuple(
        FlagOutcome(code, "unsupported", decision)
        for code, decision in zip(("mass", "nodule", "edema", "cardiomegaly"),
                                  ("kept", "rejected", "rejected", "edited"), strict=True)
    )  # fmt: skip
    result = agreement(make_case(0, flags=flags))
    assert (result.flags_kept, result.flags_rejected, result.flags_edited) == (1, 2, 1)


def test_edit_rate_is_normalised_by_the_longer_text() -> None:
    case = make_case(0, draft_text="Small right effusion.", signed_text="Small left effusion here.")
    result = agreement(case)
    assert result.edit_distance == 2
    assert result.edit_rate == pytest.approx(2 / 4)


@pytest.mark.parametrize("a, b", list(itertools.product(["", "x"], ["", "x y"])))
def test_edit_distance_handles_empty_texts(a: str, b: str) -> None:
    assert word_edit_distance(a.split(), b.split()) == _levenshtein(a.split(), b.split())
