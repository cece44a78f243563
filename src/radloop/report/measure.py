"""Measurements in report text: sizes ("2.3 cm", "2 x 3 cm"), device tip positions, levels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from radloop.vocabulary import VertebralLevel

__all__ = [
    "EXTENT_MIN_RATIO",
    "HEART_MIN_RATIO",
    "TIP_REFERENCES",
    "LevelMention",
    "SizeMention",
    "TipMention",
    "extent_change",
    "extent_min_ratio",
    "find_levels",
    "find_sizes",
    "find_tips",
    "format_mm",
]

# Landmarks a tube or line tip is placed against, by the name radloop uses for each.
TIP_REFERENCES: dict[str, str] = {
    "carina": "carina",
    "cavoatrial junction": "cavoatrial junction",
    "cavo-atrial junction": "cavoatrial junction",
    "caval atrial junction": "cavoatrial junction",
    "caval-atrial junction": "cavoatrial junction",
    "superior vena cava": "superior vena cava",
    "svc": "superior vena cava",
    "right atrium": "right atrium",
    "thoracic inlet": "thoracic inlet",
    "clavicular heads": "clavicular heads",
    "clavicles": "clavicular heads",
    "gastroesophageal junction": "gastroesophageal junction",
    "ge junction": "gastroesophageal junction",
    "stomach": "stomach",
}
_REFERENCE = "|".join(sorted((re.escape(k) for k in TIP_REFERENCES), key=len, reverse=True))

EXTENT_MIN_RATIO = 1.2
"""Two measurements of one finding's extent (a volume, a rim width, a density) differ when one
is at least 20 % larger than the other: below that, radiographic estimates do not separate
real change from measurement variability."""

HEART_MIN_RATIO = 1.05
"""The cardiothoracic ratio is measured more precisely (about ±0.02 on 0.5) and changes less:
5 % either way is a change."""


def extent_min_ratio(code: str) -> float:
    """The smallest ratio between two extents of ``code`` that counts as a change."""
    return HEART_MIN_RATIO if code == "cardiomegaly" else EXTENT_MIN_RATIO


def extent_change(before: float, now: float, *, min_ratio: float = EXTENT_MIN_RATIO) -> str:
    """``"increased"``, ``"decreased"`` or ``"stable"`` between two positive extents."""
    if before <= 0 or now <= 0:
        raise ValueError(f"expected two positive extents, got {before} and {now}")
    if now >= before * min_ratio:
        return "increased"
    if now * min_ratio <= before:
        return "decreased"
    return "stable"


_UNIT_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "cm": 10.0, "centimeter": 10.0}
_UNIT_MM["centimeters"] = 10.0
_NUMBER = r"\d+(?:\.\d+)?"
_UNIT = r"(?:mm|cm|millimeters?|centimeters?)"


@dataclass(frozen=True, slots=True)
class SizeMention:
    """A size with every dimension in mm, largest first as written order is kept."""

    start: int
    end: int
    dimensions_mm: tuple[float, ...]

    @property
    def size_mm(self) -> float:
        return max(self.dimensions_mm)


@dataclass(frozen=True, slots=True)
class TipMention:
    """Where a device tip lies: distance in mm from a landmark (positive above it)."""

    start: int
    end: int
    reference: str
    distance_mm: float | None


@dataclass(frozen=True, slots=True)
class LevelMention:
    start: int
    end: int
    level: VertebralLevel


_SIZE = re.compile(
    rf"(?<![\w.])(?P<a>{_NUMBER})\s*(?P<ua>{_UNIT})?"
    rf"(?:\s*(?:x|×|by)\s*(?P<b>{_NUMBER})\s*(?P<ub>{_UNIT})?)?"
    rf"(?:\s*(?:x|×|by)\s*(?P<c>{_NUMBER}))?"
    rf"\s*(?P<unit>{_UNIT})?(?![\w])"
)

_TIP_DISTANCE = re.compile(
    rf"(?P<n>{_NUMBER})\s*(?P<unit>{_UNIT})\s+"
    r"(?P<dir>above|below|superior to|inferior to|proximal to|distal to|from|beyond)\s+"
    rf"(?:the\s+)?(?:level\s+of\s+the\s+)?(?P<ref>{_REFERENCE})\b"
)
_TIP_AT = re.compile(
    r"\btips?\b[^.;]{0,60}?\b(?:at|in|within|into|over|overlies|overlying|near|projects?"
    r"\s+over|terminat\w*\s+(?:at|in|over))\s+(?:the\s+)?(?:(?:expected\s+)?"
    r"(?:level|region|location)\s+of\s+the\s+)?(?:(?:upper|lower|mid|distal|proximal)\s+)?"
    rf"(?P<ref>{_REFERENCE})\b"
)
_LEVEL = re.compile(r"(?<![\w-])t(?P<n>1[0-2]|[1-9])(?![\w-])")


def _mm(number: str, unit: str | None) -> float:
    factor = _UNIT_MM.get(unit or "mm", 1.0)
    return round(float(number) * factor, 1)


def find_sizes(lower: str) -> list[SizeMention]:
    """Sizes with a unit, in mm ("2 x 3 cm" → (20.0, 30.0))."""
    sizes: list[SizeMention] = []
    for match in _SIZE.finditer(lower):
        unit = match.group("unit") or match.group("ub") or match.group("ua")
        if unit is None:
            continue
        numbers = [(match.group(k), match.group("u" + k) if k != "c" else None) for k in "abc"]
        dims = tuple(_mm(n, u or unit) for n, u in numbers if n is not None)
        if not dims or max(dims) <= 0:
            continue
        sizes.append(SizeMention(match.start(), match.end(), dims))
    return sizes


def find_tips(lower: str) -> list[TipMention]:
    """Device tip positions: "4 cm above the carina", "tip in the SVC"."""
    tips: list[TipMention] = []
    for match in _TIP_DISTANCE.finditer(lower):
        distance = _mm(match.group("n"), match.group("unit"))
        if match.group("dir") in {"below", "inferior to", "distal to", "beyond"}:
            distance = -distance
        reference = TIP_REFERENCES[match.group("ref")]
        tips.append(TipMention(match.start(), match.end(), reference, distance))
    for match in _TIP_AT.finditer(lower):
        if any(t.start <= match.start("ref") < t.end for t in tips):
            continue
        reference = TIP_REFERENCES[match.group("ref")]
        tips.append(TipMention(match.start("ref"), match.end(), reference, None))
    return sorted(tips, key=lambda t: t.start)


def find_levels(lower: str) -> list[LevelMention]:
    """Thoracic vertebral levels ("T7")."""
    return [
        LevelMention(m.start(), m.end(), VertebralLevel(f"T{m.group('n')}"))
        for m in _LEVEL.finditer(lower)
    ]


def format_mm(value: float) -> str:
    """A length in mm as a report writes it: 12 → "12", 12.5 → "12.5"."""
    return f"{value:g}" if value != int(value) else str(int(value))
