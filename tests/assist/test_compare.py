"""compare(current, prior): both images in one request, or two structured outputs diffed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from radloop.assist import OutputMode, compare, diff_findings
from radloop.models.mock import MockModel
from radloop.report import Change, Finding, Presence, Severity
from radloop.report.measure import extent_change
from radloop.study import Study
from radloop.vocabulary import Side, Zone


def test_both_studies_travel_in_one_request_current_first(study: Study, prior: Study) -> None:
    model = MockModel("No interval change.")
    result = compare(study, prior, model)
    assert len(model.requests) == 1
    uids = [i.sop_instance_uid for i in model.requests[0].images]
    assert not uids[0].startswith("prior-") and uids[1].startswith("prior-")
    assert result.changes == ()
    assert result.output_mode is OutputMode.TEXT


def test_a_text_comparison_is_read_finding_by_finding(study: Study, prior: Study) -> None:
    reply = "New right pneumothorax. The left pleural effusion has increased."
    result = compare(study, prior, MockModel(reply))
    assert [(c.code, c.direction, c.side) for c in result.changes] == [
        ("pneumothorax", Change.NEW, Side.RIGHT),
        ("pleural_effusion", Change.INCREASED, Side.LEFT),
    ]


def test_a_json_comparison_is_used_and_bad_entries_are_warned_about(
    study: Study, prior: Study
) -> None:
    reply = json.dumps(
        {
            "changes": [
                {"code": "pleural_effusion", "direction": "decreased", "side": "left",
                 "details": "moderate to small"},
                {"code": "pneumothorax", "direction": "sideways", "details": ""},
            ]
        }
    )  # fmt: skip
    result = compare(study, prior, MockModel(reply, supports_json_schema=True))
    assert result.output_mode is OutputMode.JSON
    assert [c.to_dict() for c in result.changes] == [
        {"code": "pleural_effusion", "direction": "decreased", "side": "left",
         "details": "moderate to small"}
    ]  # fmt: skip
    assert len(result.warnings) == 1 and "'sideways'" in result.warnings[0]


def test_the_reference_model_compares_its_two_structured_outputs(
    study: Study, prior: Study, reference_model: Callable[..., Any]
) -> None:
    model = reference_model(
        current=[Finding("nodule", side=Side.RIGHT, size_mm=18.0)],
        prior=[Finding("nodule", side=Side.RIGHT, size_mm=12.0)],
    )
    result = compare(study, prior, model)
    assert result.output_mode is OutputMode.STRUCTURED
    (change,) = result.changes
    assert (change.direction, change.details) == (Change.INCREASED, "12 → 18 mm")


def test_differences_by_presence_size_severity_and_extent() -> None:
    current = [
        Finding("pneumothorax", side=Side.LEFT),
        Finding("nodule", side=Side.RIGHT, size_mm=13.0),  # +1 mm: within measurement error
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.SMALL),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_MIDDLE, Zone.LEFT_LOWER)),
        Finding("cardiomegaly", presence=Presence.ABSENT),
    ]
    prior = [
        Finding("nodule", side=Side.RIGHT, size_mm=12.0),
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.LARGE),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
        Finding("cardiomegaly"),
    ]
    directions = {c.code: c.direction for c in diff_findings(current, prior)}
    assert directions == {
        "pneumothorax": Change.NEW,
        "nodule": Change.STABLE,
        "pleural_effusion": Change.DECREASED,
        "consolidation": Change.INCREASED,
        "cardiomegaly": Change.RESOLVED,
    }


def test_measured_extents_decide_over_categories() -> None:
    # Both effusions are "moderate": only the volumes say it shrank; the consolidation's
    # zone count grew but its measured extent did not change beyond measurement variability.
    current = [
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.MODERATE),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_MIDDLE, Zone.LEFT_LOWER)),
    ]
    prior = [
        Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.MODERATE),
        Finding("consolidation", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
    ]
    extents = ({"pleural_effusion": 520.0, "consolidation": 210.0},
               {"pleural_effusion": 800.0, "consolidation": 200.0})  # fmt: skip
    changes = {c.code: c for c in diff_findings(current, prior, extents=extents)}
    assert changes["pleural_effusion"].direction is Change.DECREASED
    assert "×0.65" in changes["pleural_effusion"].details
    assert changes["consolidation"].direction is Change.STABLE
    # Without extents the categories decide, as before.
    fallback = {c.code: c.direction for c in diff_findings(current, prior)}
    assert fallback == {"pleural_effusion": Change.STABLE, "consolidation": Change.INCREASED}


def test_a_nodule_that_became_a_mass_grew_and_a_mass_that_became_a_nodule_shrank() -> None:
    # One lesion across 3 cm is one finding: increased or decreased, named "mass".
    grown = diff_findings(
        [Finding("mass", side=Side.RIGHT, size_mm=36.0)],
        [Finding("nodule", side=Side.RIGHT, size_mm=24.0)],
    )
    assert [(c.code, c.direction) for c in grown] == [("mass", Change.INCREASED)]
    assert grown[0].details == "24 → 36 mm"
    assert grown[0].prior is not None and grown[0].prior.code == "nodule"
    # Close sizes across the 3 cm line still follow the category that changed.
    shrunk = diff_findings(
        [Finding("nodule", side=Side.LEFT, size_mm=29.0)],
        [Finding("mass", side=Side.LEFT, size_mm=30.0)],
    )
    assert [(c.code, c.direction) for c in shrunk] == [("mass", Change.DECREASED)]


def test_findings_pair_by_side_first_then_across_sides() -> None:
    current = [Finding("nodule", side=Side.LEFT, size_mm=10.0),
               Finding("mass", side=Side.RIGHT, size_mm=40.0)]  # fmt: skip
    prior = [Finding("mass", side=Side.RIGHT, size_mm=40.0),
             Finding("nodule", side=Side.LEFT, size_mm=10.0)]  # fmt: skip
    assert {(c.code, c.side, c.direction) for c in diff_findings(current, prior)} == {
        ("nodule", Side.LEFT, Change.STABLE),
        ("mass", Side.RIGHT, Change.STABLE),
    }
    # The same effusion read on the left now and bilateral before is one effusion.
    moved = diff_findings(
        [Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL)],
        [Finding("pleural_effusion", side=Side.BILATERAL, severity=Severity.SMALL)],
    )
    assert [(c.code, c.direction) for c in moved] == [("pleural_effusion", Change.STABLE)]
    # Two nodules now and one before: one is paired, the other is new.
    two = diff_findings(
        [Finding("nodule", side=Side.RIGHT, size_mm=8.0),
         Finding("nodule", side=Side.LEFT, size_mm=9.0)],
        [Finding("nodule", side=Side.LEFT, size_mm=9.0)],
    )  # fmt: skip
    assert sorted((c.side.value, c.direction.value) for c in two if c.side) == [
        ("left", "stable"),
        ("right", "new"),
    ]


def test_findings_in_different_lung_zones_are_two_findings() -> None:
    # A fracture read in the left lower zone before and in the right lower zone now: one
    # resolved, one new — not one fracture that stayed.
    fractures = diff_findings(
        [Finding("rib_fracture", side=Side.RIGHT, zones=(Zone.RIGHT_LOWER,))],
        [Finding("rib_fracture", side=Side.LEFT, zones=(Zone.LEFT_LOWER,))],
    )
    assert {(c.side, c.direction) for c in fractures} == {
        (Side.RIGHT, Change.NEW),
        (Side.LEFT, Change.RESOLVED),
    }
    # A mass in the left upper zone did not grow from a nodule in the left lower zone.
    lesions = diff_findings(
        [Finding("mass", side=Side.LEFT, size_mm=50.0, zones=(Zone.LEFT_UPPER,))],
        [Finding("nodule", side=Side.LEFT, size_mm=4.0, zones=(Zone.LEFT_LOWER,))],
    )
    assert {(c.code, c.direction) for c in lesions} == {
        ("mass", Change.NEW),
        ("nodule", Change.RESOLVED),
    }
    # Sharing a zone, they are one: the nodule became a mass.
    grown = diff_findings(
        [Finding("mass", side=Side.LEFT, size_mm=36.0,
                 zones=(Zone.LEFT_MIDDLE, Zone.LEFT_LOWER))],
        [Finding("nodule", side=Side.LEFT, size_mm=24.0, zones=(Zone.LEFT_LOWER,))],
    )  # fmt: skip
    assert [(c.code, c.direction) for c in grown] == [("mass", Change.INCREASED)]


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [(100.0, 120.0, "increased"), (100.0, 119.0, "stable"), (120.0, 100.0, "decreased"),
     (119.0, 100.0, "stable")],
)  # fmt: skip
def test_extent_change_needs_twenty_percent_either_way(
    before: float, now: float, expected: str
) -> None:
    assert extent_change(before, now) == expected


def test_extent_change_refuses_non_positive_extents() -> None:
    with pytest.raises(ValueError, match="positive"):
        extent_change(0.0, 3.0)


def _map(strength: float, at: tuple[int, int], shape: tuple[int, int] = (8, 8)) -> Any:
    import numpy as np

    grid = np.zeros(shape, np.float32)
    grid[at] = strength
    return grid


def test_look_back_reads_a_lesion_found_on_one_study_as_grown_where_the_other_shows_it() -> None:
    nodule = [Finding("nodule", side=Side.RIGHT, size_mm=14.0)]
    now = {"nodule": _map(1.8, (3, 3))}
    # The prior shows it at 0.6 of the reporting strength one cell away: it grew.
    grown = diff_findings(nodule, [], local=(now, {"nodule": _map(0.6, (4, 3))}))
    assert [(c.code, c.direction) for c in grown] == [("nodule", Change.INCREASED)]
    assert "0.60 of the reporting strength" in grown[0].details
    # Too faint (0.4) or elsewhere (three cells away): new, as without a look-back.
    for prior_map in (_map(0.4, (3, 3)), _map(0.9, (6, 3))):
        (change,) = diff_findings(nodule, [], local=(now, {"nodule": prior_map}))
        assert change.direction is Change.NEW
    assert diff_findings(nodule, [])[0].direction is Change.NEW
    # The other way round: reported on the prior only, still faintly there now.
    (shrunk,) = diff_findings([], nodule, local=({"nodule": _map(0.7, (3, 2))}, now))
    assert (shrunk.direction, shrunk.current, shrunk.prior) == (Change.DECREASED, None, nodule[0])


def test_look_back_leaves_devices_and_fractures_new_or_resolved() -> None:
    tube = [Finding("endotracheal_tube")]
    local = ({"endotracheal_tube": _map(2.0, (1, 4))}, {"endotracheal_tube": _map(0.9, (1, 4))})
    assert diff_findings(tube, [], local=local)[0].direction is Change.NEW
    fracture = [Finding("rib_fracture", side=Side.LEFT)]
    local = ({"rib_fracture": _map(0.9, (2, 2))}, {"rib_fracture": _map(1.5, (2, 2))})
    assert diff_findings([], fracture, local=local)[0].direction is Change.RESOLVED


def test_the_reference_model_gives_maps_on_one_grid_scaled_to_its_thresholds() -> None:
    import numpy as np

    from radloop.models.builtin import ReferenceModel, shipped_model_dir
    from radloop.models.reference.spec import FINDINGS, HEATMAP_SIZE
    from radloop.study import load_study, sample_study_path

    model = ReferenceModel(shipped_model_dir())
    images = load_study(sample_study_path()).images
    local = model.predict_local(images)
    output = model.read(images)
    assert output is not None and local
    # Findings the model did not assess (images too coarse for its crop networks) have no map.
    assert not set(local) & set(output.unassessed)
    for code, grid in local.items():
        assert grid.shape == (HEATMAP_SIZE, HEATMAP_SIZE)
        expected = output.heatmaps[FINDINGS.index(code)] / model.sidecar["thresholds"][code]
        np.testing.assert_allclose(grid, expected, rtol=1e-6)
