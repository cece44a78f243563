"""``write(findings) -> text``: standard chest X-ray report language from structured findings.

FINDINGS has one line per section (the vocabulary's ``Category``): Lungs, Pleura, Heart and
mediastinum, Bones, then Devices and Other when they have findings. IMPRESSION lists the
positive findings ranked by urgency (:func:`urgency`): critical ones first (a large one
before the others), then significant ones, then incidental ones (:data:`INCIDENTAL`); or it
says "No acute cardiopulmonary abnormality."

A pneumothorax measured from apex to cupola is large from 30 mm (3 cm, ACCP consensus
statement 2001) and small below (:func:`guideline_severity`). The text states the measurement
itself, never a size word beside it (see below), so a "small" of the model never sits beside
a measurement that makes it large; the cut-off ranks it in the impression.

Each finding is one sentence: "Small left pleural effusion.", "A 12 mm nodule in the right upper
lobe.", "Endotracheal tube with tip 40 mm above the carina.", "No pneumothorax.". Uncertain
findings say "may be present", the phrase of the Brigham and Women's certainty scale for
25–75 % (docs/architecture.md); the safety layer rewrites it once a probability is calibrated.

A size is said once: a measured finding is reported by its measurement, without a severity
word beside it ("A 12 mm left pneumothorax.", never "Small 12 mm pneumothorax", which a
reader would have to reconcile). The one exception keeps the word that decides urgency: a
finding critical only when large (a large pleural effusion, ACR communication rules) that
carries a severity is reported by that word, and its measurement is left out of the text
(it stays on the structured finding). Measurements are said in whole mm from 10 mm up and
with one decimal under 10 mm (``reported_mm``): a radiograph measures no finer.
:func:`as_reported` gives the finding as the text states it.

What the writer can express, so that ``parse(write(findings)) == findings``: any finding
whose side equals the side its zones and lobes imply (when it has any); sizes on findings
that are not devices, at the precision of ``reported_mm``, with ``size_mm`` the largest of
``dimensions_mm`` when those are given, and no severity beside a size (but on a finding
critical when large, a severity and no size);
tip positions on devices with a non-zero distance or none; ``resolved`` only on absent
findings; no uncertain devices. Zones and lobes are written for findings of the lungs and
pleura.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal

from radloop.report.measure import format_mm
from radloop.report.types import Change, Finding, Presence, Severity
from radloop.vocabulary import Category, Criticality, Level, Side, Zone, finding

__all__ = [
    "INCIDENTAL",
    "NOT_COMMENTED",
    "PNEUMOTHORAX_LARGE_MM",
    "SECTIONS",
    "as_reported",
    "describe",
    "guideline_severity",
    "is_critical",
    "reported_mm",
    "urgency",
    "write",
]

SECTIONS: tuple[tuple[Category, str], ...] = (
    (Category.LUNGS, "Lungs"),
    (Category.PLEURA, "Pleura"),
    (Category.HEART_MEDIASTINUM, "Heart and mediastinum"),
    (Category.BONES, "Bones"),
    (Category.DEVICES, "Devices"),
    (Category.OTHER, "Other"),
)
_ALWAYS_WRITTEN = frozenset({Category.LUNGS, Category.PLEURA, Category.HEART_MEDIASTINUM,
                             Category.BONES})  # fmt: skip
NORMAL_IMPRESSION = "No acute cardiopulmonary abnormality."
NOT_COMMENTED = "Not commented."
"""A section the model did not address: never written as normal."""

_CHANGE_SUFFIX = {
    Change.INCREASED: ", increased since the prior study",
    Change.DECREASED: ", decreased since the prior study",
    Change.STABLE: ", stable since the prior study",
}
# "tip at the carina" but "tip in the superior vena cava".
_TIP_PREPOSITION = {"carina": "at", "cavoatrial junction": "at", "gastroesophageal junction": "at"}
_SCOLIOSIS = {Side.RIGHT: "dextroscoliosis", Side.LEFT: "levoscoliosis"}


def is_critical(found: Finding) -> bool:
    """A positive finding that needs urgent communication (ACR practice parameter)."""
    if not found.is_positive:
        return False
    rule = finding(found.code).critical
    if rule is Criticality.ALWAYS:
        return True
    return rule is Criticality.IF_LARGE and found.severity in (Severity.LARGE, Severity.SEVERE)


PNEUMOTHORAX_LARGE_MM = 30.0
"""Apex-to-cupola distance from which a pneumothorax is large (ACCP consensus, 2001)."""

INCIDENTAL = frozenset({
    "calcified_granuloma", "calcified_lymph_node", "aortic_calcification", "tortuous_aorta",
    "scarring", "pleural_other", "hiatal_hernia", "degenerative_change", "bone_deformity",
    "kyphosis", "scoliosis", "osteopenia", "surgical_clips", "sternotomy_wires",
    "prosthetic_valve", "pacemaker", "stimulator", "monitoring_leads", "shunt",
})  # fmt: skip
"""Codes an impression lists last: chronic or expected findings that change no management
today (old granulomas and calcifications, degenerative bone changes, devices left in place)."""


def guideline_severity(found: Finding) -> Severity | None:
    """The size term a guideline gives a measured finding, or None where radloop uses none.

    A pneumothorax with an apex-to-cupola distance (``size_mm``) is large at or above
    :data:`PNEUMOTHORAX_LARGE_MM` and small below it (ACCP consensus, 2001)."""
    if found.code == "pneumothorax" and found.size_mm is not None:
        return Severity.LARGE if found.size_mm >= PNEUMOTHORAX_LARGE_MM else Severity.SMALL
    return None


def urgency(found: Finding, critical: Callable[[Finding], bool] = is_critical) -> int:
    """The rank of a positive finding in the impression, lower first: 0 a large critical
    finding (a large pneumothorax by its severity or by :func:`guideline_severity`), 1 any
    other critical one (``critical``), 2 a significant one, 3 an incidental one."""
    if critical(found):
        size = guideline_severity(found) or found.severity
        return 0 if size in (Severity.LARGE, Severity.SEVERE) else 1
    return 3 if found.code in INCIDENTAL else 2


def reported_mm(value: float) -> float:
    """A measurement at the precision a report states it: whole mm from 10 mm up, one decimal
    under 10 mm, halves rounded up (11.9 → 12, 12.5 → 13, 8.44 → 8.4, 9.96 → 10); never 0."""
    places = Decimal("1") if value >= 9.95 else Decimal("0.1")
    rounded = float(Decimal(repr(float(value))).quantize(places, rounding=ROUND_HALF_UP))
    return max(rounded, 0.1)


def _urgent_if_large(found: Finding) -> bool:
    return found.severity is not None and finding(found.code).critical is Criticality.IF_LARGE


def as_reported(found: Finding) -> Finding:
    """The finding as the writer states it (what ``parse`` reads back from its sentence).

    A measured finding keeps its measurement at :func:`reported_mm` precision and loses the
    severity word; a finding critical only when large keeps its severity and loses the
    measurement; a finding without a measurement is unchanged.
    """
    if found.size_mm is None and not found.dimensions_mm:
        return found
    if _urgent_if_large(found):
        return found.with_(size_mm=None, dimensions_mm=())
    dimensions = tuple(reported_mm(d) for d in found.dimensions_mm)
    size = max(dimensions) if dimensions else reported_mm(found.size_mm or 0.0)
    return found.with_(size_mm=size, dimensions_mm=dimensions, severity=None)


def _zone_levels(found: Finding) -> dict[Side, list[Level]]:
    return {
        side: [level for level in Level if Zone.at(side, level) in found.zones]
        for side in (Side.RIGHT, Side.LEFT)
    }


def _shared_levels(found: Finding) -> list[Level]:
    """Levels with a zone on both sides, unless both lungs are involved whole."""
    sides = _zone_levels(found)
    if any(len(levels) == len(Level) for levels in sides.values()):
        return []
    return [level for level in Level if all(level in v for v in sides.values())]


def _places(found: Finding) -> str:
    """Where the finding is, grouped as a reader says it: every zone of a lung is
    "throughout the left lung" (of both, "throughout both lungs"), one level on both sides
    is "the lower zones"; other zones and lobes are named one by one."""
    zones = set(found.zones)
    sides = _zone_levels(found)
    whole = [side for side, levels in sides.items() if len(levels) == len(Level)]
    names = [lobe.label for lobe in found.lobes]
    throughout = []
    if len(whole) == 2:
        throughout.append("both lungs")
    else:
        throughout += [f"the {side.value} lung" for side in whole]
        both = _shared_levels(found)
        names += [f"{level.value} zones" for level in both]
        names += [
            zone.label
            for zone in Zone
            if zone in zones and zone.side not in whole and zone.level not in both
        ]
    parts = [f"in the {' and '.join(names)}"] if names else []
    parts += [f"throughout {place}" for place in throughout]
    joined = " and ".join(parts)
    return f" {joined}" if joined else ""


def _noun_phrase(found: Finding) -> str:
    """The finding without presence or change words: "small left pleural effusion"."""
    found = as_reported(found)
    entry = finding(found.code)
    name = entry.name
    located = bool(found.zones or found.lobes)
    side = None if located else found.side
    words: list[str] = []
    if _shared_levels(found):
        words.append(Side.BILATERAL.value)  # "bilateral pleural effusion in the lower zones"
    if found.severity is not None:
        words.append(found.severity.value)
    if found.dimensions_mm:
        words.append(" x ".join(format_mm(d) for d in found.dimensions_mm) + " mm")
    elif found.size_mm is not None:
        words.append(f"{format_mm(found.size_mm)} mm")
    if found.code == "scoliosis" and side in _SCOLIOSIS:
        name = _SCOLIOSIS[side]
    elif found.code == "elevated_hemidiaphragm" and side is not None:
        name = f"elevated {side.value} hemidiaphragm"
    elif side is not None:
        words.append(side.value)
    words.append(name)
    phrase = " ".join(words) + _places(found)
    if found.vertebral_level is not None:
        phrase += f" at the level of {found.vertebral_level.value}"
    if found.tip_reference is not None:
        reference = found.tip_reference
        if found.tip_distance_mm is None:
            preposition = _TIP_PREPOSITION.get(reference, "in")
            phrase += f" with tip {preposition} the {reference}"
        else:
            direction = "above" if found.tip_distance_mm > 0 else "below"
            distance = format_mm(abs(found.tip_distance_mm))
            phrase += f" with tip {distance} mm {direction} the {reference}"
    return phrase


def _article(phrase: str) -> str:
    """ "an 8 mm nodule", "an 11 mm nodule", "a 12 mm nodule": by the number's sound."""
    number = phrase.split(" ", 1)[0].split(".")[0]
    return "an" if number.startswith("8") or number in {"11", "18"} else "a"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe(found: Finding) -> str:
    """One report sentence for one finding."""
    phrase = _noun_phrase(found)
    if found.presence is Presence.ABSENT:
        if found.change is Change.RESOLVED:
            return f"Interval resolution of the {phrase}."
        return f"No {phrase}."
    if found.change is Change.NEW:
        phrase = f"new {phrase}"
    if phrase[:1].isdigit():
        phrase = f"{_article(phrase)} {phrase}"
    suffix = _CHANGE_SUFFIX.get(found.change, "") if found.change is not None else ""
    if found.presence is Presence.UNCERTAIN:
        return f"{_capitalised(phrase)} may be present{suffix}."
    return f"{_capitalised(phrase)}{suffix}."


def _impression(
    findings: Iterable[Finding], silent: list[str], critical: Callable[[Finding], bool]
) -> list[str]:
    positive = [f for f in findings if f.is_positive]
    if not positive and silent:
        return [f"No finding stated. Not commented: {', '.join(silent)}."]
    if not positive:
        return [NORMAL_IMPRESSION]
    ordered = sorted(positive, key=lambda f: urgency(f, critical))  # stable within a rank
    return [f"{i}. {describe(f)}" for i, f in enumerate(ordered, start=1)]


def write(
    findings: Iterable[Finding],
    *,
    unaddressed: Iterable[str] = (),
    critical: Callable[[Finding], bool] = is_critical,
) -> str:
    """A report (FINDINGS by section, then IMPRESSION) stating the findings.

    ``critical`` decides which positive findings lead the impression: by default the
    vocabulary's rule (:func:`is_critical`); the safety layer's triage also knows a misplaced
    tube by its tip.

    A section without findings reads "Unremarkable." unless it is in ``unaddressed``
    (``Category`` values: the model did not comment on it), which reads "Not commented.";
    then the impression does not call the study normal either.
    """
    findings = list(findings)
    silent_sections = {Category(c) for c in unaddressed}
    lines = ["FINDINGS:"]
    silent: list[str] = []
    for category, title in SECTIONS:
        sentences = [describe(f) for f in findings if finding(f.code).category is category]
        if not sentences and category not in _ALWAYS_WRITTEN:
            continue
        if not sentences and category in silent_sections:
            silent.append(title.lower())
            lines.append(f"{title}: {NOT_COMMENTED}")
            continue
        lines.append(f"{title}: {' '.join(sentences) if sentences else 'Unremarkable.'}")
    lines += ["", "IMPRESSION:", *_impression(findings, silent, critical)]
    return "\n".join(lines) + "\n"
