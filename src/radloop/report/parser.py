"""``parse(text) -> list[Finding]``: structured findings from free-text chest X-ray reports.

The parser is rule-based and dependency-free (compiled regular expressions), so it runs at
thousands of reports per second on one core. Per sentence it finds the finding terms of the
vocabulary, decides each one's presence from negation and uncertainty cues with their scope
(:mod:`radloop.report.context`), and attaches the qualifiers around it: side, zones and lobes,
severity, change against a prior, size, device tip position and vertebral level.

Conventions of the output, so that ``parse(write(findings)) == findings``:

- ``side`` is the side the text states, merged with the side its zones and lobes imply
  ("right lower lobe" gives side right); zones and lobes are in the enums' order.
- ``size_mm`` is the largest dimension; ``dimensions_mm`` is set only when two or more
  dimensions were written ("2 x 3 cm"); a single size leaves it empty.
- An absent finding keeps a change only when it is ``resolved``; a present finding called
  "resolved" in part is ``decreased``.
- Identical findings (Finding equality ignores evidence) are reported once: a report's
  IMPRESSION usually repeats its FINDINGS.
- "No finding" is never reported: a normal study is one without positive findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from radloop.report.context import find_clause_breaks, find_cues, presence_in_context
from radloop.report.measure import find_levels, find_sizes, find_tips
from radloop.report.modifiers import find_anatomy, find_changes, find_severities
from radloop.report.terms import TermMention, find_terms
from radloop.report.types import Change, Evidence, Finding, Presence
from radloop.vocabulary import (
    FINDING_CODES,
    Category,
    Lobe,
    Side,
    Zone,
    side_of,
)

__all__ = ["parse", "sentences", "subsumes"]

# A sentence ends at . ! ? ; followed by space or the end, at a line break, at a full stop
# glued to the next capitalised word ("limits.The"), and before a list number ("2. ").
_BOUNDARY = re.compile(r"[.!?;]+(?=\s|$)|\n|(?<=[a-z])\.(?=[A-Z])|\s(?=\d{1,2}[.)]\s)")
_HEADER = re.compile(r"(?:[A-Za-z][A-Za-z ,/]{0,40}:|\d{1,2}[.)](?=\s))\s*")
# Sections that describe the request, not the image: their words are not findings ("Check
# endotracheal tube position" in the indication). A header starts a line and ends with ":".
_SECTION = re.compile(r"(?im)^[ \t]*(?P<name>[a-z][a-z /]{1,40}?)[ \t]*:")
_NOT_FINDINGS = frozenset(
    {
        "indication", "indications", "history", "clinical history", "clinical indication",
        "clinical information", "clinical data", "reason for exam", "reason for examination",
        "reason for study", "comparison", "comparisons", "technique", "examination", "exam",
        "procedure", "type of examination", "clinical details", "request",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Slots:
    """The qualifiers gathered for one finding mention."""

    sides: list[Side]
    zones: set[Zone]
    lobes: set[Lobe]


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of a report, without list numbers or section headers."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _BOUNDARY.finditer(text):
        spans.extend(_trimmed(text, position, match.start()))
        position = match.end()
    spans.extend(_trimmed(text, position, len(text)))
    return spans


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while True:
        header = _HEADER.match(text, start, end)
        if header is None or header.end() == start:
            break
        start = header.end()
    if end <= start or text[start:end].isdigit():  # a list number cut off by its full stop
        return []
    return [(start, end)]


def parse(text: str) -> list[Finding]:
    """Structured findings of a report, in the order the text first states them.

    Sections about the request (indication, history, comparison, technique) are skipped. A
    finding mentioned again (in the findings and again in the impression) is reported once,
    with everything either mention said about it (see :func:`subsumes`).
    """
    findings: list[Finding] = []
    skipped = _request_sections(text)
    for start, end in sentences(text):
        if any(s <= start < e for s, e in skipped):
            continue
        for found in _parse_sentence(text, start, end):
            _add_mention(findings, found)
    return findings


def _request_sections(text: str) -> list[tuple[int, int]]:
    """Spans of the sections whose text is about the request, not the image."""
    headers = list(_SECTION.finditer(text))
    spans = []
    for i, header in enumerate(headers):
        if header.group("name").strip().lower() in _NOT_FINDINGS:
            end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
            spans.append((header.start(), end))
    return spans


_DETAILS = (
    "side",
    "zones",
    "lobes",
    "vertebral_level",
    "size_mm",
    "dimensions_mm",
    "severity",
    "change",
    "tip_distance_mm",
    "tip_reference",
)


def subsumes(general: Finding, specific: Finding) -> bool:
    """Whether ``specific`` says everything ``general`` says about the same finding.

    Same code and presence, and each detail of ``general`` is either unstated or equal in
    ``specific``: "left pleural effusion" is subsumed by "small left pleural effusion", but not
    by "small right pleural effusion".
    """
    if general.code != specific.code or general.presence is not specific.presence:
        return False
    for name in _DETAILS:
        mine = getattr(general, name)
        if mine not in (None, ()) and mine != getattr(specific, name):
            return False
    return True


def _add_mention(findings: list[Finding], found: Finding) -> None:
    for i, known in enumerate(findings):
        if subsumes(found, known):
            return
        if subsumes(known, found):
            findings[i] = found
            return
    findings.append(found)


def _nearest(
    position: int,
    end: int,
    terms: Sequence[TermMention],
    eligible: Sequence[bool],
    *,
    forward_first: bool,
    forward_reach: int,
    backward_reach: int,
) -> int | None:
    """Index of the term a qualifier at ``position:end`` belongs to.

    A qualifier overlapping a term's span belongs to it; otherwise the nearest eligible term after
    it (adjectives come first in English: "small left effusion") or before it ("nodule in the
    right upper lobe"), in the preferred order, within the reach in characters.
    """
    for i, term in enumerate(terms):
        if eligible[i] and term.start < end and position < term.end:
            return i
    after = [
        i
        for i, t in enumerate(terms)
        if eligible[i] and t.start >= end and t.start - end <= forward_reach
    ]
    before = [
        i
        for i, t in enumerate(terms)
        if eligible[i] and t.end <= position and position - t.end <= backward_reach
    ]
    first = after[:1]
    last = before[-1:]
    order = (first + last) if forward_first else (last + first)
    return order[0] if order else None


# Words between two coordinated findings: "atelectasis or scarring", "infiltrate versus
# atelectasis", "opacity/consolidation", with a few descriptive words in front of the second.
_CONJUNCTION = re.compile(
    r"[\s,/]*(?:and/or|and|or|versus|vs\.?|nor)?[\s,/]*(?:either\s+)?"
    r"(?:(?:subsegmental|segmental|patchy|streaky|focal|early|mild|small|minimal|mildly|"
    r"possible|probable|developing|superimposed|xxxx)\s+)*"
)


def _conjuncts(
    lower: str, terms: Sequence[TermMention], index: int, eligible: Sequence[bool]
) -> list[int]:
    """The term and the eligible terms coordinated with it ("atelectasis or scarring")."""
    group = [index]
    i = index
    while (
        i > 0
        and eligible[i - 1]
        and _CONJUNCTION.fullmatch(lower, terms[i - 1].end, terms[i].start)
    ):
        i -= 1
        group.append(i)
    i = index
    while (
        i + 1 < len(terms)
        and eligible[i + 1]
        and _CONJUNCTION.fullmatch(lower, terms[i].end, terms[i + 1].start)
    ):
        i += 1
        group.append(i)
    return group


_T = TypeVar("_T")


def _assign(
    mentions: Iterable[tuple[int, int, _T]],
    terms: Sequence[TermMention],
    eligible: Sequence[bool],
    *,
    forward_first: bool,
    forward_reach: int,
    backward_reach: int,
) -> dict[int, _T]:
    """Each qualifier's value given to the term it belongs to (see :func:`_nearest`); a term
    keeps the first value it is given."""
    assigned: dict[int, _T] = {}
    for start, end, value in mentions:
        index = _nearest(
            start,
            end,
            terms,
            eligible,
            forward_first=forward_first,
            forward_reach=forward_reach,
            backward_reach=backward_reach,
        )
        if index is not None:
            assigned.setdefault(index, value)
    return assigned


def _parse_sentence(text: str, start: int, end: int) -> list[Finding]:
    sentence = text[start:end]
    lower = sentence.lower()
    terms = find_terms(lower)
    if not terms:
        return []
    cues = find_cues(lower)
    breaks = find_clause_breaks(lower)
    codes = [FINDING_CODES[t.code] for t in terms]
    lateral = [c.lateral for c in codes]
    devices = [c.device for c in codes]
    measurable = [not c.device for c in codes]
    bones = [c.category is Category.BONES for c in codes]
    everyone = [True] * len(terms)

    slots = [_Slots([], set(), set()) for _ in terms]
    for mention in find_anatomy(lower):
        index = _nearest(
            mention.start,
            mention.end,
            terms,
            everyone,
            forward_first=not mention.prepositional,
            forward_reach=60,
            backward_reach=120,
        )
        if index is None or not lateral[index]:
            continue  # "bibasilar hypoventilation": the place belongs to a finding without a side
        for one in _conjuncts(lower, terms, index, lateral):
            if mention.side is not None:
                slots[one].sides.append(mention.side)
            if mention.end > terms[one].start and mention.start < terms[one].end:
                continue  # "right hilar enlargement": the place word is part of the name
            slots[one].zones.update(mention.zones)
            slots[one].lobes.update(mention.lobes)

    # A finding without a place takes the place of the finding it explains or accompanies:
    # "opacity in the left base, likely atelectasis", "bilateral effusions and associated
    # atelectasis".
    for j in range(1, len(terms)):
        mine = slots[j]
        if not lateral[j] or mine.sides or mine.zones or mine.lobes:
            continue
        for i in range(j - 1, -1, -1):
            theirs = slots[i]
            if lateral[i] and (theirs.sides or theirs.zones or theirs.lobes):
                mine.sides.extend(theirs.sides)
                mine.zones.update(theirs.zones)
                mine.lobes.update(theirs.lobes)
                break

    severities = _assign(
        ((m.start, m.end, m.severity) for m in find_severities(lower)),
        terms,
        everyone,
        forward_first=True,
        forward_reach=50,
        backward_reach=25,
    )
    changes = _assign(
        ((m.start, m.end, m.change) for m in find_changes(lower)),
        terms,
        everyone,
        forward_first=True,
        forward_reach=60,
        backward_reach=90,
    )
    tips = find_tips(lower)
    sizes = _assign(
        (
            (m.start, m.end, m.dimensions_mm)
            for m in find_sizes(lower)
            if not any(t.start <= m.start < t.end for t in tips)  # "4 cm above the carina"
        ),
        terms,
        measurable,
        forward_first=True,
        forward_reach=40,
        backward_reach=60,
    )
    tip_of = _assign(
        ((t.start, t.end, (t.distance_mm, t.reference)) for t in tips),
        terms,
        devices,
        forward_first=False,
        forward_reach=80,
        backward_reach=120,
    )
    levels = _assign(
        ((m.start, m.end, m.level) for m in find_levels(lower)),
        terms, bones, forward_first=False, forward_reach=60, backward_reach=60,
    )  # fmt: skip

    evidence = Evidence(sentence, start, end)
    findings: list[Finding] = []
    for i, term in enumerate(terms):
        presence = (
            Presence.ABSENT
            if term.absent
            else presence_in_context(term.start, term.end, cues, breaks)
        )
        if presence is None:
            continue
        change = changes.get(i)
        if change is Change.RESOLVED and presence is not Presence.ABSENT:
            change = Change.DECREASED
        elif presence is Presence.ABSENT and change is not Change.RESOLVED:
            change = None
        zones = tuple(z for z in Zone if z in slots[i].zones)
        lobes = tuple(lobe for lobe in Lobe if lobe in slots[i].lobes)
        side: Side | None = None
        for stated in slots[i].sides:
            side = stated if side is None else side.merge(stated)
        implied = side_of(zones, lobes)
        if implied is not None:
            side = implied if side is None else side.merge(implied)
        if not codes[i].lateral:
            side, zones, lobes = None, (), ()
        dims = sizes.get(i, ())
        tip_distance, tip_reference = tip_of.get(i, (None, None))
        findings.append(
            Finding(
                code=term.code,
                presence=presence,
                side=side,
                zones=zones,
                lobes=lobes,
                vertebral_level=levels.get(i),
                size_mm=max(dims) if dims else None,
                dimensions_mm=dims if len(dims) > 1 else (),
                severity=severities.get(i),
                change=change,
                tip_distance_mm=tip_distance,
                tip_reference=tip_reference,
                evidence=evidence,
            )
        )
    return findings
