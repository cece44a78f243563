"""Errors of the safety layer: unknown verifiers, bad calibration data and files."""

from __future__ import annotations

from radloop.errors import InputError, RadloopError

__all__ = [
    "CalibrationDataError",
    "SafetyError",
    "UnknownVerifierError",
    "VerifierDataError",
]


class SafetyError(RadloopError):
    """Base of the errors the safety layer raises on purpose."""


class UnknownVerifierError(SafetyError, KeyError):
    """A verifier name that is neither built in nor registered through an entry point."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CalibrationDataError(InputError):
    """Labelled calibration data or a calibration file that cannot be used."""


class VerifierDataError(InputError):
    """Verifier outputs (a table, a JSON file) that are not what the safety layer reads."""
