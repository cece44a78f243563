"""dicom3tools' ``dciodvfy``: validate a DICOM file against its IOD (used for radloop's SR).

``dciodvfy_errors(path)`` is what the tests and ``radloop bench pacs`` count: the lines that
start with "Error". Warnings (``dciodvfy_messages(path).warnings``) are worth reading but do not
fail a file. Install it with Debian's ``dicom3tools`` package.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from radloop.errors import RadloopError

__all__ = [
    "DciodvfyMessages",
    "DciodvfyMissingError",
    "dciodvfy_errors",
    "dciodvfy_messages",
    "dciodvfy_path",
]


class DciodvfyMissingError(RadloopError, FileNotFoundError):
    """dicom3tools' dciodvfy is not installed (Debian: ``apt-get install dicom3tools``)."""


@dataclass(frozen=True)
class DciodvfyMessages:
    errors: list[str]
    warnings: list[str]


def dciodvfy_path() -> str | None:
    """Where dciodvfy is, or None (install Debian's ``dicom3tools``)."""
    return shutil.which("dciodvfy") or (
        "/usr/bin/dciodvfy" if Path("/usr/bin/dciodvfy").is_file() else None
    )


def dciodvfy_messages(path: str | Path, *, timeout_s: float = 60.0) -> DciodvfyMessages:
    """Run ``dciodvfy`` on a DICOM file: its "Error" and "Warning" lines."""
    program = dciodvfy_path()
    if program is None:
        raise DciodvfyMissingError(
            "dciodvfy is not installed; install Debian's dicom3tools (apt-get install dicom3tools)"
        )
    run = subprocess.run(
        [program, str(path)], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    lines = [line.strip() for line in (run.stdout + "\n" + run.stderr).splitlines()]
    errors = [line for line in lines if line.startswith(("Error", "E:"))]
    warnings = [line for line in lines if line.startswith(("Warning", "W:"))]
    return DciodvfyMessages(errors=errors, warnings=warnings)


def dciodvfy_errors(path: str | Path) -> list[str]:
    """The "Error" lines dciodvfy prints for a DICOM file (empty: the file passes).

    Raises :class:`DciodvfyMissingError` where dciodvfy is not installed."""
    return dciodvfy_messages(path).errors
