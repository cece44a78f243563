"""Negation and uncertainty with scope, after NegEx and ConText.

Chapman et al., "A simple algorithm for identifying negated findings and diseases in discharge
summaries", J Biomed Inform 2001 (NegEx); Harkema et al., "ConText: an algorithm for
determining negation, experiencer, and temporal status from clinical reports", J Biomed
Inform 2009. A cue before a finding scopes forward, a cue after it scopes backward, each up
to the end of its clause; pseudo-cues ("no change", "not only") are matched first so that the
cue words inside them do nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from radloop.report.types import Presence

__all__ = ["Cue", "CueKind", "find_clause_breaks", "find_cues", "presence_in_context"]


class CueKind(Enum):
    NEGATION_BEFORE = "negation_before"
    NEGATION_AFTER = "negation_after"
    UNCERTAIN_BEFORE = "uncertain_before"
    UNCERTAIN_AFTER = "uncertain_after"
    UNCERTAIN_EITHER = "uncertain_either"
    HISTORICAL_BEFORE = "historical_before"
    PSEUDO = "pseudo"


@dataclass(frozen=True, slots=True)
class Cue:
    kind: CueKind
    start: int
    end: int


_CUES: dict[CueKind, tuple[str, ...]] = {
    CueKind.PSEUDO: (
        r"no (?:significant |appreciable |substantial |definite |interval |acute )*"
        r"(?:change|increase|decrease|worsening|enlargement|progression|improvement)",
        r"not (?:only|necessarily|significantly changed|changed|certain(?:ly)?)",
        r"without (?:significant |interval )?(?:change|increase|worsening)",
        r"not been (?:excluded|ruled out)",
        r"no longer (?:enlarged)",
        r"(?:cannot|can ?not|can't) be (?:assessed|evaluated|determined)",
        r"no evidence to (?:exclude|rule out)",
        r"only",
        r"(?:whether|if) (?:or not )?there",
    ),
    CueKind.UNCERTAIN_AFTER: (
        r"(?:cannot|can ?not|can't|could not|is not|are not|not) (?:be )?(?:entirely |"
        r"completely |totally |definitely )?(?:excluded|ruled out)",
        r"(?:is|are) (?:not )?(?:entirely )?(?:possible|suspected|questioned|"
        r"questionable|not excluded|likely|probable|favou?red)",
        r"(?:may|might|could) be (?:present|seen|considered)",
        r"(?:would be|are|is) (?:a )?(?:consideration|considered|in the differential)",
        r"not (?:entirely |completely )?excluded",
    ),
    CueKind.UNCERTAIN_EITHER: (r"versus|vs\.?", r"or", r"\?"),
    CueKind.UNCERTAIN_BEFORE: (
        r"(?:cannot|can ?not|can't|could not|unable to) (?:be )?(?:entirely |completely |"
        r"totally |definitely )?(?:exclude|excluded|rule out|ruled out|be excluded)",
        r"(?:may|might|could|can) (?:also |possibly |potentially |still )?"
        r"(?:represent|reflect|be|indicate|relate to|be due to|be related to|signify|"
        r"correspond to|suggest|account for)",
        r"differential (?:diagnosis )?(?:includes?|considerations? include)",
        r"(?:concerning|suspicious|worrisome|questionable|suggestive) (?:for|of)",
        r"question(?:able)? of",
        r"questionable",
        r"(?:is |are )?(?:possibly|possible|probable|probably|likely|presumed|presumably|"
        r"suspected|suspect|equivocal|perhaps|maybe|borderline|vague|subtle|"
        r"indeterminate|uncertain|query)",
        r"(?:suggests?|suggesting|favou?ring|favou?rs?)",
        r"consider|considered|considering",
        r"(?:raise|raises|raising) (?:the )?(?:possibility|question|concern) (?:of|for)",
        r"(?:early|developing|evolving|superimposed)",
        r"(?:atypical|infectious or inflammatory)",
    ),
    CueKind.NEGATION_BEFORE: (
        r"no(?: (?:new|definite|definitive|evidence|signs?|suspicious|focal|acute|"
        r"convincing|visible|visualized|obvious|significant|appreciable|large|"
        r"radiographic|radiographically|displaced|discrete|gross|overt|findings|"
        r"active|frank|residual|other|additional|further|typical|detectable|"
        r"identifiable|recurrent|recurrence|interval|x-xxxx|xxxx|findings to suggest)"
        r"(?: (?:of|for|to(?: suggest)?))?)*",
        r"not(?: (?:see|seen|identified|visualized|demonstrated|appreciated|evident|"
        r"present|visible|definitely|clearly|convincingly))*",
        r"(?:negative|neg) for",
        r"(?:free|clear|clearing) of",
        # The certainty scale's lowest steps (< 25 %): "unlikely", "very unlikely".
        r"(?:very )?unlikely",
        r"(?:without|w/o|absence of|absent|neither|nor|none|denies)(?: (?:evidence|signs?)"
        r"(?: of| for)?)?",
        r"(?:resolution|resolved|resolving|clearing|removal|removed) of",
        r"(?:interval )?(?:resolution|resolved)",
        r"rather than|instead of|rules out|ruled out|excluded|exclude",
        r"(?:there is|there are) no",
    ),
    CueKind.NEGATION_AFTER: (
        r"(?:is|are|was|were|has|have)? ?(?:no longer|not) "
        r"(?:(?:been |currently |definitely |clearly |well |convincingly |readily )"
        r")*(?:seen|identified|visualized|visible|demonstrated|appreciated|evident|"
        r"present|noted|apparent|detected|enlarged|appreciable|identifiable)",
        r"(?:has|have|had)? ?(?:since )?(?:completely |nearly |almost |largely )?"
        r"(?:resolved|cleared|disappeared|been removed|been resolved)",
        r"(?:is|are) (?:now )?(?:absent|gone|removed)",
        r"(?:has|have) been removed|removed",
        r"(?:is|are) (?:within normal limits|normal|unremarkable|not enlarged)",
        r"(?:is|are) (?:very )?unlikely",
    ),
    CueKind.HISTORICAL_BEFORE: (
        r"(?:history|hx|h/o) of",
        # Hypotheses and requests: "evaluation for fracture", "if there is concern for".
        r"(?:if|when|whether) (?:there is |there are )?(?:clinical )?"
        r"(?:concern|suspicion) (?:of|for)",
        r"(?:to )?(?:evaluat\w*|assess\w*|exclud\w*|look) (?:of|for)",
        r"to (?:evaluate|exclude|assess)",
        r"(?:rule|ruled) out|r/o",
        r"(?:status post|s/p|post|prior|previous|remote) (?:\w+ )?(?:resection|lobectomy|"
        r"pneumonectomy)",
    ),
}

_KIND_OF_GROUP = {f"g{i}": kind for i, kind in enumerate(_CUES)}
_CUE_REGEX = re.compile(
    "|".join(
        rf"(?P<g{i}>(?<![\w-])(?:{'|'.join(patterns)})(?![\w-]))"
        for i, patterns in enumerate(_CUES.values())
    )
)

# Clause ends: a cue does not reach past these.
_CLAUSE_BREAK = re.compile(
    r"(?<![\w-])(?:but|however|although|though|yet|whereas|while|except|aside from|"
    r"apart from|otherwise|which|that|who|with the exception of|"
    r"(?:there (?:is|are|has been|have been))(?! no\b)|"
    r"(?:consistent|compatible) with|due to|secondary to|representing|"
    r"likely|probably|possibly|may|might|could|and (?:the|there|a|an|stable|mild|"
    r"small|large|moderate|minimal|new|persistent|unchanged|increased|decreased)|"
    r"(?:is|are|were|was) (?:seen|noted|present|identified|again seen|unchanged|stable))"
    r"(?![\w-])|[;:()]"
)

# Cues that are themselves a break are only breaks for the other kind of cue; see below.
_UNCERTAIN_WORD_BREAKS = frozenset({"likely", "probably", "possibly", "may", "might", "could"})


def find_cues(lower: str) -> list[Cue]:
    """Negation, uncertainty and historical cues in a lower-cased sentence."""
    cues: list[Cue] = []
    for match in _CUE_REGEX.finditer(lower):
        group = match.lastgroup
        if group is not None:
            cues.append(Cue(_KIND_OF_GROUP[group], match.start(), match.end()))
    return cues


def find_clause_breaks(lower: str) -> list[tuple[int, int, str]]:
    """Positions where a clause ends, with the words that end it."""
    return [(m.start(), m.end(), m.group()) for m in _CLAUSE_BREAK.finditer(lower)]


def _broken(breaks: list[tuple[int, int, str]], left: int, right: int, cue_kind: CueKind) -> bool:
    """Whether a clause break lies between two positions (for a cue of one kind)."""
    for start, end, words in breaks:
        if start >= left and end <= right:
            # "no pneumothorax; possible effusion": hedging words end a negation's scope,
            # but they do not end the scope of an uncertainty cue before them.
            if words in _UNCERTAIN_WORD_BREAKS and cue_kind is not CueKind.NEGATION_BEFORE:
                continue
            return True
    return False


def presence_in_context(
    start: int,
    end: int,
    cues: list[Cue],
    breaks: list[tuple[int, int, str]],
    *,
    before_window: int = 90,
    after_window: int = 80,
) -> Presence | None:
    """Presence of a mention at ``start:end`` given the cues of its sentence.

    Negation wins over uncertainty ("no findings suggestive of pneumonia" is a denial);
    uncertainty cues that contain a negation ("cannot exclude") are uncertainty.
    None means a historical mention ("history of pneumonia"): not a statement about this study.
    """
    negated = uncertain = historical = False
    for cue in cues:
        if cue.kind is CueKind.PSEUDO:
            continue
        if start <= cue.start and cue.end <= end:
            # A cue inside a phrase pattern: "the heart is not enlarged".
            negated |= cue.kind in (CueKind.NEGATION_BEFORE, CueKind.NEGATION_AFTER)
            uncertain |= cue.kind in (CueKind.UNCERTAIN_BEFORE, CueKind.UNCERTAIN_AFTER)
        elif cue.end <= start:
            if start - cue.end > before_window or _broken(breaks, cue.end, start, cue.kind):
                continue
            if cue.kind is CueKind.NEGATION_BEFORE:
                negated = True
            elif cue.kind in (CueKind.UNCERTAIN_BEFORE, CueKind.UNCERTAIN_EITHER):
                uncertain = True
            elif cue.kind is CueKind.HISTORICAL_BEFORE:
                historical = True
        elif cue.start >= end:
            if cue.start - end > after_window or _broken(breaks, end, cue.start, cue.kind):
                continue
            if cue.kind is CueKind.NEGATION_AFTER:
                negated = True
            elif cue.kind in (CueKind.UNCERTAIN_AFTER, CueKind.UNCERTAIN_EITHER):
                uncertain = True
    if historical and not negated and not uncertain:
        return None
    if negated:
        return Presence.ABSENT
    if uncertain:
        return Presence.UNCERTAIN
    return Presence.PRESENT
