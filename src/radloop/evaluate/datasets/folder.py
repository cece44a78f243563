"""``folder:PATH``: images in a folder and a CSV of their labels and attributes.

Two layouts, chosen from the CSV's columns (or ``layout=``):

- ``generic``: a column ``image`` (path relative to the folder); one column per finding code
  of the vocabulary (``pleural_effusion``: 1 present, 0 absent, -1 or empty unknown); an
  optional ``<code>_zones`` column listing the present zones (``right_upper;left_lower``);
  optional ``age``, ``sex``, ``site``, ``view``, ``modality``. Column names can be remapped
  with ``<field>_column=NAME`` options (``image_column=path``, ``site_column=hospital``).
- ``realcxr``: the COVID-19 chest X-ray collection's ``metadata.csv`` as in
  ``../shared/data/realcxr-dev``. Brixia zone scores A–F (0 none, 1 interstitial, 2 and 3
  alveolar; Borghesi and Maroldi, Radiol Med 2020) give opacity (``lung_opacity``) per zone:
  score > 0 is present. Zones as in docs/architecture.md: A right upper, B right middle,
  C right lower, D left upper, E left middle, F left lower. A study is opacity-positive when
  any zone scores > 0, negative when every zone scores 0 or the row's finding is ``No
  Finding``, and unknown otherwise. The site is the country of ``location``; CT rows and
  lateral views are kept as cases for the scope guard (they should be refused) but carry no
  labels; rows without a view say nothing about scope.

Either layout may carry per-film laboratory values as ``<test>_val`` and ``<test>_offset``
columns (``../shared/data/hannover-dev``): each case's study then carries them as clinical
context, made into FHIR Observations with LOINC codes dated relative to the film
(:mod:`radloop.context.labcsv`), so the drafting prompt gives them with their dates.
``context=0`` leaves them out.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radloop.evaluate.datasets import (
    check_options,
    option_value,
    register_dataset,
    require_folder,
)
from radloop.evaluate.errors import DatasetError
from radloop.evaluate.types import Case
from radloop.report import Finding
from radloop.study import Study
from radloop.vocabulary import FINDING_CODES, Side, Zone

__all__ = ["BRIXIA_ZONES", "FolderDataset", "country_of", "open_folder"]

BRIXIA_ZONES: dict[str, Zone] = {
    "A": Zone.RIGHT_UPPER,
    "B": Zone.RIGHT_MIDDLE,
    "C": Zone.RIGHT_LOWER,
    "D": Zone.LEFT_UPPER,
    "E": Zone.LEFT_MIDDLE,
    "F": Zone.LEFT_LOWER,
}
_FIELDS = ("image", "age", "sex", "site", "view", "modality")
_RIGHT = {Zone.RIGHT_UPPER, Zone.RIGHT_MIDDLE, Zone.RIGHT_LOWER}


def country_of(location: str) -> str | None:
    """The last comma-separated part of a location (``Milan, Italy`` → ``Italy``)."""
    part = location.split(",")[-1].strip()
    return part if part and part != "?" else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _label(value: str | None) -> int | None:
    number = _number(value)
    if number is None or number < 0:
        return None
    return int(number > 0)


def _modality(value: str) -> str | None:
    """CSV words to DICOM Modality (0008,0060): ``X-ray`` is a radiograph (``DX``)."""
    word = value.strip().upper()
    if not word:
        return None
    return {"X-RAY": "DX", "XRAY": "DX", "CXR": "DX"}.get(word, word)


def _view(value: str) -> str | None:
    """CSV view words to DICOM ViewPosition (0018,5101)."""
    word = value.strip().upper()
    if word in ("PA", "AP", "LL", "RL"):
        return word
    if word.startswith("AP"):
        return "AP"
    if word in ("L", "LAT", "LATERAL"):
        return "LL"
    return None


def _side(zones: set[Zone]) -> Side | None:
    if not zones:
        return None
    right = bool(zones & _RIGHT)
    left = bool(zones - _RIGHT)
    return Side.BILATERAL if right and left else Side.RIGHT if right else Side.LEFT


class FolderDataset:
    """Images listed in a CSV with labels and attributes (see the module docstring)."""

    image_based = True

    def __init__(
        self,
        name: str,
        root: Path,
        rows: list[dict[str, str]],
        layout: str,
        columns: Mapping[str, str],
        context: bool = True,
    ) -> None:
        from radloop.context.labcsv import has_lab_columns

        self.name = name
        self.root = root
        self.layout = layout
        self._rows = rows
        self._columns = columns
        header = set(rows[0]) if rows else set()
        self.lab_context = context and has_lab_columns(header)
        if layout == "realcxr":
            self.codes: tuple[str, ...] = ("lung_opacity",)
            self.description = (
                "real chest X-rays (COVID-19 collection); opacity per lung zone from "
                "radiologists' Brixia scores, study-level opacity from any zone > 0"
            )
        else:
            self.codes = tuple(c for c in FINDING_CODES if c in header and c != "no_finding")
            self.description = f"images with CSV labels for {', '.join(self.codes) or 'nothing'}"

    def _get(self, row: Mapping[str, str], field: str) -> str:
        return (row.get(self._columns.get(field, field)) or "").strip()

    def cases(self) -> list[Case]:
        make = self._realcxr_case if self.layout == "realcxr" else self._generic_case
        return [make(i, row) for i, row in enumerate(self._rows)]

    def _attributes(self, row: Mapping[str, str]) -> dict[str, str | float | None]:
        site = self._get(row, "site")
        if self.layout == "realcxr":
            site = country_of(self._get(row, "site")) or ""
        return {
            "age": _number(self._get(row, "age")),
            "sex": self._get(row, "sex").upper()[:1] or None,
            "site": site or None,
            "view": _view(self._get(row, "view")) or (self._get(row, "view") or None),
            "modality": _modality(self._get(row, "modality")),
        }

    def _generic_case(self, index: int, row: Mapping[str, str]) -> Case:
        labels = {code: _label(row.get(code)) for code in self.codes}
        zone_labels: dict[str, dict[str, int]] = {}
        findings = []
        for code in self.codes:
            listed = row.get(f"{code}_zones", "").strip()
            zones = {Zone(z.strip()) for z in listed.split(";") if z.strip()} if listed else set()
            if labels[code] == 1:
                findings.append(
                    Finding(
                        code, side=_side(zones), zones=tuple(sorted(zones)), source="dataset labels"
                    )
                )
            if labels[code] == 0 or (labels[code] == 1 and zones):
                zone_labels[code] = {z.value: int(z in zones) for z in Zone}
        image = self._get(row, "image")
        return Case(
            case_id=f"{index:05d}-{Path(image).stem}",
            source=str(self.root / image),
            labels=labels,
            findings=tuple(findings),
            zone_labels=zone_labels,
            attributes=self._attributes(row),
        )

    def _realcxr_case(self, index: int, row: Mapping[str, str]) -> Case:
        attributes = self._attributes(row)
        frontal = attributes["modality"] == "DX" and attributes["view"] in ("PA", "AP")
        outside = (
            attributes["modality"] not in ("DX", None)
            or attributes["view"] == "LL"
            or (self._get(row, "view").upper() in ("AXIAL", "CORONAL", "SAGITTAL"))
        )
        expected = "accepted" if frontal else "refused" if outside else None
        scores = {letter: _number(row.get(f"brixia_{letter}")) for letter in BRIXIA_ZONES}
        scored = frontal and all(v is not None for v in scores.values())
        label: int | None = None
        zone_labels: dict[str, dict[str, int]] = {}
        findings: tuple[Finding, ...] = ()
        if scored:
            zones = {BRIXIA_ZONES[k] for k, v in scores.items() if v is not None and v > 0}
            zone_labels["lung_opacity"] = {z.value: int(z in zones) for z in Zone}
            label = int(bool(zones))
            if zones:
                findings = (
                    Finding(
                        "lung_opacity",
                        side=_side(zones),
                        zones=tuple(sorted(zones)),
                        source="Brixia score",
                    ),
                )
        elif frontal and row.get("finding", "").strip().lower() == "no finding":
            label = 0
        image = self._get(row, "image")
        return Case(
            case_id=f"{index:05d}-{Path(image).stem}",
            source=str(self.root / image),
            labels={"lung_opacity": label},
            findings=findings,
            zone_labels=zone_labels,
            attributes={**attributes, "expected_scope": expected},
        )

    def load_study(self, case: Case) -> Study:
        """The image with the CSV's modality, view, age and sex as its metadata."""
        from radloop.study import load_study

        study = load_study(case.source)
        a = case.attributes
        sex = a.get("sex")
        metadata = dataclasses.replace(
            study.metadata,
            modality=str(a["modality"]) if a.get("modality") else study.metadata.modality,
            view_position=str(a["view"]) if a.get("view") else study.metadata.view_position,
            patient_age=float(a["age"]) if isinstance(a.get("age"), float) else None,  # type: ignore[arg-type]
            patient_sex=sex if sex in ("M", "F", "O") else None,  # type: ignore[arg-type]
        )
        study = dataclasses.replace(study, metadata=metadata)
        if self.lab_context:
            study = self._with_labs(study, case)
        return study

    def _with_labs(self, study: Study, case: Case) -> Study:
        """The study with its row's lab values as clinical context (see the module docstring)."""
        from radloop.context import with_items
        from radloop.context.labcsv import items_for_row

        index = int(case.case_id.split("-", 1)[0])
        row = self._rows[index]
        if str(self.root / self._get(row, "image")) != case.source:
            return study  # not this dataset's case: no context rather than another film's
        return with_items(study, items_for_row(row, source=f"{self.root.name} metadata.csv"))


@register_dataset("folder")
def open_folder(path: str, **options: Any) -> FolderDataset:
    """A folder of images with a CSV of labels (generic columns, or the realcxr layout)."""
    check_options(
        options, {"csv", "layout", "context"} | {f"{f}_column" for f in _FIELDS}, "folder"
    )
    root = require_folder(path, "images and a metadata CSV")
    csv_name = option_value(options, "csv", "metadata.csv")
    csv_path = root / csv_name
    if not csv_path.is_file():
        raise DatasetError(
            f"a CSV {csv_name} in the folder",
            "no such file",
            source=root,
            fix="Name another with --data-option csv=FILE.",
        )
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DatasetError("a CSV with a header and at least one row", "no rows", source=csv_path)
    header = set(rows[0])
    layout = option_value(options, "layout", "realcxr" if "brixia_A" in header else "generic")
    if layout not in ("generic", "realcxr"):
        raise DatasetError("layout generic or realcxr", repr(layout), source=csv_path)
    columns = {f: str(options.get(f"{f}_column", f)) for f in _FIELDS}
    if layout == "realcxr":
        columns["site"] = str(options.get("site_column", "location"))
    if columns["image"] not in header:
        raise DatasetError(
            f"an image column {columns['image']!r}",
            f"columns {', '.join(sorted(header))}",
            source=csv_path,
            fix="Name it with --data-option image_column=NAME.",
        )
    unknown_zones = [
        v
        for r in rows
        for k, v in r.items()
        if k.endswith("_zones") and v
        for z in v.split(";")
        if z.strip() and z.strip() not in {x.value for x in Zone}
    ]
    if unknown_zones:
        raise DatasetError(
            f"zones among {', '.join(z.value for z in Zone)}",
            repr(unknown_zones[0]),
            source=csv_path,
        )
    context = str(options.get("context", "1")).strip().lower() not in ("0", "false", "no")
    return FolderDataset(f"folder:{path}", root, rows, layout, columns, context)
