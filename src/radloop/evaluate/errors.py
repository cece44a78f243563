"""Typed errors of ``radloop.evaluate``: bad dataset specifications and run folders."""

from __future__ import annotations

from radloop.errors import InputError, RadloopError

__all__ = ["DatasetError", "EvaluationError", "RunFolderError", "UnknownDatasetError"]


class EvaluationError(RadloopError):
    """Base of the errors ``radloop eval`` raises on purpose."""


class DatasetError(InputError, EvaluationError):
    """A dataset that cannot be read: a missing folder, a CSV without its columns."""


class UnknownDatasetError(EvaluationError, KeyError):
    """A dataset kind that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunFolderError(InputError, EvaluationError):
    """An output folder that holds another run (another model or dataset)."""
