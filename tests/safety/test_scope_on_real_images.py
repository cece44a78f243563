"""The model-free scope heuristics on real radiographs and CT slices (realcxr-dev, no tags).

Measured figures are in docs/safety.md. The floors here are those figures less a small
margin, so that a change that makes the heuristics worse fails; they are not the issue's bars
(>= 0.95 each), which need the reference model's view head.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from radloop.safety import assess_image
from radloop.study import load_image

DATA = Path(__file__).resolve().parents[2] / "../shared/data/realcxr-dev"
FRONTAL = {"PA", "AP", "AP Supine"}

pytestmark = pytest.mark.skipif(
    not (DATA / "metadata.csv").is_file(), reason="realcxr-dev is not available"
)


def _refused_share() -> dict[str, float]:
    with (DATA / "metadata.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    refused: dict[str, list[bool]] = {"ct": [], "lateral": [], "frontal": []}
    for row in rows:
        group = (
            "ct"
            if row["modality"] == "CT"
            else "lateral"
            if row["view"] == "L"
            else "frontal"
            if row["view"] in FRONTAL
            else None
        )
        if group is not None:
            refused[group].append(assess_image(load_image(DATA / row["image"])).refused)
    return {group: sum(flags) / len(flags) for group, flags in refused.items()}


def test_heuristic_scope_guard_on_realcxr_dev_keeps_its_measured_figures() -> None:
    share = _refused_share()
    assert share["ct"] >= 0.70
    assert share["lateral"] >= 0.60
    assert 1 - share["frontal"] >= 0.95
