"""Anatomy used throughout radloop: sides, the six lung zones, lobes and vertebral levels.

Images follow the radiographic convention: the patient's right is on the image's left.
The six zones are the Brixia score zones (Borghesi and Maroldi, Radiol Med 2020): A right
upper, B right middle, C right lower, D left upper, E left middle, F left lower.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Level", "Lobe", "Side", "VertebralLevel", "Zone", "side_of"]


class Side(StrEnum):
    """Laterality of a finding, in the patient's frame."""

    RIGHT = "right"
    LEFT = "left"
    BILATERAL = "bilateral"

    def merge(self, other: Side) -> Side:
        """The side of two findings together: right + left is bilateral."""
        return self if self is other else Side.BILATERAL


class Level(StrEnum):
    """Craniocaudal third of a lung on a frontal radiograph."""

    UPPER = "upper"
    MIDDLE = "middle"
    LOWER = "lower"


class Zone(StrEnum):
    """The six lung zones on a frontal radiograph (equal to the Brixia zones A–F)."""

    RIGHT_UPPER = "right_upper"
    RIGHT_MIDDLE = "right_middle"
    RIGHT_LOWER = "right_lower"
    LEFT_UPPER = "left_upper"
    LEFT_MIDDLE = "left_middle"
    LEFT_LOWER = "left_lower"

    @property
    def side(self) -> Side:
        return Side.RIGHT if self.value.startswith("right") else Side.LEFT

    @property
    def level(self) -> Level:
        return Level(self.value.split("_", 1)[1])

    @property
    def brixia(self) -> str:
        """The Brixia score letter of this zone (A–F)."""
        return "ABCDEF"[list(Zone).index(self)]

    @property
    def label(self) -> str:
        """Words for a report: 'right upper zone'."""
        return f"{self.side.value} {self.level.value} zone"

    @classmethod
    def at(cls, side: Side, level: Level) -> Zone:
        """The zone on one side at one level; a bilateral side has no single zone."""
        if side is Side.BILATERAL:
            raise ValueError("expected side right or left for a single zone, got bilateral")
        return cls(f"{side.value}_{level.value}")

    @classmethod
    def from_brixia(cls, letter: str) -> Zone:
        """The zone for a Brixia letter A–F."""
        index = "ABCDEF".find(letter.strip().upper())
        if index < 0 or len(letter.strip()) != 1:
            raise ValueError(f"expected a Brixia zone letter A–F, got {letter!r}")
        return list(cls)[index]


class Lobe(StrEnum):
    """Lung lobes, with the lingula of the left upper lobe named on its own."""

    RIGHT_UPPER = "right_upper_lobe"
    RIGHT_MIDDLE = "right_middle_lobe"
    RIGHT_LOWER = "right_lower_lobe"
    LEFT_UPPER = "left_upper_lobe"
    LINGULA = "lingula"
    LEFT_LOWER = "left_lower_lobe"

    @property
    def side(self) -> Side:
        return Side.RIGHT if self.value.startswith("right") else Side.LEFT

    @property
    def label(self) -> str:
        """Words for a report: 'right upper lobe', 'lingula'."""
        return self.value.replace("_", " ")

    @property
    def zones(self) -> tuple[Zone, ...]:
        """Zones where this lobe mostly projects on a frontal radiograph.

        Lobes overlap on a projection (the lower lobes reach the mid zones posteriorly), so
        this is the usual projection, not an exact one; the synthetic lab gives exact truth.
        """
        return _LOBE_ZONES[self]


_LOBE_ZONES: dict[Lobe, tuple[Zone, ...]] = {
    Lobe.RIGHT_UPPER: (Zone.RIGHT_UPPER,),
    Lobe.RIGHT_MIDDLE: (Zone.RIGHT_MIDDLE, Zone.RIGHT_LOWER),
    Lobe.RIGHT_LOWER: (Zone.RIGHT_LOWER,),
    Lobe.LEFT_UPPER: (Zone.LEFT_UPPER, Zone.LEFT_MIDDLE),
    Lobe.LINGULA: (Zone.LEFT_MIDDLE, Zone.LEFT_LOWER),
    Lobe.LEFT_LOWER: (Zone.LEFT_LOWER,),
}


class VertebralLevel(StrEnum):
    """Thoracic vertebral levels T1–T12."""

    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    T4 = "T4"
    T5 = "T5"
    T6 = "T6"
    T7 = "T7"
    T8 = "T8"
    T9 = "T9"
    T10 = "T10"
    T11 = "T11"
    T12 = "T12"

    @property
    def number(self) -> int:
        return int(self.value[1:])


def side_of(
    zones: tuple[Zone, ...] | list[Zone], lobes: tuple[Lobe, ...] | list[Lobe]
) -> Side | None:
    """The side implied by zones and lobes together, or None when there are none."""
    sides = {z.side for z in zones} | {lobe.side for lobe in lobes}
    if not sides:
        return None
    if len(sides) == 1:
        return sides.pop()
    return Side.BILATERAL
