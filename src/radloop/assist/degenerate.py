"""Degenerate model output: replies that must fail a draft rather than be read.

A reply is degenerate when it is empty, was cut off at the token limit, loops on a few words
("effusio effusio effusion effusion …"), is JSON that breaks the requested schema, holds
control characters, or is long free text in which the report parser recognises no statement
at all. Such a reply is never read
as a finding or as a normal study: the draft fails with the reason (fail closed).
"""

from __future__ import annotations

import re
from collections import Counter

from radloop.assist.types import OutputWarning, WarningKind

__all__ = ["MIN_WORDS_FOR_STATEMENT", "degenerate_reply", "repetition_loop"]

_WORD = re.compile(r"[a-z0-9]+")
MIN_WORDS_FOR_STATEMENT = 60
"""Free text at least this long in which the parser recognises nothing is degenerate."""
_LOOP_MIN_WORDS = 16
_LOOP_DISTINCT_SHARE = 0.2
_LOOP_TRIGRAM_SHARE = 0.5


def repetition_loop(text: str) -> str | None:
    """Why ``text`` reads as a repetition loop, or None.

    Two signs, either enough: few distinct words (under a fifth of at least 16), or one
    three-word phrase making up half of all three-word phrases.
    """
    words = _WORD.findall(text.lower())
    if len(words) < _LOOP_MIN_WORDS:
        return None
    distinct = len(set(words)) / len(words)
    if distinct < _LOOP_DISTINCT_SHARE:
        return f"a repetition loop: {len(set(words))} distinct words in {len(words)}"
    trigrams = Counter(zip(words, words[1:], words[2:], strict=False))
    phrase, count = trigrams.most_common(1)[0]
    if count >= 4 and count / max(len(words) - 2, 1) >= _LOOP_TRIGRAM_SHARE:
        return f"a repetition loop: {' '.join(phrase)!r} repeated {count} times"
    return None


def _looks_like_json(reply: str) -> bool:
    stripped = reply.strip()
    return stripped.startswith(("{", "[", "```"))


def degenerate_reply(
    reply: str,
    *,
    finish_reason: str | None = None,
    expected_json: bool = False,
    decoded_json: bool = False,
    n_findings: int = 0,
) -> OutputWarning | None:
    """The typed reason a reply must fail its draft, or None when it may be read.

    ``decoded_json`` says the reply held the requested JSON; ``n_findings`` is how many
    statements were read from it.
    """
    if not reply.strip():
        return OutputWarning(WarningKind.EMPTY, "the model returned an empty reply")
    if finish_reason == "length":
        return OutputWarning(
            WarningKind.TRUNCATED, "the reply was cut off at the token limit (finish: length)"
        )
    loop = repetition_loop(reply) if not decoded_json else None
    if loop is not None:
        return OutputWarning(WarningKind.REPETITION, f"the reply is {loop}")
    if expected_json and not decoded_json and _looks_like_json(reply):
        return OutputWarning(
            WarningKind.SCHEMA_BROKEN,
            'the reply is JSON that breaks the requested schema ({"findings": [...], '
            '"normal_sections": [...], "impression": "..."})',
        )
    unreadable = sum(1 for ch in reply if not (ch.isprintable() or ch.isspace()))
    if unreadable:
        return OutputWarning(
            WarningKind.NO_STATEMENT,
            f"the reply holds {unreadable} control characters: not readable text",
        )
    words = len(_WORD.findall(reply.lower()))
    if not decoded_json and n_findings == 0 and words >= MIN_WORDS_FOR_STATEMENT:
        return OutputWarning(
            WarningKind.NO_STATEMENT,
            f"the reply has {words} words and no statement the report parser recognises",
        )
    return None
