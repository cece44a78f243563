"""Finding mentions in a sentence: vocabulary terms and a few phrase patterns.

Every term and synonym of :mod:`radloop.vocabulary` is compiled into one trie-shaped regular
expression, so a sentence is scanned once whatever the size of the vocabulary (Python's ``re``
tries alternatives one by one; a trie makes the first character choose the branch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TypeAlias

from radloop.vocabulary import FINDING_CODES, normalize_term

__all__ = ["TermMention", "find_terms"]

# Codes the parser never reports: "no finding" is the absence of positive findings, not a
# finding of its own.
_NOT_PARSED = frozenset({"no_finding"})

# Words between the words of a term: spaces, hyphens, slashes, and the "XXXX" of anonymised
# reports is not allowed inside a term (it hides a word, and the term may not be the one meant).
_GAP = r"[\s\-/]+"


@dataclass(frozen=True, slots=True)
class TermMention:
    """A span of a sentence that names a finding."""

    code: str
    start: int
    end: int
    absent: bool = False  # the phrase itself says the finding is absent ("normal heart size")


_Trie: TypeAlias = dict[str, "_Trie"]


def _trie_pattern(words: list[str]) -> str:
    """A regex matching exactly the given strings, longest first, shaped as a trie."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        ends = "" in node
        branches = []
        for char in sorted(k for k in node if k):
            piece = _GAP if char == " " else re.escape(char)
            branches.append(piece + emit(node[char]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # The longer branches come first: a regex alternation takes the first that matches.
        return f"(?:{body})?" if ends else body

    return emit(trie)


# Phrases a term regex cannot express: heart size statements and words that name the finding
# only together with a neighbour. Each maps to the code it names.
_PHRASES: tuple[tuple[str, str], ...] = (
    # "The heart is mildly enlarged", "heart size borderline enlarged", "cardiac silhouette
    # appears enlarged"; "upper limits of normal" is not enlarged and matches nothing here.
    (
        r"\b(?:heart|cardiac(?:\s+(?:silhouette|shadow|contours?|size))?)(?:\s+size)?"
        r"(?:\s+(?:is|are|appears?|remains|seems|measures|xxxx|at|again|now|still|"
        r"somewhat|slightly|mildly|moderately|markedly|severely|borderline|not|"
        r"at\s+least|considered|probably|likely|possibly|to\s+be|be)){0,4}"
        r"\s+(?:enlarged|large|prominent|increased\s+in\s+size)\b",
        "cardiomegaly",
    ),
    (r"\bborderline\s+(?:heart|cardiac)\s+(?:size|silhouette)\b", "cardiomegaly"),
    (
        r"\b(?:enlarged|enlargement\s+of\s+the)\s+(?:heart|cardiac\s+(?:silhouette|shadow))\b",
        "cardiomegaly",
    ),
    (
        r"\belevat(?:ed|ion\s+of\s+the)\s+(?:right\s+|left\s+)?hemidiaphragm\b",
        "elevated_hemidiaphragm",
    ),
    (r"\b(?:right|left)\s+hemidiaphragm\s+is\s+elevated\b", "elevated_hemidiaphragm"),
    (r"\b(?:dextro|levo)?(?:[\s-]?convex)?[\s-]?(?:scoliosis|curvature)\b", "scoliosis"),
    # Anonymised device words ("XXXX") in the IU collection and elsewhere: the place says what
    # kind of device it is.
    (r"\bxxxx-a-xxxx\b", "central_venous_catheter"),
    (
        r"\b(?:chest|jugular|ij|subclavian|arm|upper\s+extremity)(?:\s+wall)?\s+xxxx"
        r"(?=[^.;]{0,40}\btips?\b)",
        "central_venous_catheter",
    ),
    (r"\bsurgical\s+xxxx\b", "surgical_clips"),
    (
        r"\bcalcifi\w*(?:\s+[\w-]+){0,3}?\s+(?:lymph\s+(?:nodes?|xxxx)|nodes)\b",
        "calcified_lymph_node",
    ),
    (
        r"\b(?:aorta|aortic\s+(?:arch|knob))\s+(?:is\s+|are\s+|appears\s+)?(?:\w+ly\s+)?"
        r"(?:tortuous|ectatic|unfolded|dilated)\b",
        "tortuous_aorta",
    ),
    (
        r"\b(?:aorta|aortic\s+(?:arch|knob))\s+(?:is\s+|appears\s+)?(?:\w+ly\s+)?calcified\b",
        "aortic_calcification",
    ),
    (
        r"\bcalcifi\w*\s+(?:of|in|within|along|involving)\s+(?:the\s+)?(?:thoracic\s+)?"
        r"aort\w*(?:\s+(?:arch|knob|xxxx))?",
        "aortic_calcification",
    ),
)


# Phrases that state a finding is absent by describing the normal: each maps to that code.
_NORMAL_PHRASES: tuple[tuple[str, str], ...] = (
    (
        r"\bnormal(?:\s+(?:in|sized?))?\s+(?:heart|cardiac)(?:\s+(?:size|silhouette|contours?))?\b",
        "cardiomegaly",
    ),
    (
        r"\b(?:heart|cardiac(?:\s+(?:silhouette|shadow|contours?|size))?)(?:\s+size)?"
        r"\s+(?:is\s+|are\s+|appears?\s+|remains\s+)?(?:normal|within\s+normal\s+limits)"
        r"(?:\s+in\s+size)?\b",
        "cardiomegaly",
    ),
)


@cache
def _term_regex() -> re.Pattern[str]:
    terms: set[str] = set()
    for entry in FINDING_CODES.values():
        if entry.code in _NOT_PARSED:
            continue
        for term in (entry.code.replace("_", " "), *entry.terms):
            terms.add(normalize_term(term))
    # Longest first inside the trie; an optional plural "s" after any term.
    body = _trie_pattern(sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})s?(?![\w-])")


@cache
def _term_codes() -> dict[str, str]:
    index: dict[str, str] = {}
    for entry in FINDING_CODES.values():
        if entry.code in _NOT_PARSED:
            continue
        for term in (entry.code.replace("_", " "), *entry.terms):
            index.setdefault(normalize_term(term), entry.code)
    return index


@cache
def _phrase_regexes() -> tuple[tuple[re.Pattern[str], str, bool], ...]:
    return tuple((re.compile(pattern), code, False) for pattern, code in _PHRASES) + tuple(
        (re.compile(pattern), code, True) for pattern, code in _NORMAL_PHRASES
    )


def _code_of(matched: str) -> str | None:
    key = normalize_term(matched)
    index = _term_codes()
    code: str | None = index.get(key)
    if code is None and key.endswith("s"):
        code = index.get(key[:-1])
    return code


def find_terms(lower: str) -> list[TermMention]:
    """Finding mentions in a lower-cased sentence, in order, without overlaps.

    Phrase patterns win over plain terms where they overlap (they are the more specific).
    """
    mentions: list[TermMention] = []
    taken: list[tuple[int, int]] = []
    for regex, code, absent in _phrase_regexes():
        for match in regex.finditer(lower):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            mentions.append(TermMention(code, start, end, absent))
    for match in _term_regex().finditer(lower):
        start, end = match.span()
        if any(start < e and s < end for s, e in taken):
            continue
        named = _code_of(match.group())
        if named is not None:
            mentions.append(TermMention(named, start, end))
    mentions.sort(key=lambda m: m.start)
    return mentions
