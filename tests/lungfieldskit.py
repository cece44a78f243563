"""Shared by the real-film tests: lung-fields readings made by hand, a reader that returns
them, a model folder with a declared real-film domain, and a film unlike the lab's."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from radloop.models.builtin import shipped_model_dir
from radloop.models.images import image_from_pixels
from radloop.models.reference.lungfields import LungFields
from radloop.models.reference.realfilm import REALFILM_DOMAIN
from radloop.study import Image


def two_lungs(
    opaque_rows: slice | None = None,
    *,
    level: float = 0.95,
    distance: float = 1.0,
    shape: tuple[int, int] = (60, 60),
) -> LungFields:
    """A reading with the right lung in the image's columns 0-24 and the left in 35-59 (so
    rows 0-19, 20-39 and 40-59 are the upper, middle and lower zones), a heart between them,
    opacity ``level`` over ``opaque_rows`` of the right lung, and the film at ``distance`` of
    the network's domain reference (in domain up to 2.0)."""
    right = np.zeros(shape, dtype=bool)
    left = np.zeros(shape, dtype=bool)
    right[:, :25], left[:, 35:] = True, True
    heart = np.zeros(shape, dtype=bool)
    heart[30:50, 20:40] = True
    opacity = np.zeros(shape, dtype=np.float32)
    if opaque_rows is not None:
        opacity[opaque_rows, :25] = level
    return LungFields(right, left, heart, opacity, domain_distance=distance, domain_threshold=2.0)


class FixedReader:
    """A lung-fields reader that gives every film the same reading and counts its reads."""

    def __init__(self, fields: LungFields) -> None:
        self.fields = fields
        self.reads = 0

    def read(self, pixels: np.ndarray) -> LungFields:
        self.reads += 1
        return self.fields


def model_with_domain(
    folder: Path,
    findings: list[str],
    *,
    changes: list[str] | None = None,
    opacity_threshold: float = 0.5,
) -> Path:
    """A copy of the shipped model folder whose ``realfilm-domain.json`` admits ``findings``
    (and their change by zone for ``changes``)."""
    shutil.copytree(shipped_model_dir(), folder)
    declared = {
        "findings": findings,
        "changes": changes or [],
        "opacity_threshold": opacity_threshold,
        "collection": "dev",
    }
    (folder / REALFILM_DOMAIN).write_text(json.dumps(declared))
    return folder


def film(seed: int = 3, view: str = "PA") -> Image:
    """A frontal film of noise: nothing like the lab, so outside its domain."""
    pixels = np.random.default_rng(seed).random((200, 180)).astype(np.float32)
    image = image_from_pixels(pixels, source="film.png", uid=f"1.2.3.{seed}")
    return replace(image, view_position=view)
