"""Longitudinal pairs: the same phantom twice, each finding with its change."""

from __future__ import annotations

from radloop.report.types import Change
from radloop.synth.anatomy import Anatomy
from radloop.synth.pairs import make_pair


def test_pairs_carry_change_truth_that_matches_the_sizes(anatomy: Anatomy) -> None:
    seen: set[str] = set()
    for index in range(3):
        prior, current = make_pair(anatomy, 8, index, size=128)
        assert prior.phantom.deformation is not None
        assert prior.truth["pair"]["role"] == "prior" and current.truth["pair"]["role"] == "current"
        before = {f["details"]["spec_seed"]: f for f in prior.truth["findings"]}
        for finding in current.truth["findings"]:
            change = Change(finding["change"])
            seen.add(change.value)
            key = finding["details"]["spec_seed"]
            if change is Change.NEW:
                assert key not in before
            elif change is Change.RESOLVED:
                assert finding["presence"] == "absent" and key in before
            else:
                assert key in before
                if change is Change.STABLE:
                    assert finding["size_mm"] == before[key]["size_mm"]
                if finding["code"] in ("nodule", "mass") and change is Change.INCREASED:
                    assert finding["size_mm"] > before[key]["size_mm"]
    assert seen
