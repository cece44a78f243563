"""One synthetic study from a seed: patient, findings, site, images and truth.

All randomness of study ``index`` under ``seed`` comes from ``SeedSequence([seed, index])``
streams, so a study is the same whichever worker renders it and however many there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.findings import FINDING_TYPES, FindingSpec
from radloop.lab.synth.phantom import Phantom, RenderedView, build_phantom, render_view
from radloop.lab.synth.projector import View
from radloop.lab.synth.truth import SCHEMA, finding_truth, view_truth
from radloop.lab.synth.variation import (
    PROFILES,
    Deformation,
    Demographics,
    Pose,
    SiteProfile,
    profile,
    sample_deformation,
    sample_demographics,
    sample_pose,
)

__all__ = ["PhantomStudy", "make_study", "render_study", "sample_patient", "sample_specs"]

# Relative frequency of each finding among abnormal studies.
_WEIGHTS: dict[str, float] = {
    "nodule": 0.16,
    "mass": 0.06,
    "consolidation": 0.12,
    "pleural_effusion": 0.14,
    "pneumothorax": 0.08,
    "cardiomegaly": 0.12,
    "edema": 0.07,
    "endotracheal_tube": 0.09,
    "central_venous_catheter": 0.10,
    "rib_fracture": 0.06,
}
NORMAL_SHARE = 0.3


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


@dataclass(eq=False)
class PhantomStudy:
    """A rendered synthetic study: its images (by view) and its truth (``truth.json``)."""

    study_id: str
    site: SiteProfile
    phantom: Phantom
    views: dict[View, RenderedView]
    truth: dict[str, Any] = field(default_factory=dict)


def sample_specs(seed: int, index: int, rng: np.random.Generator) -> list[FindingSpec]:
    """Which findings a study has: none in 30 % of studies, else one to four kinds."""
    if rng.random() < NORMAL_SHARE:
        return []
    codes = list(_WEIGHTS)
    weights = np.asarray([_WEIGHTS[c] for c in codes])
    count = int(min(1 + rng.poisson(0.8), 4))
    chosen = rng.choice(len(codes), size=count, replace=False, p=weights / weights.sum())
    return [FindingSpec(codes[int(i)], (seed, index, 1000 + int(i))) for i in sorted(chosen)]


def sample_patient(anatomy: Anatomy, rng: np.random.Generator) -> tuple[Demographics, Deformation]:
    demographics = sample_demographics(rng)
    pts = anatomy.positions(anatomy.body[:: max(1, anatomy.body.size // 20000)])
    deformation = sample_deformation(
        rng,
        demographics,
        centre=anatomy.lung_centre,
        box_min=pts.min(axis=0),
        box_max=pts.max(axis=0),
    )
    return demographics, deformation


def render_study(
    study_id: str,
    phantom: Phantom,
    site: SiteProfile,
    rng: np.random.Generator,
    *,
    seed: int,
    index: int,
    size: int | None = None,
    extra: dict[str, Any] | None = None,
) -> PhantomStudy:
    """Render a phantom's views for a site and assemble its truth."""
    views: dict[View, RenderedView] = {}
    poses: dict[str, Any] = {}
    wanted = [site.view, View.LL] if site.lateral else [site.view]
    for view in wanted:
        pose = sample_pose(rng, site) if view.frontal else Pose(0.0, 0.0, 0.0)
        poses[view.value] = pose.__dict__
        views[view] = render_view(phantom, view, site, pose, rng, size=size)
    images = [view_truth(phantom, rendered) for rendered in views.values()]
    frontal = images[0]
    zones_of = {f["id"]: f.get("zones", []) for f in frontal["findings"] if f.get("visible", False)}
    truth: dict[str, Any] = {
        "schema": SCHEMA,
        "study_id": study_id,
        "seed": seed,
        "index": index,
        "profile": site.name,
        "patient": {
            "age_years": phantom.demographics.age_years,
            "sex": phantom.demographics.sex,
        },
        "phantom": {"deformation": phantom.deformation.to_dict(), "pose": poses},
        "findings": [finding_truth(f, zones_of.get(f.id)) for f in phantom.findings],
        "images": images,
    }
    if extra:
        truth.update(extra)
    return PhantomStudy(study_id, site, phantom, views, truth)


def make_study(
    anatomy: Anatomy,
    seed: int,
    index: int,
    *,
    site: str | SiteProfile = "standard",
    codes: list[str] | None = None,
    size: int | None = None,
) -> PhantomStudy:
    """Study ``index`` of the set made with ``seed``; ``codes`` fixes its findings."""
    rng = _rng(seed, index)
    if isinstance(site, str):
        if site == "mixed":
            site = list(PROFILES)[int(rng.integers(len(PROFILES)))]
        site = profile(site)
    if codes is None:
        specs = sample_specs(seed, index, rng)
    else:
        unknown = set(codes) - set(FINDING_TYPES)
        if unknown:
            raise ValueError(f"expected codes from {FINDING_TYPES}, got {sorted(unknown)}")
        specs = [FindingSpec(c, (seed, index, 1000 + k)) for k, c in enumerate(codes)]
    study_id = f"s{index:05d}"
    enlarged = any(spec.code == "cardiomegaly" for spec in specs)
    for attempt in range(_ATTEMPTS):
        # A normal heart measures at most 0.5 by definition (and an enlarged one more): a
        # build or pose that breaks that is drawn again, from the next stream.
        draw = rng if attempt == 0 else _rng(seed, index, 100 + attempt)
        demographics, deformation = sample_patient(anatomy, draw)
        phantom = build_phantom(anatomy, specs, deformation, demographics)
        study = render_study(study_id, phantom, site, draw, seed=seed, index=index, size=size)
        ctr = study.truth["images"][0].get("ctr", 0.0)
        if (ctr > CTR_LIMIT) == enlarged and abs(ctr - CTR_LIMIT) >= CTR_MARGIN:
            break
    return study


_ATTEMPTS = 6
CTR_LIMIT = 0.5
CTR_MARGIN = 0.01
