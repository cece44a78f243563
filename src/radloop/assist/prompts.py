"""Versioned prompt templates for the assist tasks.

A prompt's version is stored with every output (``DraftReport.prompt_version`` and so on), so
a change of wording is a new version and results stay comparable. Clinical context comes from
``Study.context`` (the indication and the context items: the order's history, the prior
report, lab values and active conditions, each with where it came from and how old it is) and
``Study.metadata``; a history not on the study is passed in. The items are written within a
size budget by :func:`radloop.context.render_items` (the least relevant dropped first, and the
drop said), and :func:`context_section` gives both the text and the record of what was given.

Versions: ``/2`` labels every context item with its provenance and age, and gives prior
reports, lab values and conditions (``/1`` had indication, history, patient, view and date).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radloop.assist.schema import reply_codes
from radloop.context import DEFAULT_MAX_CHARS, RenderedItems, render_items
from radloop.report.writer import SECTIONS
from radloop.study import ContextItem, Study

__all__ = [
    "ASK_VERSION",
    "COMPARE_VERSION",
    "DEFAULT_MAX_CHARS",
    "DRAFT_VERSION",
    "SYSTEM",
    "ContextSection",
    "ask_prompt",
    "clinical_context",
    "compare_prompt",
    "context_section",
    "draft_prompt",
]

DRAFT_VERSION = "draft/2"
ASK_VERSION = "ask/2"
COMPARE_VERSION = "compare/2"

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


_HEAD = "Clinical context (known before this film; each item says where it came from and when):"
_USE = (
    "The context helps you interpret the images; it is not a finding of this film. Describe "
    "only what the images show."
)
_REQUEST = "given with the request"


@dataclass(frozen=True)
class ContextSection:
    """The prompt's clinical context: its text as the model reads it, and what was given."""

    text: str
    lines: tuple[str, ...]
    items: RenderedItems

    def record(self) -> dict[str, Any]:
        """What the model was given, for storage with the draft: the section's exact text,
        the items given (and shortened) and the items left out, with why."""
        return {"text": self.text, **self.items.to_dict()}


def context_section(
    study: Study, *, history: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> ContextSection:
    """The clinical context: indication, patient, view and date, then the context items
    (``history`` first, labelled as given with the request) within ``max_chars``."""
    context, meta = study.context, study.metadata
    lines = []
    if context.indication:
        source = f" ({context.indication_source})" if context.indication_source else ""
        lines.append(f"Indication{source}: {context.indication.strip()}")
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
    items = list(context.items)
    if history and history.strip():
        items.insert(0, ContextItem("history", " ".join(history.split()), _REQUEST))
    rendered = render_items(items, max_chars=max_chars)
    lines += rendered.lines
    if not lines:
        return ContextSection("", (), rendered)
    use = f"{_USE}\n" if rendered.given else ""
    return ContextSection(f"{_HEAD}\n" + "\n".join(lines) + f"\n{use}\n", tuple(lines), rendered)


def clinical_context(
    study: Study, *, history: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> list[str]:
    """Lines of what the reader knows before looking: indication, patient, view, date, and
    the context items with their provenance (see :func:`context_section`)."""
    return list(context_section(study, history=history, max_chars=max_chars).lines)


def _context_block(study: Study, history: str | None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    return context_section(study, history=history, max_chars=max_chars).text


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
    study: Study,
    *,
    prior: Study | None = None,
    history: str | None = None,
    structured: bool,
    context_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """Ask for a report with the standard sections, as JSON or as sectioned text."""
    names = [name for _, name in SECTIONS if name != "Other"]
    change = (
        " For each finding, say whether it is new, increased, decreased, stable or resolved "
        "compared with the prior study."
        if prior is not None
        else ""
    )
    head = _context_block(study, history, context_chars) + _images_line(study, prior)
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


def ask_prompt(
    study: Study,
    question: str,
    *,
    history: str | None = None,
    structured: bool,
    context_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """Ask one question; the answer must name the finding it rests on."""
    head = _context_block(study, history, context_chars) + _images_line(study, None)
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
    current: Study,
    prior: Study,
    *,
    history: str | None = None,
    structured: bool,
    context_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """Ask what changed between the prior and the current study, finding by finding."""
    head = _context_block(current, history, context_chars) + _images_line(current, prior)
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
