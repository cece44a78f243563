"""Certainty language: each finding stated with the phrase its calibrated probability earns.

The scale is the Brigham and Women's Hospital diagnostic certainty scale (Panicek and Hricak,
"How sure are you, doctor? A standardized lexicon to describe the radiologist's level of
certainty", AJR 2016), as docs/architecture.md gives it:

=========  ==========================================
> 90 %     "consistent with"
75–90 %    "likely"
25–75 %    "may represent"
5–25 %     "unlikely"
< 5 %      "very unlikely" (a denied finding: "No ...")
=========  ==========================================

"possibly", "suspicious for" and "suggestive of" are never written: readers interpret them
most inconsistently. Sentences are built from ``radloop.report.writer.describe`` so that the
noun phrase (severity, size, side, zones, lobes, tip, change) is the writer's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from radloop.report import Finding, Presence
from radloop.report.writer import NORMAL_IMPRESSION as NORMAL
from radloop.report.writer import NOT_COMMENTED, SECTIONS, describe, is_critical
from radloop.vocabulary import finding

__all__ = [
    "AVOIDED_PHRASES",
    "CertaintyPhrase",
    "certain_sentence",
    "certainty_phrase",
    "write_with_certainty",
]

AVOIDED_PHRASES = ("possibly", "suspicious for", "suggestive of")


class CertaintyPhrase(StrEnum):
    """The BWH certainty scale, most certain first."""

    CONSISTENT_WITH = "consistent with"
    LIKELY = "likely"
    MAY_REPRESENT = "may represent"
    UNLIKELY = "unlikely"
    VERY_UNLIKELY = "very unlikely"


def certainty_phrase(p: float) -> CertaintyPhrase:
    """The phrase for a calibrated probability that a finding is present."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'Argument "p" must be a probability in [0, 1], got {p}.')
    if p > 0.90:
        return CertaintyPhrase.CONSISTENT_WITH
    if p >= 0.75:
        return CertaintyPhrase.LIKELY
    if p >= 0.25:
        return CertaintyPhrase.MAY_REPRESENT
    if p >= 0.05:
        return CertaintyPhrase.UNLIKELY
    return CertaintyPhrase.VERY_UNLIKELY


# Count nouns take "a"/"an" after "consistent with" and "may represent"; mass nouns
# (atelectasis, edema, cardiomegaly) take none.
_COUNT_NOUNS = frozenset(
    {
        "pleural_effusion",
        "pneumothorax",
        "nodule",
        "mass",
        "lung_opacity",
        "lung_lesion",
        "fracture",
        "rib_fracture",
        "hiatal_hernia",
        "pericardial_effusion",
        "foreign_body",
        "calcified_granuloma",
        "calcified_lymph_node",
        "elevated_hemidiaphragm",
        "interstitial_opacity",
    }
)


def _noun_phrase(found: Finding) -> str:
    """The writer's sentence for the finding as present, without its full stop."""
    sentence = describe(found.with_(presence=Presence.PRESENT))
    phrase = sentence.rstrip(".")
    # describe() capitalises and adds "a"/"an" before numbers; start lower case.
    if phrase[:2] in ("A ", "An") and phrase.split(" ", 1)[0] in ("A", "An"):
        return phrase[0].lower() + phrase[1:]
    return phrase[:1].lower() + phrase[1:]


def _with_article(found: Finding, phrase: str) -> str:
    if phrase.startswith(("a ", "an ")) or found.code not in _COUNT_NOUNS:
        return phrase
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def certain_sentence(found: Finding, p: float) -> str:
    """One report sentence stating ``found`` with the certainty its probability ``p`` earns.

    A draft's negative claim below 5 % stays the plain "No ..." of the writer; a positive
    claim that falls below 5 % is written "... is very unlikely." so that the reviewer still
    sees what the draft claimed.
    """
    phrase = certainty_phrase(p)
    noun = _noun_phrase(found)
    if phrase is CertaintyPhrase.CONSISTENT_WITH:
        return f"Findings consistent with {_with_article(found, noun)}."
    if phrase is CertaintyPhrase.LIKELY:
        return f"Likely {noun}."
    if phrase is CertaintyPhrase.MAY_REPRESENT:
        return f"May represent {_with_article(found, noun)}."
    if phrase is CertaintyPhrase.UNLIKELY:
        return f"{_capitalised(noun)} is unlikely."
    if found.presence is Presence.ABSENT:
        return describe(found)
    return f"{_capitalised(noun)} is very unlikely."


def _sentence(found: Finding) -> str:
    if found.probability is None or finding(found.code).device:
        return describe(found)  # no calibrated probability: the draft's own words
    return certain_sentence(found, found.probability)


_OPENER = "Findings consistent with "


def _section(findings: Iterable[Finding]) -> list[str]:
    """A section's sentences; findings "consistent with" the film share one opener
    ("Findings consistent with a small left pleural effusion and a left pneumothorax.")
    instead of a stock phrase opening every sentence."""
    sentences: list[str] = []
    joined: list[str] = []
    at = 0  # the shared sentence keeps the place of the first finding in it
    for found in findings:
        sentence = _sentence(found)
        if sentence.startswith(_OPENER):
            if not joined:
                at = len(sentences)
                sentences.append("")
            joined.append(sentence.removeprefix(_OPENER).rstrip("."))
        else:
            sentences.append(sentence)
    if joined:
        listed = joined[0] if len(joined) == 1 else ", ".join(joined[:-1]) + " and " + joined[-1]
        sentences[at] = f"{_OPENER}{listed}."
    return sentences


def _concluded(found: Finding) -> str:
    """An impression line: a finding the film is consistent with is stated as the conclusion
    it is (FINDINGS gives its certainty phrase); a hedged one keeps its hedge ("Likely ...",
    "May represent ...")."""
    sentence = _sentence(found)
    return describe(found) if sentence.startswith(_OPENER) else sentence


def write_with_certainty(findings: Sequence[Finding], *, unaddressed: Sequence[str] = ()) -> str:
    """A report in the writer's layout with each finding's certainty phrase.

    Sections in ``unaddressed`` (the model did not comment on them) read "Not commented.",
    never "Unremarkable.", and then the impression does not call the study normal.

    Findings with ``probability`` set are stated with its phrase; the others (and devices,
    which are seen rather than inferred) keep the writer's sentence. IMPRESSION lists the
    findings at 25 % or more (and those without a probability that the draft asserted),
    critical ones first, most probable first.
    """
    lines = ["FINDINGS:"]
    silent: list[str] = []
    for category, title in SECTIONS:
        sentences = _section(f for f in findings if finding(f.code).category is category)
        if not sentences and category.value in ("devices", "other"):
            continue
        if not sentences and category.value in unaddressed:
            silent.append(title.lower())
            lines.append(f"{title}: {NOT_COMMENTED}")
            continue
        lines.append(f"{title}: {' '.join(sentences) if sentences else 'Unremarkable.'}")

    def in_impression(f: Finding) -> bool:
        return f.probability >= 0.25 if f.probability is not None else f.is_positive

    shown = [f for f in findings if in_impression(f)]
    shown.sort(
        key=lambda f: (
            not is_critical(f.with_(presence=Presence.PRESENT)),
            -(f.probability if f.probability is not None else 1.0),
        )
    )
    impression = [f"{i}. {_concluded(f)}" for i, f in enumerate(shown, start=1)]
    normal = f"No finding stated. Not commented: {', '.join(silent)}." if silent else NORMAL
    lines += ["", "IMPRESSION:", *(impression or [normal])]
    return "\n".join(lines) + "\n"
