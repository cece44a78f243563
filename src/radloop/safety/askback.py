"""Ask-back: closed questions about each claim, put to the drafting model or another one.

For each positive claim of a draft, and each critical finding the draft denies, the model is
asked "Is there a pleural effusion on this radiograph? Answer yes or no."; for a positive
claim with a side, also "On which side is the pleural effusion: left, right or both? Answer
with one word.". Each answer becomes a probability stored with the claim's numbers:

- ``p_ask_yes``, P(yes): from the first answer token's top log-probabilities where the server
  returns them (vLLM, llama.cpp, Ollama, the transformers backend), summed over the spellings
  of "yes" and of "no" and normalised over the two; otherwise the share of "yes" among
  ``samples`` answers sampled at ``temperature``;
- ``p_ask_side``, P(the claimed side), the same way over left, right and both.

A question the model answers with neither gives no reading (missing, never a default). The
requests run concurrently within the backend's concurrency cap; their cost is accounted.
:func:`token_probability` reads the drafting model's own token probability of a claim from
the draft's log-probabilities, at no extra request.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from radloop.assist import DraftReport
from radloop.models import Generation, VisionLanguageModel
from radloop.models.base import Cost
from radloop.report import Finding, Presence
from radloop.study import Study
from radloop.vocabulary import Criticality, Side, finding

__all__ = [
    "ASK_BACK_VERSION",
    "AskBack",
    "AskBackReading",
    "Question",
    "ask_back",
    "questions",
    "token_probability",
    "with_ask_back",
]

ASK_BACK_VERSION = "askback-1"
"""The version of the questions' wording: readings are comparable only within one version."""

_PRESENCE = "Is there {name} on this radiograph? Answer yes or no."
_SIDE = "On which side is the {name}: left, right or both? Answer with one word."
_NO_ARTICLE = ("megaly", "sis", "edema", "ema", "tion", "pneumothorax")
_YES_NO = {"yes": "yes", "no": "no"}
_SIDES = {"left": "left", "right": "right", "both": "both", "bilateral": "both"}
_CLAIMED = {Side.LEFT: "left", Side.RIGHT: "right", Side.BILATERAL: "both"}
_WORD = re.compile(r"[a-z]+")

Kind = Literal["presence", "side"]


@dataclass(frozen=True)
class Question:
    """One closed question about the draft's claim ``index``."""

    index: int
    kind: Kind
    text: str
    wanted: str
    """The answer that supports the claim: ``yes``, or the claimed side."""


@dataclass(frozen=True)
class AskBackReading:
    """A claim's ask-back probabilities and how each was read (``logprobs`` or ``samples``)."""

    p_yes: float | None = None
    p_side: float | None = None
    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class AskBack:
    """The readings of one draft's questions, by claim index, and what asking cost."""

    model_id: str
    readings: dict[int, AskBackReading] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    version: str = ASK_BACK_VERSION

    def numbers(self, index: int) -> dict[str, float]:
        """The ClaimNumbers fields this gives claim ``index`` (none where it has no reading)."""
        reading = self.readings.get(index)
        if reading is None:
            return {}
        out = {"p_ask_yes": reading.p_yes, "p_ask_side": reading.p_side}
        return {k: v for k, v in out.items() if v is not None}


def _article(name: str) -> str:
    if name.endswith(_NO_ARTICLE):
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def questions(findings: Sequence[Finding]) -> list[Question]:
    """The questions about ``findings``: presence for every positive claim and every critical
    finding denied, side for a positive claim with a side."""
    asked = []
    for index, found in enumerate(findings):
        critical = finding(found.code).critical is not Criticality.NEVER
        if not found.is_positive and not (found.presence is Presence.ABSENT and critical):
            continue
        text = _PRESENCE.format(name=_article(found.name))
        asked.append(Question(index, "presence", text, "yes"))
        if found.is_positive and found.side in _CLAIMED:
            text = _SIDE.format(name=found.name)
            asked.append(Question(index, "side", text, _CLAIMED[found.side]))
    return asked


def _normalised(token: str, choices: dict[str, str]) -> str | None:
    word = _WORD.search(token.lower())
    return choices.get(word.group()) if word is not None else None


def _from_logprobs(generation: Generation, choices: dict[str, str]) -> dict[str, float] | None:
    """Probabilities of the answers from the first answer token's top log-probabilities."""
    for token in generation.logprobs or ():
        mass: dict[str, float] = {}
        seen: set[str] = set()
        for text, logprob in (*token.top, (token.token, token.logprob)):
            answer = _normalised(text, choices)
            if answer is None or text in seen:
                continue
            seen.add(text)
            mass[answer] = mass.get(answer, 0.0) + math.exp(logprob)
        if mass:
            total = sum(mass.values())
            return {answer: p / total for answer, p in mass.items()}
        if token.token.strip():
            return None  # the model began its answer with something else
    return None


def _from_samples(generations: Sequence[Generation], choices: dict[str, str]) -> dict[str, float]:
    answers = [_normalised(g.text, choices) for g in generations]
    given = [a for a in answers if a is not None]
    return {a: given.count(a) / len(given) for a in set(given)} if given else {}


def _ask(
    model: VisionLanguageModel, images: Sequence[Any], question: Question, samples: int,
    temperature: float, top_logprobs: int,
) -> tuple[float | None, str, list[Generation]]:  # fmt: skip
    choices = _YES_NO if question.kind == "presence" else _SIDES
    spent: list[Generation] = []
    if model.supports_logprobs:
        spent = model.generate(images, question.text, n=1, temperature=0.0, max_tokens=3,
                               logprobs=True, top_logprobs=top_logprobs)  # fmt: skip
        probabilities = _from_logprobs(spent[0], choices) if spent else None
        if probabilities is not None:
            return probabilities.get(question.wanted, 0.0), "logprobs", spent
    if samples < 1:
        return None, "samples", spent
    sampled = model.generate(images, question.text, n=samples, temperature=temperature,
                             max_tokens=3)  # fmt: skip
    probabilities = _from_samples(sampled, choices)
    p = probabilities.get(question.wanted, 0.0) if probabilities else None
    return p, "samples", [*spent, *sampled]


def ask_back(
    draft: DraftReport,
    study: Study,
    model: VisionLanguageModel,
    *,
    samples: int = 5,
    temperature: float = 0.7,
    top_logprobs: int = 5,
    concurrency: int | None = None,
) -> AskBack:
    """Ask ``model`` the closed questions about ``draft``'s claims (see the module docstring).

    ``samples`` answers at ``temperature`` are sampled for a question the server gives no
    log-probabilities for (0: such a question gives no reading). ``concurrency`` caps the
    questions in flight (default: the backend's ``max_concurrency``, else 4).
    """
    asked = questions(draft.findings)
    if not asked:
        return AskBack(model.model_id)
    cap = concurrency or int(getattr(model, "max_concurrency", 4) or 4)
    started = time.perf_counter()
    with ThreadPoolExecutor(min(cap, len(asked)), thread_name_prefix="radloop-askback") as pool:
        answers = list(pool.map(
            lambda q: _ask(model, study.images, q, samples, temperature, top_logprobs), asked
        ))  # fmt: skip
    seconds = time.perf_counter() - started
    spent = [g for _, _, generations in answers for g in generations]
    readings: dict[int, AskBackReading] = {}
    for question, (p, method, _) in zip(asked, answers, strict=True):
        if p is None:
            continue
        reading = readings.get(question.index, AskBackReading())
        value = {"p_yes": p} if question.kind == "presence" else {"p_side": p}
        readings[question.index] = AskBackReading(
            **{"p_yes": reading.p_yes, "p_side": reading.p_side, **value},
            methods=(*reading.methods, f"{question.kind}:{method}"),
        )
    return AskBack(model.model_id, readings, Cost.of(spent, seconds))


def token_probability(generation: Generation | None, claim: Finding) -> float | None:
    """The drafting model's probability of the words it wrote the claim with: the geometric
    mean of the token probabilities over the claim's span of the reply. None where the
    backend gave no log-probabilities, or the claim has no span in the reply (JSON output)."""
    evidence = claim.evidence
    if generation is None or not generation.logprobs or evidence is None:
        return None
    text = generation.text
    if text[evidence.start : evidence.end] != evidence.text:
        return None
    inside: list[float] = []
    position = 0
    for token in generation.logprobs:
        piece = token.token.strip()
        if not piece:
            continue
        found = text.find(piece, position)
        if found < 0:
            continue
        position = found + len(piece)
        if found < evidence.end and position > evidence.start:
            inside.append(token.logprob)
    if not inside:
        return None
    return math.exp(sum(inside) / len(inside))


def with_ask_back(checks: Sequence[Any], draft: DraftReport, asked: AskBack | None) -> list[Any]:
    """``checks`` (ClaimChecks of ``draft``) with the model's own readings in their numbers:
    the ask-back answers and the draft's token probability of each claim."""
    first = draft.generations[0] if draft.generations else None
    out = []
    for check in checks:
        if check.index is None:
            out.append(check)
            continue
        more: dict[str, float] = asked.numbers(check.index) if asked is not None else {}
        p_tokens = token_probability(first, check.finding)
        if p_tokens is not None:
            more["token_probability"] = p_tokens
        out.append(replace(check, numbers=replace(check.numbers, **more)) if more else check)
    return out
