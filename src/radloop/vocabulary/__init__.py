"""The chest X-ray finding vocabulary and anatomy: one set of names used by every module."""

from __future__ import annotations

import re
from functools import cache

from radloop.errors import UnknownFindingError
from radloop.vocabulary.anatomy import Level, Lobe, Side, VertebralLevel, Zone, side_of
from radloop.vocabulary.findings import (
    FINDING_CODES,
    REFERENCE_FINDINGS,
    Category,
    Criticality,
    FindingCode,
)

__all__ = [
    "CHEXPERT_LABELS",
    "FINDING_CODES",
    "REFERENCE_FINDINGS",
    "Category",
    "Criticality",
    "FindingCode",
    "Level",
    "Lobe",
    "Side",
    "VertebralLevel",
    "Zone",
    "ancestors",
    "critical_codes",
    "finding",
    "lookup_term",
    "normalize_term",
    "side_of",
    "sized_codes",
]

CHEXPERT_LABELS: tuple[str, ...] = tuple(
    c.chexpert for c in FINDING_CODES.values() if c.chexpert is not None
)


def finding(code: str) -> FindingCode:
    """The vocabulary entry for a code such as ``"pleural_effusion"``."""
    try:
        return FINDING_CODES[code]
    except KeyError:
        near = [c for c in FINDING_CODES if code.split("_")[0] in c][:5]
        hint = f" Close codes: {', '.join(near)}." if near else ""
        raise UnknownFindingError(
            f"expected a finding code from radloop.vocabulary, got {code!r}.{hint}"
        ) from None


def normalize_term(term: str) -> str:
    """Lower case, hyphens and slashes as spaces, single spaces: how terms are compared."""
    return re.sub(r"\s+", " ", re.sub(r"[-/]", " ", term.lower())).strip()


@cache
def _term_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for entry in FINDING_CODES.values():
        for term in (entry.code.replace("_", " "), *entry.terms):
            # The first entry to claim a term keeps it: specific codes are listed after the
            # CheXpert ones only where they do not share terms.
            index.setdefault(normalize_term(term), entry.code)
    return index


def lookup_term(term: str) -> FindingCode | None:
    """The finding a term or synonym names (case and hyphen insensitive), or None."""
    code = _term_index().get(normalize_term(term))
    return None if code is None else FINDING_CODES[code]


def ancestors(code: str) -> tuple[str, ...]:
    """Broader codes of a code, nearest first: ``rib_fracture`` → ``("fracture",)``."""
    chain: list[str] = []
    parent = finding(code).parent
    while parent is not None:
        chain.append(parent)
        parent = FINDING_CODES[parent].parent
    return tuple(chain)


def critical_codes() -> tuple[str, ...]:
    """Codes that can make a study urgent (always, or when large or malpositioned)."""
    return tuple(c.code for c in FINDING_CODES.values() if c.critical is not Criticality.NEVER)


def sized_codes() -> frozenset[str]:
    """Codes that grow and shrink between studies (increased / decreased); devices are placed
    or removed and fractures come or go."""
    return frozenset(c.code for c in FINDING_CODES.values() if c.sized)
