"""Where the project's shared test data lies: ``../shared`` beside the repository.

The collections there (realcxr-dev, hannover-dev, the IU reports and their label map) are never
copied into the repository; tests read them where they lie. Tests use the ``shared`` fixture
(tests/conftest.py), or :func:`shared_path` where a module-level skip needs the answer.
"""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
"""``../shared`` beside the repository (as on a developer's machine and in CI)."""


def shared_path(relative: str) -> Path | None:
    """``../shared/<relative>`` when it exists, else None."""
    path = SHARED / relative
    return path if path.exists() else None
