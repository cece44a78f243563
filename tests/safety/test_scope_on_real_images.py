"""The scope guard on real radiographs and CT slices without tags (realcxr-dev): the bars.

Issue #5: at least 0.95 of CT slices and of laterals refused, at least 0.95 of frontal
radiographs (PA, AP, AP supine) not refused. The shipped acquisition classifier never saw a
real radiograph or a real figure (docs/safety.md); these images only measure it.
"""

from __future__ import annotations

import pytest

from radloop.lab.training.scope.eval import BARS, evaluate_folder
from sharedkit import shared_path

DATA = shared_path("data/realcxr-dev")

pytestmark = pytest.mark.skipif(
    DATA is None, reason="../shared/data/realcxr-dev is not here (the project's shared test data)"
)


@pytest.fixture(scope="module")
def evaluation():
    assert DATA is not None
    return evaluate_folder(DATA)


@pytest.mark.parametrize("bar", ["ct_refused", "lateral_refused", "frontal_not_refused"])
def test_scope_guard_meets_the_issue_bar_on_realcxr_dev(evaluation, bar) -> None:
    bars = evaluation.bars()
    assert bars[bar] >= BARS[bar], (bar, bars, evaluation.to_dict()["groups"])


def test_scope_guard_keeps_its_measured_figures(evaluation) -> None:
    """The measured 34/35 CT slices and 235/242 frontals (less one film, for a borderline
    probability on another CPU): a change that refuses fewer CT slices or more films fails."""
    counts = evaluation.bar_counts()
    assert counts["ct_refused"][0] >= 34 and counts["frontal_not_refused"][0] >= 234, counts


def test_every_group_is_measured(evaluation) -> None:
    groups = evaluation.to_dict()["groups"]
    assert groups["CT"]["n"] >= 30 and groups["lateral"]["n"] >= 30
    assert sum(groups[g]["n"] for g in groups if g.startswith("frontal")) >= 200


def test_refusals_of_ct_and_laterals_give_the_right_reason(evaluation) -> None:
    reasons = evaluation.reasons
    assert reasons["CT: looks_like_ct"] >= 0.9 * sum(evaluation.counts["CT"].values())
    assert reasons["lateral: looks_lateral"] >= 0.8 * sum(evaluation.counts["lateral"].values())
