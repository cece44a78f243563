"""Fixtures for the study tests; the file builders are in ``studykit``."""

from __future__ import annotations

from pathlib import Path

import pytest
from studykit import make_dataset, save


@pytest.fixture
def dicom_file(tmp_path: Path) -> Path:
    return save(make_dataset(), tmp_path / "image.dcm")
