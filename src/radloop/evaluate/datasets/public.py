"""``mimic:PATH`` and ``chexpert:PATH``: the public datasets' directory layouts, as released.

Nothing is downloaded: PATH is a local copy the user is credentialed for.

- MIMIC-CXR-JPG 2.0 (Johnson et al., PhysioNet 2019): ``mimic-cxr-2.0.0-chexpert.csv`` and
  ``mimic-cxr-2.0.0-metadata.csv`` (plain or ``.gz``) and
  ``files/p<2 digits>/p<subject>/s<study>/<dicom_id>.jpg``. One case per study, read from its
  PA image (else AP, else the first listed). An optional ``mimic-cxr-2.0.0-split.csv``
  restricts to ``split=`` (default: every study).
- CheXpert (Irvin et al., AAAI 2019): ``train.csv``/``valid.csv`` with ``Path``, ``Sex``,
  ``Age``, ``Frontal/Lateral``, ``AP/PA`` and the 14 labels; ``Path`` is relative to the
  folder above the dataset folder (``CheXpert-v1.0-small/valid/patient64541/study1/...``).
  One case per study, read from its frontal image. ``split=valid`` by default.

Labels map to vocabulary codes through each code's CheXpert name. 1 is present, 0 absent;
-1 (uncertain) is unknown by default (``uncertain=ignore``; ``positive`` or ``negative`` is
the U-Ones / U-Zeros policy); an empty cell ("not mentioned") counts as absent, as the
labelers mean it (``blank=unknown`` to exclude it).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Mapping
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
from radloop.vocabulary import FINDING_CODES

__all__ = ["CHEXPERT_CODES", "LabelledImages", "open_chexpert", "open_mimic"]

CHEXPERT_CODES: dict[str, str] = {
    entry.chexpert: entry.code
    for entry in FINDING_CODES.values()
    if entry.chexpert is not None and entry.code != "no_finding"
}


def _open_csv(folder: Path, stem: str) -> Iterator[dict[str, str]]:
    for name in (stem, stem + ".gz"):
        path = folder / name
        if path.is_file():
            raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
            yield from csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
            return
    raise DatasetError(f"{stem} (or {stem}.gz)", "no such file", source=folder)


def _policy(options: Mapping[str, Any]) -> tuple[str, str]:
    uncertain = option_value(options, "uncertain", "ignore")
    blank = option_value(options, "blank", "absent")
    if uncertain not in ("ignore", "positive", "negative"):
        raise DatasetError("uncertain=ignore, positive or negative", repr(uncertain))
    if blank not in ("absent", "unknown"):
        raise DatasetError("blank=absent or unknown", repr(blank))
    return uncertain, blank


def chexpert_labels(row: Mapping[str, str], uncertain: str, blank: str) -> dict[str, int | None]:
    """Vocabulary code → 1/0/None from a row with the 14 CheXpert label columns."""
    out: dict[str, int | None] = {}
    for name, code in CHEXPERT_CODES.items():
        if name not in row:
            continue
        cell = (row.get(name) or "").strip()
        if not cell:
            out[code] = 0 if blank == "absent" else None
            continue
        value = float(cell)
        if value < 0:
            out[code] = {"ignore": None, "positive": 1, "negative": 0}[uncertain]
        else:
            out[code] = int(value > 0)
    return out


class LabelledImages:
    """Studies given as one image path each, with study-level labels and attributes."""

    image_based = True

    def __init__(self, name: str, description: str, cases: list[Case]) -> None:
        self.name = name
        self.description = description
        self._cases = cases
        found = {code for case in cases for code in case.labels}
        self.codes: tuple[str, ...] = tuple(c for c in CHEXPERT_CODES.values() if c in found)

    def cases(self) -> list[Case]:
        return list(self._cases)

    def load_study(self, case: Case) -> Study:
        import dataclasses

        from radloop.study import load_study

        study = load_study(case.source)
        view = case.attributes.get("view")
        sex = case.attributes.get("sex")
        age = case.attributes.get("age")
        return dataclasses.replace(
            study,
            metadata=dataclasses.replace(
                study.metadata,
                modality=study.metadata.modality or "DX",
                view_position=str(view) if view else study.metadata.view_position,
                patient_age=float(age) if isinstance(age, int | float) else None,
                patient_sex=sex if sex in ("M", "F", "O") else None,  # type: ignore[arg-type]
            ),
        )


def _case(
    case_id: str,
    source: Path,
    labels: dict[str, int | None],
    attributes: dict[str, str | float | None],
) -> Case:
    findings = tuple(Finding(code, source="dataset labels") for code, v in labels.items() if v)
    return Case(case_id, str(source), labels, findings, attributes=attributes)


@register_dataset("mimic")
def open_mimic(path: str, **options: Any) -> LabelledImages:
    """MIMIC-CXR-JPG: CheXpert-labeler labels per study, frontal JPEG per study."""
    check_options(options, {"uncertain", "blank", "split"}, "mimic")
    root = require_folder(path, "MIMIC-CXR-JPG (files/ and the mimic-cxr-2.0.0-*.csv files)")
    uncertain, blank = _policy(options)
    split = options.get("split")
    labels_by_study = {
        row["study_id"]: chexpert_labels(row, uncertain, blank)
        for row in _open_csv(root, "mimic-cxr-2.0.0-chexpert.csv")
    }
    keep: set[str] | None = None
    if split:
        keep = {
            r["study_id"]
            for r in _open_csv(root, "mimic-cxr-2.0.0-split.csv")
            if r.get("split") == split
        }
    images: dict[str, list[dict[str, str]]] = {}
    for row in _open_csv(root, "mimic-cxr-2.0.0-metadata.csv"):
        images.setdefault(row["study_id"], []).append(row)
    rank = {"PA": 0, "AP": 1}
    cases = []
    for study_id in sorted(images):
        if study_id not in labels_by_study or (keep is not None and study_id not in keep):
            continue
        rows = sorted(images[study_id], key=lambda r: rank.get(r.get("ViewPosition", ""), 2))
        row = rows[0]
        subject = row["subject_id"]
        source = (
            root
            / "files"
            / f"p{subject[:2]}"
            / f"p{subject}"
            / f"s{study_id}"
            / f"{row['dicom_id']}.jpg"
        )
        view = row.get("ViewPosition") or None
        cases.append(
            _case(
                f"s{study_id}",
                source,
                labels_by_study[study_id],
                {"age": None, "sex": None, "site": None, "view": view},
            )
        )
    if not cases:
        raise DatasetError(
            "studies listed in both the chexpert and metadata CSVs", "none", source=root
        )
    return LabelledImages(f"mimic:{path}", "MIMIC-CXR-JPG, CheXpert-labeler labels", cases)


@register_dataset("chexpert")
def open_chexpert(path: str, **options: Any) -> LabelledImages:
    """CheXpert: radiologist (valid) or labeler (train) labels per study, frontal image."""
    check_options(options, {"uncertain", "blank", "split"}, "chexpert")
    root = require_folder(path, "CheXpert (train.csv / valid.csv and the image folders)")
    uncertain, blank = _policy(options)
    split = option_value(options, "split", "valid")
    csv_path = root / f"{split}.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{split}.csv in the CheXpert folder", "no such file", source=root)
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    by_study: dict[str, dict[str, str]] = {}
    for row in rows:
        if "Path" not in row:
            raise DatasetError("a Path column", f"columns {', '.join(row)}", source=csv_path)
        study_key = str(Path(row["Path"]).parent)
        frontal = row.get("Frontal/Lateral", "Frontal") == "Frontal"
        if study_key not in by_study or (
            frontal and by_study[study_key].get("Frontal/Lateral") != "Frontal"
        ):
            by_study[study_key] = row
    cases = []
    for study_key, row in by_study.items():
        age = row.get("Age", "").strip()
        sex = row.get("Sex", "").strip()[:1].upper() or None
        view = (row.get("AP/PA") or "").strip() or (
            "LL" if row.get("Frontal/Lateral") == "Lateral" else None
        )
        cases.append(
            _case(
                study_key.replace("/", "-"),
                root.parent / row["Path"],
                chexpert_labels(row, uncertain, blank),
                {"age": float(age) if age else None, "sex": sex, "site": None, "view": view},
            )
        )
    return LabelledImages(f"chexpert:{path}", f"CheXpert {split} split", cases)
