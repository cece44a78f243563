"""``draft(study)``: a draft report from any model backend.

The prompt asks for the standard sections (lungs, pleura, heart and mediastinum, bones,
devices, impression) with the clinical context. Where the backend can constrain its reply to
a JSON schema, the findings are asked for as JSON; a reply that parses as that JSON is used
directly and the report text is written from it, otherwise the reply is read as free text by
``radloop.report.parse``. Malformed output never raises: what could not be used is recorded in
``DraftReport.warnings``.
"""

from __future__ import annotations

import time

from radloop.assist.compare import predicted_changes
from radloop.assist.prompts import DRAFT_VERSION, SYSTEM, draft_prompt
from radloop.assist.schema import decode_findings, findings_schema
from radloop.assist.types import Change, DraftReport, OutputMode
from radloop.models import FindingsPredictor, VisionLanguageModel
from radloop.report import Change as Direction
from radloop.report import Finding, Presence, Report, parse, write
from radloop.study import Study

__all__ = ["OUTPUT_CHOICES", "draft", "read_findings"]

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
) -> DraftReport:
    """Draft a report of ``study`` (compared with ``prior`` when given).

    ``output`` is ``auto`` (JSON where the backend supports structured output), ``json`` or
    ``text``. With ``n`` > 1 every generation is kept; the report is read from the first.
    """
    if output not in OUTPUT_CHOICES:
        raise ValueError(f'Argument "output" must be one of {OUTPUT_CHOICES}, got {output!r}.')
    if isinstance(model, FindingsPredictor):
        return _draft_structured(study, model, prior)
    structured = output == "json" or (output == "auto" and model.supports_json_schema)
    prompt = draft_prompt(study, prior=prior, history=history, structured=structured)
    images = [*study.images, *(prior.images if prior is not None else ())]
    generations = model.generate(
        images,
        prompt,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        logprobs=logprobs,
        system=SYSTEM,
        json_schema=findings_schema() if structured else None,
    )
    reply = generations[0].text if generations else ""
    findings, text, mode, warnings = read_findings(reply, expected_json=structured,
                                                   source=model.model_id)  # fmt: skip
    if generations and generations[0].finish_reason == "length":
        warnings.append(f"the reply was cut off at max_tokens={max_tokens}")
    return DraftReport(
        report=Report(
            findings=findings,
            text=text,
            study_instance_uid=study.study_instance_uid,
            source_model=model.model_id,
        ),
        generations=tuple(generations),
        prompt=prompt,
        prompt_version=DRAFT_VERSION,
        model_id=model.model_id,
        latency_s=max((g.latency_s for g in generations), default=0.0),
        output_mode=mode,
        warnings=tuple(warnings),
    )


def read_findings(
    reply: str, *, expected_json: bool, source: str | None = None
) -> tuple[tuple[Finding, ...], str, OutputMode, list[str]]:
    """Findings, report text, how they were read and warnings, from one model reply."""
    if not reply.strip():
        return (), "", OutputMode.TEXT, ["the model returned an empty reply"]
    decoded = decode_findings(reply, source=source)
    if decoded is not None:
        warnings = list(decoded.warnings)
        return decoded.findings, write(decoded.findings), OutputMode.JSON, warnings
    warnings = []
    if expected_json:
        warnings.append("the reply was not the requested JSON; read it as free text")
    findings = tuple(f.with_(source=source) for f in parse(reply))
    return findings, reply.strip(), OutputMode.TEXT, warnings


def _draft_structured(study: Study, model: FindingsPredictor, prior: Study | None) -> DraftReport:
    start = time.perf_counter()
    findings = tuple(model.predict_findings(study.images))
    if prior is not None:
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
