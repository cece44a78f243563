"""Longitudinal pairs: the same phantom twice, each finding with its change."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_a_lobar_consolidation_that_changed_fills_less_of_its_lobe_on_the_smaller_study(
    anatomy: Anatomy,
) -> None:
    from radloop.synth.findings import Canvas, FindingSpec, insert

    def volume(seed: int, scale: float) -> tuple[str, float, np.ndarray]:
        canvas = Canvas(anatomy, anatomy.hu.copy(), np.zeros(anatomy.shape, bool))
        (found,) = insert(canvas, [FindingSpec("consolidation", (seed, 0), scale)])
        return found.details["extent"], found.details["volume_ml"], found.voxels

    lobar = next(s for s in range(40) if volume(s, 1.0)[0] == "lobar")
    _, full, whole = volume(lobar, 1.0)
    extent_small, small, part = volume(lobar, 0.65)
    # Still the lobe's consolidation, on about 65 % of its volume and inside the full one.
    assert extent_small == "lobar" and 0.55 * full <= small <= 0.75 * full
    assert np.isin(part, whole).all()


def test_a_nodule_that_changed_size_keeps_its_place(anatomy: Anatomy) -> None:
    from radloop.synth.findings import Canvas, FindingSpec, insert

    for seed in range(4):
        found = []
        for scale in (1.0, 0.65):
            canvas = Canvas(anatomy, anatomy.hu.copy(), np.zeros(anatomy.shape, bool))
            (lesion,) = insert(canvas, [FindingSpec("nodule", (seed, 3), scale)])
            found.append(lesion)
        big, small = found
        np.testing.assert_allclose(small.centre_mm, big.centre_mm)
        assert small.size_mm == pytest.approx(0.65 * big.size_mm, abs=0.11)
