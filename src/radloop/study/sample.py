"""The bundled sample study for ``radloop demo``: one synthetic PA chest radiograph and a
matching report. Regenerate with ``python tests/study/make_sample_study.py``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SAMPLE_REPORT_NAME", "SAMPLE_STUDY_NAME", "sample_report_path", "sample_study_path"]

SAMPLE_STUDY_NAME = "chest_pa"
SAMPLE_REPORT_NAME = "sample_report.txt"


def _sample(name: str) -> Path:
    resource = files("radloop").joinpath("data", "samples", name)
    # An installed (not zipped) package is a real folder; the demo needs real paths.
    path = Path(str(resource))
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: expected the bundled sample {name!r}, got no such path. "
            "Reinstall radloop from a wheel or source tree that includes radloop/data/samples."
        )
    return path


def sample_study_path() -> Path:
    """Folder of the sample study's DICOM files (load it with ``load_study``)."""
    return _sample(SAMPLE_STUDY_NAME)


def sample_report_path() -> Path:
    """Plain-text radiology report written for the sample study."""
    return _sample(SAMPLE_REPORT_NAME)
