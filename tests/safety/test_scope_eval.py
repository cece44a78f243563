"""The scope benchmark's figures: bar counts and their Wilson intervals."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from radloop.lab.training.scope.eval import ScopeEvaluation


def test_bars_count_what_meets_them_and_carry_intervals() -> None:
    evaluation = ScopeEvaluation(
        counts={
            "CT": Counter(refused=33, flagged=2),
            "lateral": Counter(refused=31),
            "frontal PA": Counter(refused=2, flagged=13, accepted=133),
            "frontal AP": Counter(refused=1, accepted=35),
            "view unknown": Counter(refused=3, accepted=22),  # in no bar
        }
    )
    assert evaluation.bar_counts() == {
        "ct_refused": (33, 35),
        "lateral_refused": (31, 31),
        "frontal_not_refused": (181, 184),
    }
    assert evaluation.bars()["ct_refused"] == pytest.approx(33 / 35)
    intervals = evaluation.to_dict()["bar_intervals"]
    assert intervals["ct_refused"]["ci95"] == pytest.approx([0.8139, 0.9842], abs=1e-4)
    assert intervals["frontal_not_refused"]["hits"] == 181
    empty = ScopeEvaluation()
    assert math.isnan(empty.bars()["ct_refused"])
    assert math.isnan(empty.intervals()["ct_refused"]["ci95"][0])
