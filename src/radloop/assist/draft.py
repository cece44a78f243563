"""``draft(study)``: a draft report from any model backend.

The prompt asks for the standard sections (lungs, pleura, heart and mediastinum, bones,
devices, impression) with the clinical context. Where the backend can constrain its reply to
a JSON schema, the findings are asked for as JSON; a reply that parses as that JSON is used
directly and the report text is written from it, otherwise the reply is read as free text by
``radloop.report.parse``. Malformed output never raises, and it fails closed: a finding whose
presence is invalid is held as uncertain (flagged, never present), a section the model did not
address is written "Not commented." (never "Unremarkable."), and a degenerate reply (empty, cut
off, a repetition loop, schema-breaking JSON, long text with no recognised statement) fails the
draft with the reason. Each case is a typed :class:`OutputWarning` in ``DraftReport.warnings``.

A model that declares a validated domain and can check it (``assess_domain``: the reference
model) abstains on a study outside it: the draft states no finding and says why.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from radloop.assist.compare import predicted_changes
from radloop.assist.degenerate import degenerate_reply
from radloop.assist.domain import abstention
from radloop.assist.prompts import (
    DEFAULT_MAX_CHARS,
    DRAFT_VERSION,
    SYSTEM,
    context_section,
    draft_prompt,
)
from radloop.assist.sampling import Sampling
from radloop.assist.schema import decode_findings, findings_schema
from radloop.assist.types import Change, DraftReport, OutputMode, OutputWarning, WarningKind
from radloop.models import FindingsPredictor, Generation, VisionLanguageModel
from radloop.models.base import Cost
from radloop.models.competence import DomainDecision
from radloop.report import Change as Direction
from radloop.report import Finding, Presence, Report, parse, write
from radloop.study import Study
from radloop.vocabulary import Category, finding

__all__ = [
    "OUTPUT_CHOICES",
    "ReadReply",
    "abstention",
    "draft",
    "read_findings",
    "read_reply",
    "unavailable_draft",
]

# Sections every report addresses (devices and other only when there is something to say).
_MAIN_SECTIONS = tuple(
    c.value for c in (Category.LUNGS, Category.PLEURA, Category.HEART_MEDIASTINUM, Category.BONES)
)

OUTPUT_CHOICES = ("auto", "json", "text")


def draft(
    study: Study,
    model: VisionLanguageModel | FindingsPredictor,
    *,
    prior: Study | None = None,
    history: str | None = None,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 1024,
    logprobs: bool = False,
    output: str = "auto",
    sampling: Sampling | None = None,
    context_chars: int = DEFAULT_MAX_CHARS,
) -> DraftReport:
    """Draft a report of ``study`` (compared with ``prior`` when given).

    ``output`` is ``auto`` (JSON where the backend supports structured output), ``json`` or
    ``text``. With ``n`` > 1 every generation is kept; the report is read from the first.
    With ``sampling`` (and a model that can sample), that many more drafts are sampled at its
    temperature, in one request after the report's, and kept in ``samples`` for the safety
    layer's self-consistency check. The cost of both is in ``cost``. The prompt's
    clinical context (``study.context`` and ``history``) is kept within ``context_chars``
    characters, and ``DraftReport.context`` records exactly what was given.
    """
    if output not in OUTPUT_CHOICES:
        raise ValueError(f'Argument "output" must be one of {OUTPUT_CHOICES}, got {output!r}.')
    if isinstance(model, FindingsPredictor):
        return _draft_structured(study, model, prior)
    structured = output == "json" or (output == "auto" and model.supports_json_schema)
    section = context_section(study, history=history, max_chars=context_chars)
    prompt = draft_prompt(
        study, prior=prior, history=history, structured=structured, context_chars=context_chars
    )
    images = [*study.images, *(prior.images if prior is not None else ())]
    ask = functools.partial(
        _timed, model.generate, images, prompt, max_tokens=max_tokens, system=SYSTEM,
        json_schema=findings_schema() if structured else None,
    )  # fmt: skip
    generations, seconds = ask(n=n, temperature=temperature, logprobs=logprobs)
    cost = {"draft": Cost.of(generations, seconds)}
    samples: list[Generation] = []
    k = sampling.for_model(model) if sampling is not None else 0
    if k and sampling is not None:
        # After the report's request, so a study holds one of the server's slots at a time
        # (and a server with prefix caching reuses the prompt's).
        samples, seconds = ask(n=k, temperature=sampling.temperature, logprobs=False)
        cost["samples"] = Cost.of(samples, seconds)
    first = generations[0] if generations else None
    read = read_reply(
        first.text if first is not None else "",
        expected_json=structured,
        source=model.model_id,
        finish_reason=first.finish_reason if first is not None else None,
    )
    return DraftReport(
        report=Report(
            findings=read.findings,
            text=read.text,
            study_instance_uid=study.study_instance_uid,
            source_model=model.model_id,
        ),
        generations=tuple(generations),
        prompt=prompt,
        prompt_version=DRAFT_VERSION,
        model_id=model.model_id,
        latency_s=max((g.latency_s for g in generations), default=0.0),
        output_mode=read.mode,
        warnings=tuple(read.warnings),
        failure=read.failure,
        unaddressed=read.unaddressed,
        samples=tuple(samples),
        cost=cost,
        context=section.record(),
    )


def _timed(
    generate: Callable[..., list[Generation]], *args: Any, **kwargs: Any
) -> tuple[list[Generation], float]:
    started = time.perf_counter()
    generations = generate(*args, **kwargs)
    return generations, time.perf_counter() - started


def unavailable_draft(study: Study, model_id: str, reason: str) -> DraftReport:
    """The draft of a model that gave no reply at all (it failed or timed out every attempt).

    It holds no finding and no text and fails like a degenerate reply, so the safety layer
    still runs on it and the study keeps any urgency its evidence gives.
    """
    failure = OutputWarning(WarningKind.MODEL_UNAVAILABLE, f"the model gave no reply ({reason})")
    return DraftReport(
        report=Report(
            findings=(),
            text="",
            study_instance_uid=study.study_instance_uid,
            source_model=model_id,
        ),
        generations=(),
        prompt="",
        prompt_version=DRAFT_VERSION,
        model_id=model_id,
        latency_s=0.0,
        output_mode=OutputMode.TEXT,
        warnings=(failure,),
        failure=failure,
    )


@dataclass(frozen=True)
class ReadReply:
    """What one model reply says: findings and text, or the reason it failed (then neither)."""

    findings: tuple[Finding, ...]
    text: str
    mode: OutputMode
    warnings: list[OutputWarning] = field(default_factory=list)
    failure: OutputWarning | None = None
    unaddressed: tuple[str, ...] = ()


def read_reply(
    reply: str,
    *,
    expected_json: bool,
    source: str | None = None,
    finish_reason: str | None = None,
) -> ReadReply:
    """Read one model reply, failing closed (see the module docstring)."""
    decoded = decode_findings(reply, source=source) if reply.strip() else None
    if decoded is not None:
        failure = degenerate_reply(reply, finish_reason=finish_reason, expected_json=expected_json,
                                   decoded_json=True)  # fmt: skip
        if failure is not None:
            return ReadReply((), "", OutputMode.JSON, [failure], failure)
        # Presence problems are reported once per finding, with its index, below.
        warnings = [
            OutputWarning(WarningKind.INVALID_FIELD, w)
            for w in decoded.warnings
            if ".presence:" not in w
        ]
        warnings += [
            OutputWarning(
                WarningKind.INVALID_PRESENCE,
                f"{decoded.findings[i].name}: expected a presence of present, absent or "
                f"uncertain, got {given!r}; held as uncertain — the model's output was invalid",
                i,
            )
            for i, given in zip(decoded.invalid_presence, decoded.presence_given, strict=True)
        ]
        addressed = {finding(f.code).category.value for f in decoded.findings}
        addressed |= set(decoded.normal_sections)
        unaddressed = tuple(s for s in _MAIN_SECTIONS if s not in addressed)
        if unaddressed:
            names = ", ".join(s.replace("_", " and ") for s in unaddressed)
            warnings.append(OutputWarning(
                WarningKind.UNADDRESSED_SECTION,
                f"the model did not comment on: {names}; shown as not commented",
            ))  # fmt: skip
        text = write(decoded.findings, unaddressed=unaddressed)
        return ReadReply(decoded.findings, text, OutputMode.JSON, warnings, None, unaddressed)
    findings = tuple(f.with_(source=source) for f in parse(reply)) if reply.strip() else ()
    failure = degenerate_reply(reply, finish_reason=finish_reason, expected_json=expected_json,
                               n_findings=len(findings))  # fmt: skip
    if failure is not None:
        return ReadReply((), "", OutputMode.TEXT, [failure], failure)
    warnings = []
    if expected_json:
        warnings.append(OutputWarning(
            WarningKind.NOT_JSON, "the reply was not the requested JSON; read it as free text"
        ))  # fmt: skip
    return ReadReply(findings, reply.strip(), OutputMode.TEXT, warnings)


def read_findings(
    reply: str, *, expected_json: bool, source: str | None = None
) -> tuple[tuple[Finding, ...], str, OutputMode, list[str]]:
    """Findings, report text, how they were read and warnings, from one model reply (a
    degenerate reply gives no finding: see :func:`read_reply`)."""
    read = read_reply(reply, expected_json=expected_json, source=source)
    return read.findings, read.text, read.mode, [str(w) for w in read.warnings]


def _abstained(study: Study, model: FindingsPredictor, decision: DomainDecision,
               started: float) -> DraftReport:  # fmt: skip
    text = (
        f"No finding is stated: {decision.reason}. This draft is empty; the film must be read "
        "without it."
    )
    return DraftReport(
        report=Report(
            findings=(),
            text=text,
            study_instance_uid=study.study_instance_uid,
            source_model=model.model_id,
        ),
        generations=(),
        prompt="",
        prompt_version=DRAFT_VERSION,
        model_id=model.model_id,
        latency_s=time.perf_counter() - started,
        output_mode=OutputMode.STRUCTURED,
        warnings=(OutputWarning(WarningKind.ABSTAINED, f"the model abstains: {decision.reason}"),),
        abstained=decision.reason,
    )


def _draft_structured(study: Study, model: FindingsPredictor, prior: Study | None) -> DraftReport:
    start = time.perf_counter()
    outside = abstention(model, study.images)
    if outside is not None:
        return _abstained(study, model, outside, start)
    findings = tuple(model.predict_findings(study.images))
    if prior is not None and abstention(model, prior.images) is None:
        findings = _with_changes(findings, predicted_changes(model, study, prior, now=findings))
    return DraftReport(
        report=Report(
            findings=findings,
            text=write(findings),
            study_instance_uid=study.study_instance_uid,
            source_model=model.model_id,
        ),
        generations=(),
        prompt="",
        prompt_version=DRAFT_VERSION,
        model_id=model.model_id,
        latency_s=time.perf_counter() - start,
        output_mode=OutputMode.STRUCTURED,
    )


def _with_changes(current: tuple[Finding, ...], changes: list[Change]) -> tuple[Finding, ...]:
    """Current findings with their change against the prior. A prior finding not reported now
    is added as absent and resolved, or, where the model still shows it faintly at its place
    (``compare``'s look-back), as uncertain and decreased."""
    by_key = {(c.code, c.side): c for c in changes if c.current is not None}
    out = []
    for found in current:
        change = by_key.get((found.code, found.side))
        out.append(found.with_(change=change.direction) if change and found.is_positive else found)
    for change in changes:
        if change.current is not None or change.prior is None:
            continue
        presence = Presence.ABSENT if change.direction is Direction.RESOLVED else Presence.UNCERTAIN
        gone = change.prior.with_(
            presence=presence, change=change.direction, size_mm=None, dimensions_mm=(),
            severity=None,
        )  # fmt: skip
        out.append(gone)
    return tuple(out)
