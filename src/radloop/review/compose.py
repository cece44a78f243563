"""The reporting flow's text tools: a finding added by the reader, templates, macros.

Templates per exam type (:func:`exam_template`): "Normal chest" for a PA (and lateral) study,
the writer's report of no findings; "Portable AP chest" for an AP film, the same with a
"Lines and tubes" line first (where the devices of a bedside film are stated; "Add finding"
writes a device there) and the heart read for an AP projection, which magnifies it.

"Add finding" builds a structured finding from radloop's vocabulary (code, side, lung level,
size word), writes it as the report writer would, and checks that the parser reads the
sentence back as the same finding, so what the reader adds to the text is what is signed
(the signed findings of a text edited by hand are the parser's reading of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radloop.errors import InputError

__all__ = [
    "LEVELS",
    "MACROS",
    "SIDES",
    "SIZES",
    "ExamTemplate",
    "FindingChoice",
    "compose_finding",
    "exam_template",
    "finding_choices",
    "normal_text",
]

SIDES = ("right", "left", "bilateral")
LEVELS = ("upper", "middle", "lower")
SIZES = ("small", "moderate", "large")

MACROS: tuple[tuple[str, str], ...] = (
    ("No change", "No interval change since the prior study."),
    ("No pneumothorax", "No pneumothorax."),
    ("No effusion", "No pleural effusion."),
    ("Heart normal", "Heart size is normal."),
    ("Lines and tubes", "No lines or tubes."),
    ("Clinical correlation", "Correlation with the clinical findings is advised."),
)
"""(label, sentence): inserted at the caret of the report text by the study page."""


@dataclass(frozen=True)
class FindingChoice:
    """One entry of the "Add finding" list: a vocabulary code the reader can add."""

    code: str
    name: str
    lateral: bool
    section: str  # the FINDINGS line it is written on ("Lungs", "Pleura", ...)


def finding_choices() -> list[FindingChoice]:
    """Every finding of the vocabulary but "no finding", by name."""
    from radloop.report.writer import SECTIONS
    from radloop.vocabulary.findings import FINDING_CODES

    titles = dict(SECTIONS)
    found = [
        FindingChoice(code, entry.name, entry.lateral, titles.get(entry.category, "Other"))
        for code, entry in FINDING_CODES.items()
        if code != "no_finding"
    ]
    return sorted(found, key=lambda c: c.name.lower())


def normal_text() -> str:
    """The normal chest template: the writer's report of no findings."""
    from radloop.report import write

    return write([]).strip()


@dataclass(frozen=True)
class ExamTemplate:
    """A normal report template for one exam type: its button label and its text."""

    label: str
    text: str


LINES_AND_TUBES = "Lines and tubes"
"""The FINDINGS line of the portable AP template where devices are stated."""


def _portable_ap_text() -> str:
    lines = normal_text().splitlines()
    lines.insert(1, f"{LINES_AND_TUBES}: None.")
    return "\n".join(
        "Heart and mediastinum: Unremarkable for an AP projection."
        if line.startswith("Heart and mediastinum:")
        else line
        for line in lines
    )


def exam_template(view: str | None) -> ExamTemplate:
    """The template for a study by its view (DICOM ViewPosition): "Portable AP chest" for
    AP (or AP semi-erect, supine AP), "Normal chest" for PA, lateral or an unrecorded view."""
    if view is not None and view.strip().upper().split(" ")[0] == "AP":
        return ExamTemplate("Portable AP chest", _portable_ap_text())
    return ExamTemplate("Normal chest", normal_text())


def compose_finding(
    code: str, side: str | None = None, level: str | None = None, size: str | None = None
) -> dict[str, Any]:
    """``{"sentence", "finding"}`` for a finding the reader adds; InputError for a code not
    in the vocabulary, a side, level or size word not offered, a level without a side, or a
    sentence the parser would not read back as the same finding."""
    from radloop.report import Finding, parse
    from radloop.report.writer import describe
    from radloop.vocabulary.findings import FINDING_CODES

    entry = FINDING_CODES.get(code)
    if entry is None or code == "no_finding":
        raise InputError("a finding code of radloop's vocabulary", repr(code), source="code")
    for value, allowed, name in (
        (side, SIDES, "side"),
        (level, LEVELS, "level"),
        (size, SIZES, "size"),
    ):
        if value is not None and value not in allowed:
            raise InputError(f"one of {', '.join(allowed)}", repr(value), source=name)
    if side is not None and not entry.lateral:
        raise InputError(f"no side for {entry.name}", repr(side), source="side")
    if level is not None and side is None:
        raise InputError("a side with a lung level", "a level without a side", source="level")
    sides = ("right", "left") if side == "bilateral" else (side,) if side else ()
    zones = [f"{s}_{level}" for s in sides] if level else []
    data: dict[str, Any] = {"code": code}
    if side:
        data["side"] = side
    if zones:
        data["zones"] = zones
    if size:
        data["severity"] = size
    finding = Finding.from_dict(data)
    sentence = describe(finding)
    read = parse(f"FINDINGS: {sentence}")
    same = (
        len(read) == 1
        and read[0].code == finding.code
        and read[0].side == finding.side
        and set(read[0].zones) == set(finding.zones)
        and read[0].severity == finding.severity
    )
    if not same:
        got = ", ".join(f.code for f in read) or "nothing"
        raise InputError(
            f"a sentence read back as {code}", f"{sentence!r} read as {got}", source="finding"
        )
    return {"sentence": sentence, "finding": finding.to_dict()}


def reporting_tools(detail: dict[str, Any]) -> dict[str, Any]:
    """What the study page's reporting tools need: the "Add finding" choices, the template
    of the study's exam type (by its view), the macros, and, for a text edited by hand and not
    yet signed, the findings the parser reads in it (what signing would record)."""
    from radloop.report import parse
    from radloop.report.writer import describe

    template = exam_template(detail.get("view"))
    read: list[str] | None = None
    if detail.get("text_edited") and not detail.get("signed"):
        read = [describe(f) for f in parse(detail.get("text") or "")]
    return {
        "finding_choices": finding_choices(),
        "finding_sides": SIDES,
        "finding_levels": LEVELS,
        "finding_sizes": SIZES,
        "normal_template": template.text,
        "template_label": template.label,
        "macros": MACROS,
        "text_findings": read,
    }
