"""Longitudinal pairs: the same phantom twice, each finding with its change."""

from __future__ import annotations

import numpy as np
import pytest

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.pairs import make_pair, realized_change
from radloop.report.types import Change


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
    from radloop.lab.synth.findings import Canvas, FindingSpec, insert

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
    from radloop.lab.synth.findings import Canvas, FindingSpec, insert

    for seed in range(4):
        found = []
        for scale in (1.0, 0.65):
            canvas = Canvas(anatomy, anatomy.hu.copy(), np.zeros(anatomy.shape, bool))
            (lesion,) = insert(canvas, [FindingSpec("nodule", (seed, 3), scale)])
            found.append(lesion)
        big, small = found
        np.testing.assert_allclose(small.centre_mm, big.centre_mm)
        assert small.size_mm == pytest.approx(0.65 * big.size_mm, abs=0.11)


@pytest.mark.parametrize(
    ("intended", "before_ml", "after_ml", "expected"),
    [
        (Change.STABLE, 400.9, 787.4, Change.INCREASED),  # room freed by a resolved neighbour
        (Change.DECREASED, 768.1, 779.2, Change.STABLE),  # the prior's volume was capped
        (Change.DECREASED, 872.6, 750.7, Change.STABLE),  # ×0.86 is within ×1.24
        (Change.DECREASED, 600.0, 390.0, Change.DECREASED),  # ×0.65, as intended
        (Change.INCREASED, 390.0, 600.0, Change.INCREASED),
        (Change.STABLE, 500.0, 520.0, Change.STABLE),
        (Change.NEW, 500.0, 520.0, Change.NEW),  # only sizes of findings on both studies
    ],
)
def test_an_inserted_volume_changes_as_the_volumes_show(
    intended: Change, before_ml: float, after_ml: float, expected: Change
) -> None:
    assert realized_change(intended, before_ml, after_ml) is expected


def test_realized_change_refuses_non_positive_volumes() -> None:
    with pytest.raises(ValueError, match=r"two positive volumes, got 0\.0 and 5\.0"):
        realized_change(Change.STABLE, 0.0, 5.0)


def test_an_effusion_capped_beside_an_enlarged_heart_is_labelled_by_its_volumes(
    anatomy: Anatomy,
) -> None:
    # Development pair 880001/43: the effusion was meant to shrink to 0.65, but on the prior
    # the enlarged heart left room for only 768 ml, and the current's 0.65 share is 779 ml.
    prior, current = make_pair(anatomy, 880001, 43, size=128)
    (before,) = [f for f in prior.truth["findings"] if f["code"] == "pleural_effusion"]
    (now,) = [f for f in current.truth["findings"] if f["code"] == "pleural_effusion"]
    ratio = now["details"]["volume_ml"] / before["details"]["volume_ml"]
    assert 0.95 < ratio < 1.05
    assert now["change"] == "stable"
    # Every inserted volume on both studies carries the change its volumes show.
    was = {f["details"]["spec_seed"]: f["details"] for f in prior.truth["findings"]}
    for finding in current.truth["findings"]:
        details = finding["details"]
        if details["spec_seed"] in was and "volume_ml" in details:
            ml = (was[details["spec_seed"]]["volume_ml"], details["volume_ml"])
            assert realized_change(Change(finding["change"]), *ml).value == finding["change"]
