"""Certainty language on the Brigham and Women's Hospital scale, read back by the parser."""

from __future__ import annotations

import pytest

from radloop.report import Finding, Presence, Severity, parse
from radloop.safety import CertaintyPhrase, certain_sentence, certainty_phrase, write_with_certainty
from radloop.safety.certainty import AVOIDED_PHRASES
from radloop.vocabulary import Lobe, Side

EFFUSION = Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL)
ATELECTASIS = Finding("atelectasis", side=Side.RIGHT, lobes=(Lobe.RIGHT_LOWER,))


@pytest.mark.parametrize(
    ("p", "phrase"),
    [
        (0.95, CertaintyPhrase.CONSISTENT_WITH),
        (0.9, CertaintyPhrase.LIKELY),
        (0.75, CertaintyPhrase.LIKELY),
        (0.5, CertaintyPhrase.MAY_REPRESENT),
        (0.25, CertaintyPhrase.MAY_REPRESENT),
        (0.1, CertaintyPhrase.UNLIKELY),
        (0.049, CertaintyPhrase.VERY_UNLIKELY),
    ],
)
def test_certainty_phrase_follows_the_bwh_scale(p: float, phrase: CertaintyPhrase) -> None:
    assert certainty_phrase(p) is phrase


def test_certainty_phrase_refuses_a_value_that_is_not_a_probability() -> None:
    with pytest.raises(ValueError, match='"p" must be a probability'):
        certainty_phrase(1.2)


def test_sentences_read_like_a_report() -> None:
    assert (
        certain_sentence(EFFUSION, 0.95)
        == "Findings consistent with a small left pleural effusion."
    )
    assert certain_sentence(ATELECTASIS, 0.8) == "Likely atelectasis in the right lower lobe."
    assert certain_sentence(EFFUSION, 0.5) == "May represent a small left pleural effusion."
    assert certain_sentence(EFFUSION, 0.1) == "Small left pleural effusion is unlikely."
    assert certain_sentence(EFFUSION.with_(presence=Presence.ABSENT), 0.01) == (
        "No small left pleural effusion."
    )


def test_avoided_phrases_are_never_written() -> None:
    for p in (0.99, 0.8, 0.5, 0.1, 0.01):
        for found in (EFFUSION, ATELECTASIS):
            assert not any(w in certain_sentence(found, p).lower() for w in AVOIDED_PHRASES)


@pytest.mark.parametrize(
    ("p", "presence"),
    [(0.95, Presence.PRESENT), (0.8, Presence.UNCERTAIN), (0.5, Presence.UNCERTAIN)],
)
def test_parser_reads_certainty_sentences_back(p: float, presence: Presence) -> None:
    """> 90 % reads as present; 75–90 % ("likely") and 25–75 % as uncertain, the CheXpert
    labeller's convention that radloop's parser follows."""
    for found in (EFFUSION, ATELECTASIS):
        (parsed,) = parse(certain_sentence(found, p))
        assert (parsed.code, parsed.presence, parsed.side) == (found.code, presence, found.side)


def test_parser_reads_unlikely_as_absent() -> None:
    for p in (0.1, 0.02):
        (parsed,) = parse(certain_sentence(EFFUSION, p))
        assert parsed.presence is Presence.ABSENT, certain_sentence(EFFUSION, p)


def test_report_keeps_every_finding_with_its_certainty_phrase() -> None:
    findings = [
        EFFUSION.with_(probability=0.95),
        ATELECTASIS.with_(probability=0.02),
        Finding("pneumothorax", presence=Presence.ABSENT, probability=0.01),
    ]
    text = write_with_certainty(findings)
    assert "Findings consistent with a small left pleural effusion." in text
    assert "Atelectasis in the right lower lobe is very unlikely." in text
    assert "No pneumothorax." in text
    impression = text.split("IMPRESSION:")[1]
    assert "effusion" in impression and "atelectasis" not in impression.lower()
