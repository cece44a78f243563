"""``ask(study, question)``: one question about a study, answered with the finding behind it.

Questions are of a few kinds (:class:`QuestionKind`): is there X, which side, where, how
large, is the tube well placed. The answer names the finding it rests on, with its side,
location and size where relevant, so a reviewer can check it against the image.
"""

from __future__ import annotations

import re
import time

from radloop.assist.domain import abstention
from radloop.assist.prompts import ASK_VERSION, SYSTEM, ask_prompt
from radloop.assist.schema import answer_schema, extract_json, finding_from_json
from radloop.assist.types import Answer, QuestionKind
from radloop.models import FindingsPredictor, VisionLanguageModel
from radloop.report import Finding, Presence, parse
from radloop.report.writer import describe
from radloop.study import Study
from radloop.vocabulary import ancestors, finding

__all__ = ["ETT_TIP_RANGE_MM", "ask", "question_finding", "question_kind"]

# An endotracheal tube tip 5 ± 2 cm above the carina with the head neutral (Goodman et al.,
# AJR 1976): the usual "well placed" range on a chest radiograph.
ETT_TIP_RANGE_MM = (30.0, 70.0)

_KINDS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    (QuestionKind.PLACEMENT, re.compile(
        r"\b(well|correctly|properly|appropriately|adequately)[ -](placed|positioned)\b"
        r"|\bmal-?position|\bposition(ed)?\b|\bin (good|satisfactory) position\b|\btip\b")),
    (QuestionKind.SIZE, re.compile(r"\bhow (large|big|long|wide|much)\b|\bsize\b|\bmeasur")),
    (QuestionKind.SIDE, re.compile(
        r"\b(which|what) side\b|\b(left or right|right or left)\b|\blateral(ity)?\b")),
    (QuestionKind.LOCATION, re.compile(r"^\s*where\b|\b(which|what) (lobe|zone)\b|\blocat")),
    (QuestionKind.PRESENCE, re.compile(r"^\s*(is|are|does|do|has|have|was|were|any)\b")),
)  # fmt: skip
_DEVICE_WORDS = re.compile(r"\b(tube|line|catheter|device)s?\b")
_YES_NO = re.compile(r"^\W*(yes|no)\b", re.I)


def question_kind(question: str) -> QuestionKind:
    """What a question asks for, from its wording."""
    lower = question.lower()
    return next((kind for kind, pattern in _KINDS if pattern.search(lower)), QuestionKind.OPEN)


def question_finding(question: str) -> str | None:
    """The finding code a question is about (``"Is there a pneumothorax?"`` → pneumothorax)."""
    mentioned = parse(question)
    if mentioned:
        return mentioned[0].code
    return "support_devices" if _DEVICE_WORDS.search(question.lower()) else None


def ask(
    study: Study,
    question: str,
    model: VisionLanguageModel | FindingsPredictor,
    *,
    history: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 256,
    output: str = "auto",
) -> Answer:
    """Answer ``question`` about ``study``; the answer names the finding it rests on."""
    if not question.strip():
        raise ValueError('Argument "question" must be a non-empty question.')
    kind = question_kind(question)
    target = question_finding(question)
    if isinstance(model, FindingsPredictor):
        return _ask_structured(study, question, kind, target, model)
    structured = output == "json" or (output == "auto" and model.supports_json_schema)
    prompt = ask_prompt(study, question, history=history, structured=structured)
    generations = model.generate(
        study.images,
        prompt,
        temperature=temperature,
        max_tokens=max_tokens,
        system=SYSTEM,
        json_schema=answer_schema() if structured else None,
    )
    reply = generations[0].text.strip() if generations else ""
    warnings: list[str] = []
    text, answer, found = _from_json(reply, warnings, model.model_id)
    if text is None:
        if structured:
            warnings.append("the reply was not the requested JSON; read it as free text")
        text, answer, found = _from_text(reply, target, model.model_id)
    if answer is None and found is not None:
        if kind is QuestionKind.PRESENCE and _about(found, target):
            answer = found.is_positive
        elif kind is QuestionKind.PLACEMENT:
            answer = _well_placed(found)
    if not reply:
        warnings.append("the model returned an empty reply")
    elif found is None:
        warnings.append("the answer names no finding from the vocabulary")
    return Answer(
        question=question,
        kind=kind,
        text=text,
        answer=answer,
        finding=found,
        generations=tuple(generations),
        prompt=prompt,
        prompt_version=ASK_VERSION,
        model_id=model.model_id,
        latency_s=max((g.latency_s for g in generations), default=0.0),
        warnings=tuple(warnings),
    )


def _about(found: Finding, target: str | None) -> bool:
    return target is None or found.code == target or target in ancestors(found.code)


def _from_json(
    reply: str, warnings: list[str], source: str
) -> tuple[str | None, bool | None, Finding | None]:
    data = extract_json(reply)
    if not isinstance(data, dict) or not ({"answer", "text"} & set(data)):
        return None, None, None
    value = str(data.get("answer") or "").strip().lower()
    answer = {"yes": True, "no": False}.get(value)
    item = data.get("finding")
    found = finding_from_json(item, warnings, source=source) if item is not None else None
    text = data.get("text")
    return (text if isinstance(text, str) else reply), answer, found


def _from_text(
    reply: str, target: str | None, source: str
) -> tuple[str, bool | None, Finding | None]:
    match = _YES_NO.match(reply)
    answer = None if match is None else match.group(1).lower() == "yes"
    mentioned = [f.with_(source=source) for f in parse(reply)]
    found = next((f for f in mentioned if _about(f, target)), None) if target else None
    if found is None and mentioned:
        found = mentioned[0]
    return reply, answer, found


def _ask_structured(
    study: Study,
    question: str,
    kind: QuestionKind,
    target: str | None,
    model: FindingsPredictor,
) -> Answer:
    start = time.perf_counter()
    outside = abstention(model, study.images)
    if outside is not None:
        return Answer(
            question=question,
            kind=kind,
            text=f"No answer: {outside.reason}.",
            answer=None,
            finding=None,
            generations=(),
            prompt="",
            prompt_version=ASK_VERSION,
            model_id=model.model_id,
            latency_s=time.perf_counter() - start,
            warnings=(f"the model abstains: {outside.reason}",),
        )
    findings = model.predict_findings(study.images)
    found = next((f for f in findings if _about(f, target)), None) if target else None
    warnings: list[str] = []
    answer: bool | None = None
    if target is None:
        text = "The question names no finding the reference model reports."
        warnings.append("the question names no finding from the vocabulary")
    elif found is None:
        text = f"No {finding(target).name} detected."
        answer = False if kind is QuestionKind.PRESENCE else None
        # The answer rests on the finding's absence: a claim the safety layer can check.
        found = Finding(target, presence=Presence.ABSENT, source=model.model_id)
    else:
        text = describe(found)
        answer = found.is_positive if kind is QuestionKind.PRESENCE else None
        if kind is QuestionKind.PLACEMENT:
            answer = _well_placed(found)
    return Answer(
        question=question,
        kind=kind,
        text=text,
        answer=answer,
        finding=found,
        generations=(),
        prompt="",
        prompt_version=ASK_VERSION,
        model_id=model.model_id,
        latency_s=time.perf_counter() - start,
        warnings=tuple(warnings),
    )


def _well_placed(found: Finding) -> bool | None:
    if found.code != "endotracheal_tube" or found.tip_distance_mm is None:
        return None
    if found.tip_reference not in (None, "carina"):
        return None
    low, high = ETT_TIP_RANGE_MM
    return low <= found.tip_distance_mm <= high
