"""Small builders for the safety tests: studies from arrays, drafts from findings, phantoms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from radloop.assist import DraftReport, OutputMode
from radloop.models import Generation
from radloop.report import Finding, Report, write
from radloop.study import Image, Series, Study, StudyMetadata


def make_image(pixels: npt.NDArray[np.float32], view_position: str | None = None) -> Image:
    return Image(
        pixels=np.asarray(pixels, dtype=np.float32),
        source=Path("phantom.png"),
        sop_instance_uid="1.2.3.4",
        series_instance_uid="1.2.3",
        pixel_spacing_mm=None,
        spacing_source=None,
        photometric="MONOCHROME2",
        view_position=view_position,
        bits=8,
    )


def make_study(
    pixels: npt.NDArray[np.float32] | None = None,
    metadata: StudyMetadata | None = None,
    uid: str = "1.2.3",
) -> Study:
    image = make_image(pixels if pixels is not None else frontal_phantom())
    return Study(uid, (Series("1.2.3", (image,)),), metadata or StudyMetadata())


def make_draft(findings: Sequence[Finding], texts: Sequence[str] = ()) -> DraftReport:
    generations = tuple(Generation(t, "mock", 0.01, None) for t in texts)
    return DraftReport(
        report=Report(tuple(findings), write(findings), study_instance_uid="1.2.3"),
        generations=generations,
        prompt="",
        prompt_version="test",
        model_id="mock",
        latency_s=0.01,
        output_mode=OutputMode.TEXT,
    )


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def frontal_phantom(size: int = 256, seed: int = 0) -> npt.NDArray[np.float32]:
    """A PA-like image: body, two dark lung fields, a bright mediastinum and spine between."""
    s = (size, size)
    a = np.full(s, 0.05)
    a[_ellipse(s, size * 0.55, size * 0.5, size * 0.5, size * 0.42)] = 0.6
    for cx in (size * 0.3, size * 0.7):
        a[_ellipse(s, size * 0.45, cx, size * 0.3, size * 0.14)] = 0.25
    a[:, int(size * 0.46) : int(size * 0.54)] = np.maximum(
        a[:, int(size * 0.46) : int(size * 0.54)], 0.8
    )
    a += np.random.default_rng(seed).normal(0, 0.02, s)
    return np.clip(a, 0.0, 0.95).astype(np.float32)


def lateral_phantom(size: int = 256, seed: int = 0) -> npt.NDArray[np.float32]:
    """A lateral-like image: one lung field in the middle, the spine at the back (right)."""
    s = (size, size)
    a = np.full(s, 0.05)
    a[_ellipse(s, size * 0.55, size * 0.5, size * 0.5, size * 0.35)] = 0.6
    a[_ellipse(s, size * 0.45, size * 0.5, size * 0.3, size * 0.2)] = 0.25
    a[:, int(size * 0.74) : int(size * 0.8)] = 0.85
    a += np.random.default_rng(seed).normal(0, 0.02, s)
    return np.clip(a, 0.0, 0.95).astype(np.float32)


def ct_phantom(size: int = 256) -> npt.NDArray[np.float32]:
    """An axial CT slice in a lung window: black air, a round white (clipped) body, two sharp
    dark lungs."""
    s = (size, size)
    a = np.zeros(s)
    a[_ellipse(s, size * 0.5, size * 0.5, size * 0.38, size * 0.46)] = 1.0
    for cx in (size * 0.32, size * 0.68):
        a[_ellipse(s, size * 0.48, cx, size * 0.26, size * 0.13)] = 0.15
    return a.astype(np.float32)
