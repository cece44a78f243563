"""The scope guard on a folder of labelled real images (the realcxr layout), per group.

A folder with ``metadata.csv`` (columns ``image``, ``modality``, ``view``, ``patientid``)
as in ``../shared/data/realcxr-dev``: every image goes through :func:`assess_image` without
tags, as a PNG arrives, and the figures are the shares refused, flagged and accepted per
group (CT slices, laterals, frontal PA / AP / AP supine, view unknown), the scope bars
(≥ 0.95 of CT and laterals refused, ≥ 0.95 of frontals not refused) with 95 % Wilson
score intervals — with 35 CT slices one image moves the CT figure by 0.03, and the interval
says how far a held-back set could land — and the time per image.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radloop.errors import InputError
from radloop.stats import counted_share

__all__ = ["BARS", "ScopeEvaluation", "evaluate_folder", "group_of", "patient_half"]

BARS = {"ct_refused": 0.95, "lateral_refused": 0.95, "frontal_not_refused": 0.95}
_FRONTAL = {"PA": "frontal PA", "AP": "frontal AP", "AP Supine": "frontal AP supine"}


def group_of(row: dict[str, str]) -> str:
    """The evaluation group of a metadata row."""
    if row.get("modality", "").upper() in ("CT", "MR"):
        return "CT"
    view = row.get("view", "")
    if view == "L":
        return "lateral"
    return _FRONTAL.get(view, "view unknown")


def patient_half(patient_id: str) -> str:
    """``"A"`` or ``"B"``: a fixed split of patients (first byte of SHA-1 of the id, parity),
    so that follow-up films of one patient never straddle the halves."""
    return "A" if hashlib.sha1(patient_id.encode()).digest()[0] % 2 == 0 else "B"


@dataclass
class ScopeEvaluation:
    """Outcome counts per group (and per patient half), reasons and timing."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    halves: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds_per_image: float = 0.0

    def bar_counts(
        self, counts: dict[str, Counter[str]] | None = None
    ) -> dict[str, tuple[int, int]]:
        """Each bar as (images that meet it, images in its groups)."""
        c = self.counts if counts is None else counts

        def refused(groups: tuple[str, ...], *, negate: bool = False) -> tuple[int, int]:
            total = sum(sum(c[g].values()) for g in groups if g in c)
            hits = sum(c[g]["refused"] for g in groups if g in c)
            return (total - hits if negate else hits), total

        return {
            "ct_refused": refused(("CT",)),
            "lateral_refused": refused(("lateral",)),
            "frontal_not_refused": refused(tuple(_FRONTAL.values()), negate=True),
        }

    def bars(self, counts: dict[str, Counter[str]] | None = None) -> dict[str, float]:
        return {k: h / n if n else float("nan") for k, (h, n) in self.bar_counts(counts).items()}

    def intervals(self) -> dict[str, dict[str, Any]]:
        """Each bar's count, total and 95 % Wilson interval on all the images."""
        return {k: counted_share(hits, n) for k, (hits, n) in self.bar_counts().items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": {g: dict(c, n=sum(c.values())) for g, c in sorted(self.counts.items())},
            "bars": {k: round(v, 4) for k, v in self.bars().items()},
            "bar_intervals": self.intervals(),
            "bars_by_patient_half": {
                h: {k: round(v, 4) for k, v in self.bars(c).items()}
                for h, c in sorted(self.halves.items())
            },
            "targets": BARS,
            "reasons": dict(self.reasons.most_common()),
            "ms_per_image": round(1000 * self.seconds_per_image, 2),
        }


def evaluate_folder(folder: Path, classifier: Path | None = None) -> ScopeEvaluation:
    """Run the scope guard (no tags) on every image of ``folder``, with the shipped
    acquisition classifier or the one ``radloop train-scope`` wrote to ``classifier``."""
    from radloop.safety.scope import assess_image
    from radloop.safety.scope.model import load_acquisition_classifier
    from radloop.study import load_image

    metadata = folder / "metadata.csv"
    if not metadata.is_file():
        raise InputError("a folder with metadata.csv (realcxr layout)", f"{folder}", source=folder)
    with metadata.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    acquisition = load_acquisition_classifier(classifier)
    result = ScopeEvaluation()
    spent = 0.0
    for row in rows:
        image = load_image(folder / row["image"])
        started = time.perf_counter()
        decision = assess_image(image, acquisition=acquisition)
        spent += time.perf_counter() - started
        group = group_of(row)
        outcome = decision.outcome.value
        result.counts.setdefault(group, Counter())[outcome] += 1
        half = result.halves.setdefault(patient_half(row.get("patientid", "")), {})
        half.setdefault(group, Counter())[outcome] += 1
        result.reasons.update({f"{group}: {r.code}" for r in decision.reasons})
    result.seconds_per_image = spent / max(1, len(rows))
    return result
