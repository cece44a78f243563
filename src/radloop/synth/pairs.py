"""Longitudinal pairs: a prior and a current study of the same phantom, with change truth.

Both studies share the patient's build and age group; each finding of the pair is new,
increased, decreased, stable or resolved. A finding keeps its place between the two studies
(its own random stream) and only its size changes, so the change truth is exact.
"""

from __future__ import annotations

import numpy as np

from radloop.report.types import Change
from radloop.synth.anatomy import Anatomy
from radloop.synth.findings import FindingSpec
from radloop.synth.lab import PhantomStudy, _rng, render_study, sample_patient, sample_specs
from radloop.synth.phantom import build_phantom
from radloop.synth.variation import PROFILES, profile

__all__ = ["INTERVAL_DAYS", "make_pair"]

INTERVAL_DAYS = 60
# Findings whose size can change; devices and fractures are only new, stable or resolved.
_SIZED = {"nodule", "mass", "consolidation", "pleural_effusion", "pneumothorax", "cardiomegaly",
          "edema"}  # fmt: skip


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
        low = 0.75 if spec.code == "cardiomegaly" else 0.65
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
    for finding in current.truth["findings"]:
        key = tuple(int(v) for v in finding["details"]["spec_seed"].split("-"))
        finding["change"] = by_seed[key].value
    # Resolved findings are truth of the current study too: present before, absent now.
    current_keys = {f["details"]["spec_seed"] for f in current.truth["findings"]}
    for finding in prior.truth["findings"]:
        if finding["details"]["spec_seed"] not in current_keys:
            resolved = dict(finding, presence="absent", change=Change.RESOLVED.value, zones=[])
            resolved["id"] = f"r{len(current.truth['findings']) + 1}"
            current.truth["findings"].append(resolved)
    return prior, current
