"""Training recipes: the reference model, the scope classifier and the OOD reference."""

from __future__ import annotations

from typing import Any

from radloop.errors import MissingExtraError

__all__ = ["require_torch"]


def require_torch(feature: str) -> Any:
    """The ``torch`` module, imported when a recipe first needs it; without it, an error that
    names ``feature`` and the extra to install (``radloop[train]``)."""
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the install
        raise MissingExtraError("torch", "train", feature) from error
    return torch
