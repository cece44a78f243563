"""Longitudinal pairs: a prior and a current study of the same phantom, with change truth.

Both studies share the patient's build and age group; each finding of the pair is new,
increased, decreased, stable or resolved. A finding keeps its place between the two studies
(its own random stream) and only its size changes, so the change truth is exact. Fluid and
airspace findings fill the space other findings leave (an effusion cannot take voxels a
consolidation or an enlarged heart holds), so a volume the lab intended to keep can grow when
a consolidation beside it resolves, and one it intended to shrink can stay: their change truth
is the change of the volumes the lab actually inserted (:func:`realized_change`).
"""

from __future__ import annotations

import numpy as np

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.findings import FindingSpec
from radloop.lab.synth.lab import PhantomStudy, _rng, render_study, sample_patient, sample_specs
from radloop.lab.synth.phantom import build_phantom
from radloop.lab.synth.variation import PROFILES, profile
from radloop.report.types import Change
from radloop.vocabulary import sized_codes

__all__ = ["CHANGED_RATIO", "INTERVAL_DAYS", "make_pair", "realized_change"]

INTERVAL_DAYS = 60
# Findings whose size can change (the vocabulary's sized findings); devices and fractures are
# only new, stable or resolved.
_SIZED = sized_codes()
# The smaller study of a changed pair is inserted at this scale of the larger (hearts: _HEART).
_SMALLER = 0.65
_HEART = 0.75
# An inserted volume changed when the two studies' volumes differ by more than the geometric
# midpoint between no change (×1) and the lab's change (×1/0.65): ×1.24 either way.
CHANGED_RATIO = (1.0 / _SMALLER) ** 0.5


def realized_change(intended: Change, before_ml: float, after_ml: float) -> Change:
    """The change of an inserted volume between the prior (``before_ml``) and the current
    study: ``intended`` when the volumes bear it out, else what they show."""
    if intended not in (Change.INCREASED, Change.DECREASED, Change.STABLE):
        return intended
    if before_ml <= 0 or after_ml <= 0:
        raise ValueError(f"expected two positive volumes, got {before_ml} and {after_ml}")
    ratio = after_ml / before_ml
    if ratio >= CHANGED_RATIO:
        return Change.INCREASED
    if ratio <= 1.0 / CHANGED_RATIO:
        return Change.DECREASED
    return Change.STABLE


def _changes(specs: list[FindingSpec], rng: np.random.Generator) -> list[Change]:
    out = []
    for spec in specs:
        options = list(Change) if spec.code in _SIZED else [Change.NEW, Change.STABLE,
                                                             Change.RESOLVED]  # fmt: skip
        out.append(options[int(rng.integers(len(options)))])
    return out


def make_pair(
    anatomy: Anatomy,
    seed: int,
    index: int,
    *,
    site: str = "standard",
    size: int | None = None,
) -> tuple[PhantomStudy, PhantomStudy]:
    """Pair ``index`` of the set made with ``seed``: (prior, current)."""
    rng = _rng(seed, index, 7)
    site_name = list(PROFILES)[int(rng.integers(len(PROFILES)))] if site == "mixed" else site
    site_profile = profile(site_name)
    specs = sample_specs(seed, index, rng)
    if not specs:
        specs = [FindingSpec("nodule", (seed, index, 1000))]
    changes = _changes(specs, rng)
    demographics, deformation = sample_patient(anatomy, rng)
    prior_specs, current_specs = [], []
    for spec, change in zip(specs, changes, strict=True):
        # Hearts change less, so an enlarged heart stays enlarged at both time points.
        low = _HEART if spec.code == "cardiomegaly" else _SMALLER
        if change is Change.INCREASED:
            prior_specs.append(FindingSpec(spec.code, spec.seed, low))
            current_specs.append(FindingSpec(spec.code, spec.seed, 1.0))
        elif change is Change.DECREASED:
            prior_specs.append(FindingSpec(spec.code, spec.seed, 1.0))
            current_specs.append(FindingSpec(spec.code, spec.seed, low))
        elif change is Change.STABLE:
            prior_specs.append(spec)
            current_specs.append(spec)
        elif change is Change.NEW:
            current_specs.append(spec)
        else:
            prior_specs.append(spec)
    pair_id = f"p{index:05d}"
    prior_phantom = build_phantom(anatomy, prior_specs, deformation, demographics)
    current_phantom = build_phantom(anatomy, current_specs, deformation, demographics)
    by_seed = {spec.seed: change for spec, change in zip(specs, changes, strict=True)}
    prior = render_study(
        f"{pair_id}-prior", prior_phantom, site_profile, _rng(seed, index, 8),
        seed=seed, index=index, size=size,
        extra={"pair": {"pair_id": pair_id, "role": "prior", "interval_days": INTERVAL_DAYS}},
    )  # fmt: skip
    current = render_study(
        f"{pair_id}-current", current_phantom, site_profile, _rng(seed, index, 9),
        seed=seed, index=index, size=size,
        extra={"pair": {"pair_id": pair_id, "role": "current", "interval_days": INTERVAL_DAYS}},
    )  # fmt: skip
    before = {f["details"]["spec_seed"]: f for f in prior.truth["findings"]}
    for finding in current.truth["findings"]:
        key = tuple(int(v) for v in finding["details"]["spec_seed"].split("-"))
        change = by_seed[key]
        old = before.get(finding["details"]["spec_seed"])
        if old is not None and "volume_ml" in finding["details"] and "volume_ml" in old["details"]:
            inserted = (float(old["details"]["volume_ml"]), float(finding["details"]["volume_ml"]))
            change = realized_change(change, *inserted)
        finding["change"] = change.value
    # Resolved findings are truth of the current study too: present before, absent now.
    current_keys = {f["details"]["spec_seed"] for f in current.truth["findings"]}
    for finding in prior.truth["findings"]:
        if finding["details"]["spec_seed"] not in current_keys:
            resolved = dict(finding, presence="absent", change=Change.RESOLVED.value, zones=[])
            resolved["id"] = f"r{len(current.truth['findings']) + 1}"
            current.truth["findings"].append(resolved)
    return prior, current
