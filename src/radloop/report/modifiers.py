"""Words that qualify a finding: side, zone and lobe; severity; change against a prior study."""

from __future__ import annotations

import re
from dataclasses import dataclass

from radloop.report.types import Change, Severity
from radloop.vocabulary import Level, Lobe, Side, Zone

__all__ = [
    "AnatomyMention",
    "ChangeMention",
    "SeverityMention",
    "find_anatomy",
    "find_changes",
    "find_severities",
]


@dataclass(frozen=True, slots=True)
class AnatomyMention:
    """Words naming a place: a side, and the zones and lobes they imply."""

    start: int
    end: int
    side: Side | None
    zones: tuple[Zone, ...] = ()
    lobes: tuple[Lobe, ...] = ()
    prepositional: bool = False  # "in the right lower lobe" (follows its finding)


@dataclass(frozen=True, slots=True)
class SeverityMention:
    start: int
    end: int
    severity: Severity


@dataclass(frozen=True, slots=True)
class ChangeMention:
    start: int
    end: int
    change: Change


_LEVEL_WORDS: dict[str, Level] = {
    "upper": Level.UPPER,
    "apex": Level.UPPER,
    "apices": Level.UPPER,
    "apical": Level.UPPER,
    "apical region": Level.UPPER,
    "suprahilar": Level.UPPER,
    "middle": Level.MIDDLE,
    "mid": Level.MIDDLE,
    "midlung": Level.MIDDLE,
    "midlungs": Level.MIDDLE,
    "perihilar": Level.MIDDLE,
    "hilar": Level.MIDDLE,
    "hilum": Level.MIDDLE,
    "hila": Level.MIDDLE,
    "infrahilar": Level.LOWER,
    "lower": Level.LOWER,
    "base": Level.LOWER,
    "bases": Level.LOWER,
    "basilar": Level.LOWER,
    "basal": Level.LOWER,
    "basilar region": Level.LOWER,
    "retrocardiac": Level.LOWER,
}
_LOBE_WORDS = {"upper": "upper", "middle": "middle", "lower": "lower"}
_ABBREVIATED_LOBES = {
    "rul": (Lobe.RIGHT_UPPER,),
    "rml": (Lobe.RIGHT_MIDDLE,),
    "rll": (Lobe.RIGHT_LOWER,),
    "lul": (Lobe.LEFT_UPPER,),
    "lll": (Lobe.LEFT_LOWER,),
}

_LEVEL = r"(?:upper|middle|mid|lower)"
_ANATOMY = re.compile(
    r"(?P<prep>\b(?:in|at|of|within|involving|over|overlying|projecting over|"
    r"throughout|along|from|to)\s+(?:the\s+|both\s+)?)?"
    r"(?:"
    # A whole lung: "throughout the left lung" (every zone of it, after "throughout").
    r"(?P<wside>\b(?:right|left)\b)\s+lung\b(?![\s-]+(?:base|apex|zone|field))|"
    # Lobes: "right upper lobe", "right upper and middle lobes", "both lower lobes".
    rf"(?P<lside>right|left|bilateral|both)?\s*(?P<l1>{_LEVEL})"
    rf"(?:\s*(?:and|or|/|,)\s*(?P<l2>{_LEVEL}))?[\s-]+lobes?\b"
    r"|(?P<abbr>\b(?:rul|rml|rll|lul|lll)\b)"
    r"|(?P<ling>\blingula(?:r)?\b)"
    # Zones: "right lung base", "left midlung", "right upper zone", "bibasilar", "lung bases".
    rf"|(?P<zside>\b(?:right|left|bilateral|both)\b)?[\s-]*(?:lung\s+)?"
    r"(?P<zone>\b(?:apices|apex|apical|suprahilar|midlungs?|mid|perihilar|infrahilar|"
    r"hilar|hilum|hila|bases|base|basilar|basal|retrocardiac|upper|middle|lower)\b)"
    r"(?P<ztail>[\s-]+(?:lung\s+)?(?:zones?|lungs?|fields?|regions?|hemithorax|"
    r"chest|lung\s+zones?|lung\s+fields?))?"
    r"|(?P<bi>\b(?:bibasilar|bibasal|biapical|bilateral|bilaterally|both\s+lungs)\b)"
    r"|(?P<side>\b(?:right|left)(?:-sided|\s+sided)?\b)"
    r"|(?P<dextro>\b(?:dextro|levo)(?=[\s-]?(?:scoliosis|convex|curvature|scoliotic)))"
    r")"
)

# Side words that name a part of the heart or another organ, not the side of a finding.
_NOT_A_SIDE = re.compile(
    r"(?:right|left)[\s-]+(?:atri|ventric|heart|cardiac|coronary|main\s*stem|mainstem)"
)


def _zones_for(side: Side | None, level: Level) -> tuple[Zone, ...]:
    if side is None:
        return ()
    if side is Side.BILATERAL:
        return (Zone.at(Side.RIGHT, level), Zone.at(Side.LEFT, level))
    return (Zone.at(side, level),)


def _whole_lungs(side: Side | None) -> tuple[Zone, ...]:
    """Every zone of one lung, or of both ("throughout both lungs")."""
    return tuple(z for level in Level for z in _zones_for(side, level))


def _side_word(word: str | None) -> Side | None:
    if word is None:
        return None
    word = word.strip()
    if word.startswith("right"):
        return Side.RIGHT
    if word.startswith("left"):
        return Side.LEFT
    if word in {"bilateral", "both", "bilaterally"}:
        return Side.BILATERAL
    return None


def _lobes_for(side: Side | None, levels: list[str]) -> tuple[Lobe, ...]:
    lobes: list[Lobe] = []
    sides = [Side.RIGHT, Side.LEFT] if side in (None, Side.BILATERAL) else [side]
    for level in levels:
        for one in sides:
            if level == "middle" and one is Side.LEFT:
                continue
            if side is None and level != "middle":
                continue  # "the lower lobe" with no side names no single lobe
            lobes.append(Lobe(f"{one.value}_{level}_lobe"))
    return tuple(lobes)


def find_anatomy(lower: str) -> list[AnatomyMention]:
    """Side, zone and lobe mentions in a lower-cased sentence."""
    mentions: list[AnatomyMention] = []
    for match in _ANATOMY.finditer(lower):
        groups = match.groupdict()
        prep = groups["prep"] is not None
        start, end = match.span()
        throughout = prep and groups["prep"].lstrip().startswith("throughout")
        if groups["wside"] is not None:
            side = _side_word(groups["wside"])
            zones = _whole_lungs(side) if throughout else ()
            mentions.append(AnatomyMention(start, end, side, zones, (), prep))
        elif groups["l1"] is not None:
            side = _side_word(groups["lside"])
            levels = [_LOBE_WORDS[groups["l1"] if groups["l1"] != "mid" else "middle"]]
            if groups["l2"] is not None:
                levels.append(groups["l2"] if groups["l2"] != "mid" else "middle")
            lobes = _lobes_for(side, levels)
            if not lobes and side is None:
                continue
            side = side or (lobes[0].side if lobes else None)
            mentions.append(AnatomyMention(start, end, _merged(side, lobes), (), lobes, prep))
        elif groups["abbr"] is not None:
            lobes = _ABBREVIATED_LOBES[groups["abbr"]]
            mentions.append(AnatomyMention(start, end, lobes[0].side, (), lobes, prep))
        elif groups["ling"] is not None:
            mentions.append(AnatomyMention(start, end, Side.LEFT, (), (Lobe.LINGULA,), prep))
        elif groups["zone"] is not None:
            word = groups["zone"]
            side = _side_word(groups["zside"])
            if word in {"upper", "middle", "mid", "lower"} and groups["ztail"] is None:
                # "upper" alone is not a place ("upper limits of normal").
                if side is None:
                    continue
                mentions.append(AnatomyMention(start, end, side, (), (), prep))
                continue
            if side is None and word in {"bases", "apices", "midlungs", "hila"}:
                side = Side.BILATERAL
            if side is None and groups["ztail"] is not None and groups["ztail"].endswith("s"):
                side = Side.BILATERAL
            if word == "retrocardiac" and side is None:
                side = Side.LEFT
            level = _LEVEL_WORDS[word]
            zones = _zones_for(side, level)
            if side is None and not zones:
                continue
            mentions.append(AnatomyMention(start, end, side, zones, (), prep))
        elif groups["bi"] is not None:
            word = groups["bi"]
            if word.startswith(("bibas",)):
                zones = _zones_for(Side.BILATERAL, Level.LOWER)
            elif word == "biapical":
                zones = _zones_for(Side.BILATERAL, Level.UPPER)
            elif word == "both lungs" and throughout:
                zones = _whole_lungs(Side.BILATERAL)
            else:
                zones = ()
            mentions.append(AnatomyMention(start, end, Side.BILATERAL, zones, (), prep))
        elif groups["side"] is not None:
            if _NOT_A_SIDE.match(lower, match.start("side")):
                continue
            mentions.append(AnatomyMention(start, end, _side_word(groups["side"]), (), (), prep))
        elif groups["dextro"] is not None:
            side = Side.RIGHT if groups["dextro"] == "dextro" else Side.LEFT
            mentions.append(AnatomyMention(start, end, side, (), (), prep))
    return mentions


def _merged(side: Side | None, lobes: tuple[Lobe, ...]) -> Side | None:
    sides = {lobe.side for lobe in lobes}
    if len(sides) == 2:
        return Side.BILATERAL
    return side


_SEVERITY_WORDS: dict[str, Severity] = {
    "trace": Severity.TRACE,
    "tiny": Severity.MINIMAL,
    "minimal": Severity.MINIMAL,
    "minimally": Severity.MINIMAL,
    "small": Severity.SMALL,
    "mild": Severity.MILD,
    "mildly": Severity.MILD,
    "slight": Severity.MILD,
    "slightly": Severity.MILD,
    "moderate": Severity.MODERATE,
    "moderately": Severity.MODERATE,
    "large": Severity.LARGE,
    "severe": Severity.SEVERE,
    "severely": Severity.SEVERE,
    "marked": Severity.SEVERE,
    "markedly": Severity.SEVERE,
}
_SEVERITY = re.compile(
    r"(?<![\w-])(?:" + "|".join(sorted(_SEVERITY_WORDS, key=len, reverse=True)) + r")"
    r"(?![\w-])(?!\s+(?:bowel|intestine|airways?|amount of air|amount))"
)


def find_severities(lower: str) -> list[SeverityMention]:
    """Severity and size words ("small", "moderately")."""
    return [
        SeverityMention(m.start(), m.end(), _SEVERITY_WORDS[m.group()])
        for m in _SEVERITY.finditer(lower)
    ]


_CHANGE_PATTERNS: tuple[tuple[str, Change], ...] = (
    (
        r"(?:interval )?(?:resolution|resolved|has resolved|have resolved|"
        r"has cleared|have cleared|cleared)",
        Change.RESOLVED,
    ),
    (r"new|newly|(?:interval )?development of|(?:has|have) developed", Change.NEW),
    (
        r"(?:interval )?(?:increase|increased|increasing|worse|worsened|worsening|enlarging|"
        r"enlarged since|progressed|progression|progressive)(?: in size)?(?: since)?",
        Change.INCREASED,
    ),
    (
        r"(?:interval )?(?:decrease|decreased|decreasing|improved|improving|improvement|"
        r"resolving|smaller|diminished|diminishing|regressed|regression)(?: in size)?",
        Change.DECREASED,
    ),
    (
        r"stable|unchanged|no (?:significant |interval )?change|not changed|persistent|"
        r"persists|persisting|again (?:seen|noted|demonstrated)|redemonstrated|"
        r"similar",
        Change.STABLE,
    ),
)
_CHANGE = re.compile(
    "|".join(
        rf"(?P<c{i}>(?<![\w-])(?:{pattern})(?![\w-]))"
        for i, (pattern, _) in enumerate(_CHANGE_PATTERNS)
    )
)


def find_changes(lower: str) -> list[ChangeMention]:
    """Change words relative to a prior study ("new", "increased", "has resolved")."""
    mentions: list[ChangeMention] = []
    for match in _CHANGE.finditer(lower):
        group = match.lastgroup
        if group is None:
            continue
        change = _CHANGE_PATTERNS[int(group[1:])][1]
        mentions.append(ChangeMention(match.start(), match.end(), change))
    return mentions
