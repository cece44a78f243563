"""Shared helpers of the benchmarks that run on rendered synthetic studies.

Studies are rendered with :func:`radloop.lab.synth.study_writer.make_dataset`, written as DICOM
and read back with :func:`radloop.study.load_study`, so a benchmark runs the same path as a
user; each study folder holds ``dicom/`` and ``truth.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from radloop.study import Study

__all__ = ["load_rendered", "pair_folders", "render"]


def render(
    n: int,
    seed: int,
    out: Path,
    *,
    profile: str,
    pairs: bool = False,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Render ``n`` studies (or prior/current pairs) of ``seed`` into ``out``; the manifest."""
    from radloop.lab.synth.study_writer import make_dataset

    return make_dataset(
        n, seed, out, profile=profile, pairs=pairs, workers=workers, progress=progress
    )


def load_rendered(folder: Path) -> tuple[Study, dict[str, Any]]:
    """A rendered study read back from DICOM, and its ``truth.json``."""
    from radloop.study import load_study

    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return load_study(folder / "dicom"), truth


def pair_folders(manifest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Pair id → {"prior": path, "current": path} of a pairs manifest."""
    by_pair: dict[str, dict[str, str]] = {}
    for entry in manifest["studies"]:
        pair_id, role = entry["path"].split("/")
        by_pair.setdefault(pair_id, {})[role] = entry["path"]
    return by_pair
