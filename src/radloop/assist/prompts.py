"""Versioned prompt templates for the assist tasks.

A prompt's version is stored with every output (``DraftReport.prompt_version`` and so on), so
a change of wording is a new version and results stay comparable. Clinical context comes from
``Study.context`` and ``Study.metadata``; the history, which DICOM does not carry, is passed in.
"""

from __future__ import annotations

from radloop.assist.schema import reply_codes
from radloop.report.writer import SECTIONS
from radloop.study import Study

__all__ = [
    "ASK_VERSION",
    "COMPARE_VERSION",
    "DRAFT_VERSION",
    "SYSTEM",
    "ask_prompt",
    "clinical_context",
    "compare_prompt",
    "draft_prompt",
]

DRAFT_VERSION = "draft/1"
ASK_VERSION = "ask/1"
COMPARE_VERSION = "compare/1"

SYSTEM = (
    "You are a radiology assistant. You describe chest radiographs for a radiologist, who "
    "reviews and signs every report. Describe only what is visible in the images; never invent "
    "findings, measurements or prior studies. Sides are the patient's right and left. Your "
    "output is a draft for review, not a diagnosis."
)

_SEX = {"M": "male", "F": "female", "O": "other sex"}

_CODES = ", ".join(reply_codes())

_FINDING_FIELDS = (
    'Each finding is {"code": one of the codes below, "presence": "present" | "absent" | '
    '"uncertain", "side": "right" | "left" | "bilateral" | null, "zones": [lung zones such as '
    '"right_upper", "left_lower"], "lobes": [such as "right_middle_lobe", "lingula"], '
    '"size_mm": number | null, "severity": "trace" | "minimal" | "small" | "mild" | "moderate" | '
    '"large" | "severe" | null, "change": "new" | "increased" | "decreased" | "stable" | '
    '"resolved" | null, "tip_distance_mm": distance of a device tip above its reference | null, '
    '"tip_reference": "carina" | "cavoatrial junction" | ... | null}.'
)


def clinical_context(study: Study, *, history: str | None = None) -> list[str]:
    """Lines of what the reader knows before looking: indication, history, age, sex, view."""
    context, meta = study.context, study.metadata
    lines = []
    if context.indication:
        lines.append(f"Indication: {context.indication.strip()}")
    if history:
        lines.append(f"History: {history.strip()}")
    age = context.patient_age_years if context.patient_age_years is not None else meta.patient_age
    sex = context.patient_sex or meta.patient_sex
    if age is not None or sex is not None:
        who = " ".join(
            part
            for part in (f"{age:g}-year-old" if age is not None else None, _SEX.get(sex or ""))
            if part
        )
        lines.append(f"Patient: {who}")
    view = meta.view_position or next(
        (i.view_position for i in study.images if i.view_position), None
    )
    if view:
        lines.append(f"View: {view}")
    if meta.study_date:
        lines.append(f"Study date: {meta.study_date.isoformat()}")
    return lines


def _context_block(study: Study, history: str | None) -> str:
    lines = clinical_context(study, history=history)
    return "Clinical context:\n" + "\n".join(lines) + "\n\n" if lines else ""


def _images_line(current: Study, prior: Study | None) -> str:
    count = len(current.images)
    if prior is None:
        subject = "The image is from" if count == 1 else f"The {count} images are from"
        return f"{subject} one chest radiograph study.\n"
    date = f" from {prior.metadata.study_date.isoformat()}" if prior.metadata.study_date else ""
    return (
        f"The first {_n(count, 'image')} {_is(count)} the current study; the last "
        f"{_n(len(prior.images), 'image')} {_is(len(prior.images))} the prior study{date}.\n"
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is(count: int) -> str:
    return "is" if count == 1 else "are"


def draft_prompt(
    study: Study, *, prior: Study | None = None, history: str | None = None, structured: bool
) -> str:
    """Ask for a report with the standard sections, as JSON or as sectioned text."""
    names = [name for _, name in SECTIONS if name != "Other"]
    change = (
        " For each finding, say whether it is new, increased, decreased, stable or resolved "
        "compared with the prior study."
        if prior is not None
        else ""
    )
    head = _context_block(study, history) + _images_line(study, prior)
    if structured:
        return (
            f"{head}Draft the findings of this chest radiograph.{change} Cover "
            f"{', '.join(n.lower() for n in names)}: list what is present and the important "
            "negatives you checked (for example pneumothorax absent).\n"
            'Reply with one JSON object only: {"findings": [...], "impression": "..."}. '
            f"{_FINDING_FIELDS}\nCodes: {_CODES}."
        )
    sections = "\n".join(f"{name}: ..." for name in names)
    return (
        f"{head}Write the findings and impression of a report for this chest radiograph."
        f"{change} Use exactly these sections, one line each:\n{sections}\nIMPRESSION: ...\n"
        'State important negatives briefly ("No pneumothorax."). Give sides, lung zones or '
        "lobes, sizes in mm and device tip positions in mm from the carina where visible. Write "
        '"None." for devices when there are none.'
    )


def ask_prompt(study: Study, question: str, *, history: str | None = None, structured: bool) -> str:
    """Ask one question; the answer must name the finding it rests on."""
    head = _context_block(study, history) + _images_line(study, None)
    if structured:
        return (
            f"{head}Question: {question.strip()}\n"
            'Reply with one JSON object only: {"answer": "yes" | "no" | "uncertain" | null (for '
            'questions that are not yes/no), "text": a one-sentence answer, "finding": the '
            f"finding the answer rests on, or null}}. {_FINDING_FIELDS}\nCodes: {_CODES}."
        )
    return (
        f"{head}Question: {question.strip()}\n"
        "Answer in one or two sentences. Begin with Yes or No when the question asks yes or no. "
        "Name the finding your answer rests on, with its side, lung zone or lobe, size in mm, "
        "or device tip position in mm where the question asks for them."
    )


def compare_prompt(
    current: Study, prior: Study, *, history: str | None = None, structured: bool
) -> str:
    """Ask what changed between the prior and the current study, finding by finding."""
    head = _context_block(current, history) + _images_line(current, prior)
    if structured:
        return (
            f"{head}Compare the current study with the prior study. List each finding that is "
            "new, increased, decreased, stable or resolved.\n"
            'Reply with one JSON object only: {"changes": [{"code": ..., "direction": "new" | '
            '"increased" | "decreased" | "stable" | "resolved", "side": "right" | "left" | '
            '"bilateral" | null, "details": "sizes or extent before and after"}]}.\n'
            f"Codes: {_CODES}."
        )
    return (
        f"{head}Compare the current study with the prior study. Write one sentence per finding "
        "that changed or stayed the same, saying whether it is new, increased, decreased, "
        "stable or resolved, with its side and its size or extent before and after. Write "
        '"No interval change." if nothing changed.'
    )
