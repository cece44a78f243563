"""Errors of the model layer: unknown backends, bad options, servers that fail or time out."""

from __future__ import annotations

from pathlib import Path

from radloop.errors import InputError, RadloopError

__all__ = [
    "CheckpointNotFoundError",
    "MissingReferenceModelError",
    "ModelConnectionError",
    "ModelError",
    "ModelOptionError",
    "ModelResponseError",
    "ModelServerError",
    "ModelTimeoutError",
    "UnknownModelError",
]


class ModelError(RadloopError):
    """Base of the errors a model backend raises on purpose."""


class UnknownModelError(ModelError, KeyError):
    """A backend name that is neither built in nor registered through an entry point."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelOptionError(ModelError, ValueError):
    """An option a backend does not take, or a value it cannot use."""


class ModelServerError(ModelError):
    """A model server answered with an error status (after any retries)."""

    def __init__(self, message: str, *, status_code: int | None = None, url: str = "") -> None:
        self.status_code = status_code
        self.url = url
        super().__init__(message)


class ModelConnectionError(ModelServerError):
    """A model server could not be reached (after any retries)."""


class ModelTimeoutError(ModelError, TimeoutError):
    """A model server took longer than the configured timeout to answer."""


class ModelResponseError(ModelError, ValueError):
    """A model server answered 200 with a body that is not a chat completion."""


class CheckpointNotFoundError(InputError):
    """A local checkpoint path that is not a directory holding a model."""

    def __init__(self, path: str | Path, received: str) -> None:
        super().__init__(
            "a local checkpoint directory (with config.json)",
            received,
            source=path,
            fix="radloop never downloads weights: fetch the checkpoint yourself "
            "(for example `hf download ORG/NAME --local-dir DIR` on a machine with access) "
            "and pass the directory.",
        )


class MissingReferenceModelError(ModelError):
    """radloop's own reference model has not been built in this installation."""
