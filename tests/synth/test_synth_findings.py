"""Every finding type, inserted alone, with its truth and a picture saved for a person to see."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.findings import FINDING_TYPES
from radloop.lab.synth.lab import make_study
from radloop.lab.synth.overlay import draw_truth
from radloop.lab.synth.study_writer import write_study
from radloop.lab.synth.truth import truth_findings


@pytest.mark.parametrize("code", FINDING_TYPES)
def test_each_finding_type_has_exact_truth_and_a_visible_mask(
    anatomy: Anatomy, artifacts: Path, tmp_path: Path, code: str
) -> None:
    study = make_study(anatomy, 11, FINDING_TYPES.index(code), codes=[code], size=384)
    [finding] = study.truth["findings"]
    image = study.truth["images"][0]
    [entry] = image["findings"]
    assert finding["code"] == code
    assert entry["visible"] and entry["area_px"] > 0
    c0, r0, c1, r1 = entry["box"]
    assert 0 <= c0 < c1 <= image["cols"] and 0 <= r0 < r1 <= image["rows"]
    if code in ("nodule", "mass"):
        assert finding["lobes"] and abs(entry["measured_diameter_mm"] - finding["size_mm"]) <= 1
    if code in ("pleural_effusion", "pneumothorax", "rib_fracture", "consolidation"):
        assert finding["side"] in ("right", "left")
        assert all(z.startswith(finding["side"]) for z in finding["zones"])
    if code == "cardiomegaly":
        assert image["ctr"] > 0.5
    if code == "endotracheal_tube":
        assert finding["tip_reference"] == "carina" and finding["tip_distance_mm"] > 0
    [typed] = truth_findings(study.truth)
    assert typed.code == code
    # The study as a person sees it, with its truth outlined.
    folder = tmp_path / code
    write_study(study, folder, seed=11)
    draw_truth(folder, artifacts / f"{code}.png")
    saved = json.loads((folder / "truth.json").read_text())
    assert saved["findings"][0]["code"] == code


def test_a_normal_study_has_a_normal_heart(
    anatomy: Anatomy, artifacts: Path, tmp_path: Path
) -> None:
    study = make_study(anatomy, 11, 99, codes=[], size=384)
    assert study.truth["findings"] == []
    assert study.truth["images"][0]["ctr"] <= 0.5
    write_study(study, tmp_path / "normal", seed=11)
    draw_truth(tmp_path / "normal", artifacts / "normal.png")


def test_lateral_view_is_rendered_for_the_standard_profile(
    anatomy: Anatomy, artifacts: Path, tmp_path: Path
) -> None:
    study = make_study(anatomy, 11, 50, codes=["pleural_effusion"], size=256)
    assert [i["view"] for i in study.truth["images"]] == ["PA", "LL"]
    write_study(study, tmp_path / "lat", seed=11)
    draw_truth(tmp_path / "lat", artifacts / "lateral.png", view="LL")
    lateral = study.views[next(v for v in study.views if not v.frontal)]
    assert float(np.ptp(lateral.exposure.display)) > 0.5
