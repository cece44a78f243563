"""Fixtures every test may use: the project's shared test data (``../shared``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sharedkit import shared_path


@pytest.fixture
def shared() -> Callable[[str], Path]:
    """``shared("data/realcxr-dev")``: the path, or the test is skipped saying what is absent."""

    def find(relative: str) -> Path:
        path = shared_path(relative)
        if path is None:
            pytest.skip(f"../shared/{relative} is not here (the project's shared test data)")
        return path

    return find
