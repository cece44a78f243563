"""Labelled datasets for ``radloop eval``, each a registry entry named by its kind.

A dataset is given on the command line as ``KIND:PATH`` (``synth:test``, ``folder:DIR``,
``mimic:DIR``, ``chexpert:DIR``); options travel as ``key=value`` pairs. A dataset lists its
:class:`~radloop.evaluate.types.Case` records (truth and attributes) and reads the study of a
case; report-only datasets carry the report text instead of images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from radloop.evaluate.errors import DatasetError, UnknownDatasetError
from radloop.evaluate.types import Case
from radloop.registry import Registry
from radloop.study import Study

__all__ = [
    "DATASETS",
    "Dataset",
    "available_datasets",
    "open_dataset",
    "register_dataset",
]


class Dataset(Protocol):
    """What the runner needs of a dataset."""

    @property
    def name(self) -> str:
        """``KIND:PATH`` as given, for the report."""
        ...

    @property
    def description(self) -> str:
        """One sentence on where the labels come from."""
        ...

    @property
    def codes(self) -> tuple[str, ...]:
        """The finding codes the dataset labels."""
        ...

    @property
    def image_based(self) -> bool:
        """False for report-only sets (the parser is evaluated, not a vision model)."""
        ...

    def cases(self) -> list[Case]:
        """Every case, in a fixed order."""
        ...

    def load_study(self, case: Case) -> Study:
        """The study of ``case`` with its metadata (as DICOM tags would give them)."""
        ...


DatasetFactory = Callable[..., Dataset]

DATASETS: Registry[Dataset] = Registry(
    "dataset",
    "radloop.datasets",
    unknown_error=UnknownDatasetError,
    builtins={
        "folder": "radloop.evaluate.datasets.folder",
        "mimic": "radloop.evaluate.datasets.public",
        "chexpert": "radloop.evaluate.datasets.public",
        "reports": "radloop.evaluate.datasets.reports",
    },
)


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Register a dataset kind: ``factory(path: str, **options) -> Dataset``."""
    return DATASETS.register(name)


def available_datasets() -> list[str]:
    """Every dataset kind: built-in, registered, or from an entry point."""
    return DATASETS.names()


def open_dataset(spec: str, **options: Any) -> Dataset:
    """The dataset ``KIND:PATH`` (``synth:test``, ``folder:../shared/data/realcxr-dev``)."""
    kind, sep, path = spec.partition(":")
    if not sep or not kind or not path:
        raise DatasetError(
            "a dataset as KIND:PATH, for example synth:test or folder:DIR",
            repr(spec),
            fix=f"Kinds: {', '.join(available_datasets())}.",
        )
    return DATASETS.factory(kind.lower())(path, **options)


def option_value(options: Mapping[str, Any], key: str, default: str) -> str:
    """A string option with its default (options arrive as strings from the CLI)."""
    value = options.get(key, default)
    return str(value)


def check_options(options: Mapping[str, Any], known: set[str], kind: str) -> None:
    """Refuse options a dataset kind does not take (a typo would otherwise be ignored)."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise DatasetError(
            f"options of a {kind} dataset among {', '.join(sorted(known))}",
            ", ".join(unknown),
        )


def require_folder(path: str | Path, what: str) -> Path:
    """``path`` as an existing folder, or a :class:`DatasetError` saying what was expected."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"a folder with {what}", f"{folder} (no such folder)", source=folder)
    return folder
