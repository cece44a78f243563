"""``reports:PATH.tgz``: report-only sets, which evaluate radloop's report parser.

The Indiana University chest X-ray reports (``../shared/data/iu-xray-reports-dev.tgz``), one
XML per report, read in memory as ``radloop bench parser`` reads them: the text is the FINDINGS
section, a space, the IMPRESSION section; the truth is the report's MeSH ``major`` tags, whose
heads (text before the first ``/``) map to labels through a labels file (``labels=``, default
``../shared/benchmarks/iu-mesh-labels.json``). Labels map to vocabulary codes (``nodule_mass``
→ ``lung_lesion``, ``support_device`` → ``support_devices``, ``granuloma`` →
``calcified_granuloma``; ``normal`` is not a finding). Every mapped code is labelled on every
report: 1 when a tag names it, else 0. A side named by a tag's modifiers is kept.

Run it with ``--model parser``: the "prediction" is :func:`radloop.report.parse` of the text.
"""

from __future__ import annotations

import json
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from radloop.evaluate.datasets import check_options, option_value, register_dataset
from radloop.evaluate.errors import DatasetError
from radloop.evaluate.types import Case
from radloop.report import Finding
from radloop.study import Study
from radloop.vocabulary import FINDING_CODES, Side

__all__ = ["LABEL_CODES", "ReportSet", "open_reports"]

LABEL_CODES = {
    "nodule_mass": "lung_lesion",
    "support_device": "support_devices",
    "granuloma": "calcified_granuloma",
}
_SIDES = {"left": Side.LEFT, "right": Side.RIGHT, "bilateral": Side.BILATERAL}


def _head_codes(labels_json: Path) -> dict[str, str]:
    try:
        labels = json.loads(labels_json.read_text(encoding="utf-8"))["labels"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(
            'a JSON object {"labels": {label: [MeSH head, ...]}}',
            f"{type(error).__name__}: {error}",
            source=labels_json,
        ) from None
    out = {}
    for label, heads in labels.items():
        code = LABEL_CODES.get(label, label)
        if code not in FINDING_CODES:
            continue  # "normal" and labels without a vocabulary code
        out.update({str(h).strip().lower(): code for h in heads})
    return out


class ReportSet:
    """Report texts with labels from their MeSH tags."""

    image_based = False

    def __init__(self, name: str, cases: list[Case], codes: tuple[str, ...]) -> None:
        self.name = name
        self.description = "radiology reports (IU X-ray), labels from MeSH major tags"
        self._cases = cases
        self.codes = codes

    def cases(self) -> list[Case]:
        return list(self._cases)

    def load_study(self, case: Case) -> Study:
        raise DatasetError(
            "an image dataset",
            "a report-only dataset",
            source=self.name,
            fix="Evaluate it with --model parser.",
        )


def _case(
    member: str, xml: bytes, head_codes: dict[str, str], codes: tuple[str, ...], source: Path
) -> Case:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        raise DatasetError("well-formed report XML", f"{member}: {error}", source=source) from None
    sections = {n.get("Label", ""): (n.text or "") for n in root.iter("AbstractText")}
    text = sections.get("FINDINGS", "") + " " + sections.get("IMPRESSION", "")
    found: dict[str, Side | None] = {}
    for tag in (n.text or "" for n in root.iter("major")):
        head, *rest = tag.split("/")
        code = head_codes.get(head.strip().lower())
        if code is None:
            continue
        sides = {
            _SIDES[m.strip().lower()]
            for part in rest
            for m in part.split(",")
            if m.strip().lower() in _SIDES
        }
        side = (sides.pop() if len(sides) == 1 else Side.BILATERAL) if sides else None
        found.setdefault(code, side)
    id_node = root.find("pmcId")
    report_id = id_node.get("id", member) if id_node is not None else member
    return Case(
        case_id=f"iu-{report_id}",
        source=member,
        labels={code: int(code in found) for code in codes},
        findings=tuple(Finding(c, side=s, source="MeSH tags") for c, s in found.items()),
        attributes={"site": "IU"},
        text=text,
    )


@register_dataset("reports")
def open_reports(path: str, **options: Any) -> ReportSet:
    """Radiology reports (IU X-ray .tgz) labelled by MeSH tags, for the parser."""
    check_options(options, {"labels"}, "reports")
    archive_path = Path(path).expanduser()
    if "labels" not in options:
        raise DatasetError(
            "the MeSH label map of the reports (option labels=FILE)",
            "no labels option",
            source=path,
            fix="Add --data-option labels=../shared/benchmarks/iu-mesh-labels.json.",
        )
    labels = Path(option_value(options, "labels", ""))
    head_codes = _head_codes(labels)
    codes = tuple(sorted(set(head_codes.values())))
    cases = []
    try:
        with tarfile.open(archive_path, mode="r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(".xml"):
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    cases.append(_case(member.name, handle.read(), head_codes, codes, archive_path))
    except (OSError, EOFError, tarfile.TarError) as error:
        raise DatasetError(
            "a .tgz archive of report XML files", str(error), source=archive_path
        ) from None
    return ReportSet(f"reports:{path}", cases, codes)
