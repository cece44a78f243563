"""Shared helpers of the reference model's tests: the lab's anatomy or a skip, render a tiny data
set or skip without it, and check an exported network's ONNX against its PyTorch weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def render_or_skip(build: Callable[[Any, Path], Any], config: Any, out: Path) -> Path:
    """``build(config, out)`` (a recipe's data sets); skips where the lab is not installed."""
    from radloop.lab.synth import AnatomySourceMissingError

    try:
        build(config, out)
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")
    return out


def anatomy_or_skip() -> Any:
    """The lab's anatomy; skips where the lab is not installed."""
    from radloop.lab.synth import AnatomySourceMissingError, load_anatomy

    try:
        return load_anatomy()
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")


def onnx_matches_torch(config: Any, folder: Path, network: Any) -> list[np.ndarray]:
    """Load ``{network.name}.pt`` into the crop design of ``config``, run it and the exported
    ``{network.onnx}`` on the same random crops, assert they agree; the ONNX outputs."""
    import onnxruntime as ort
    import torch

    from radloop.lab.training.reference.nodules_train import _network

    model = _network(config, outputs=len(network.findings)).eval()
    model.load_state_dict(torch.load(folder / f"{network.name}.pt"))
    x = np.random.default_rng(2).random((2, 1, *network.shape)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    got: list[np.ndarray] = ort.InferenceSession(str(folder / network.onnx)).run(None, {"crop": x})
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4, rtol=1e-4)
    assert got[1].shape == (2, len(network.findings), *network.cells)
    return got


def assert_brighter_than_ring(crop: np.ndarray, row: float, col: float, diameter_px: float) -> None:
    """An inserted object's core is brighter in the crop than a ring just outside it."""
    crop = crop.astype(np.float32)
    yy, xx = np.mgrid[: crop.shape[0], : crop.shape[1]]
    d = np.hypot(yy - row, xx - col)
    inner = crop[d <= diameter_px / 4].mean()
    ring = crop[(d >= diameter_px / 2 + 3) & (d <= diameter_px / 2 + 8)].mean()
    assert inner > ring, (row, col, diameter_px, inner, ring)
