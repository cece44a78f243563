"""Fixtures of the reference model's tests: a tiny rendered training set."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four synthetic studies (one shard) rendered into the training format."""
    from radloop.lab.synth import AnatomySourceMissingError
    from radloop.lab.training.reference.data import build_dataset

    out = tmp_path_factory.mktemp("reference-data")
    try:
        return build_dataset(out, 4, seed=5, workers=1)
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")
