"""The prior report as a context item: radloop's own signed report, or an SR from the PACS.

The workstation knows each study's prior (the patient's latest earlier study) and gives the
model the report signed for it (:func:`prior_report_item`). A site whose prior reports live in
its PACS registers a finder (:func:`register_prior_report_finder`): a callable that takes the
study and the patient's key and returns items, for instance from a DICOM SR it retrieved, read
by :func:`prior_report_from_sr`, or installs a factory in the entry-point group
``radloop.context.prior_reports`` (``radloop.pacs.priors`` does: ``RADLOOP_PACS_PRIOR_REPORTS``).
The workstation asks the finders only when radloop has no signed report of its own for the
prior.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from radloop.study import ContextItem, Study

__all__ = [
    "PRIOR_REPORT_GROUP",
    "PriorReportFinder",
    "find_prior_reports",
    "load_prior_report_finders",
    "prior_report_finders",
    "prior_report_from_sr",
    "prior_report_item",
    "register_prior_report_finder",
]

PriorReportFinder = Callable[[Study, "str | None"], Sequence[ContextItem]]
"""``finder(study, patient_key) -> items``: prior reports from somewhere radloop cannot see."""

_FINDERS: list[PriorReportFinder] = []


def register_prior_report_finder(finder: PriorReportFinder) -> PriorReportFinder:
    """Add a finder (usable as a decorator); finders are asked in the order registered."""
    if finder not in _FINDERS:
        _FINDERS.append(finder)
    return finder


def prior_report_finders() -> tuple[PriorReportFinder, ...]:
    return tuple(_FINDERS)


PRIOR_REPORT_GROUP = "radloop.context.prior_reports"
"""Entry-point group of finder factories: each is called once with no argument and returns a
finder, or None where its source is not configured (``radloop.pacs.priors`` registers one)."""

_entry_points_loaded = False


def load_prior_report_finders(*, again: bool = False) -> int:
    """Register the finders of the installed packages' entry points (once a process unless
    ``again``); how many were registered. A factory that fails is logged and skipped."""
    global _entry_points_loaded
    import logging
    from importlib.metadata import entry_points

    if _entry_points_loaded and not again:
        return 0
    _entry_points_loaded = True
    added = 0
    for entry in entry_points(group=PRIOR_REPORT_GROUP):
        try:
            finder = entry.load()()
        except Exception:  # a broken plug-in must not stop drafting
            logging.getLogger("radloop.context").exception("prior report finder %r", entry.name)
            continue
        if finder is not None and finder not in _FINDERS:
            register_prior_report_finder(finder)
            added += 1
    return added


def find_prior_reports(study: Study, patient_key: str | None) -> list[ContextItem]:
    """The items of the first registered finder that has any (a failing finder is skipped:
    the draft goes on without it). The entry points' finders are registered first."""
    import logging

    load_prior_report_finders()
    for finder in _FINDERS:
        try:
            found = list(finder(study, patient_key))
        except Exception:  # a PACS that is down must not stop drafting
            logging.getLogger("radloop.context").exception("prior report finder %r", finder)
            continue
        if found:
            return found
    return []


def _date(value: datetime.date | datetime.datetime | None) -> datetime.date | None:
    return value.date() if isinstance(value, datetime.datetime) else value


def prior_report_item(
    text: str,
    *,
    film_date: datetime.date | None,
    prior_date: datetime.date | None,
    signed_at: datetime.date | datetime.datetime | None = None,
    source: str = "radloop",
    addenda: Sequence[tuple[str, datetime.date | datetime.datetime | None]] = (),
) -> ContextItem:
    """The prior report as an item: its age is the prior film's, counted from this film, and
    its detail says when it was signed. Addenda follow the text, each with its date."""
    signed = _date(signed_at)
    body = " ".join(text.split())
    for added, when in addenda:
        day = _date(when)
        body += f" Addendum{f' ({day.isoformat()})' if day else ''}: {' '.join(added.split())}"
    details = []
    if signed is not None:
        details.append(f"signed {signed.isoformat()}")
    if prior_date is not None:
        details.append(f"prior film of {prior_date.isoformat()}")
    days = (film_date - prior_date).days if film_date and prior_date else None
    return ContextItem(
        "prior_report", body, source, days, prior_date, detail=", ".join(details) or None
    )


def _sr_text(items: Sequence[Any], depth: int = 0) -> list[str]:
    """TEXT and CODE content items of an SR content tree, as ``Name: value`` lines."""
    lines: list[str] = []
    for item in items:
        name = ""
        for concept in item.get("ConceptNameCodeSequence", []):
            name = str(concept.get("CodeMeaning", "") or "")
        kind = str(item.get("ValueType", ""))
        value = ""
        if kind == "TEXT":
            value = str(item.get("TextValue", "") or "")
        elif kind == "CODE":
            value = next(
                (str(c.get("CodeMeaning", "")) for c in item.get("ConceptCodeSequence", [])), ""
            )
        if value:
            lines.append(f"{name}: {value}" if name else value)
        if depth < 8:
            lines.extend(_sr_text(item.get("ContentSequence", []), depth + 1))
    return lines


def prior_report_from_sr(
    dataset: Any, *, film_date: datetime.date | None, source: str = "PACS SR"
) -> ContextItem | None:
    """A prior report from a DICOM Structured Report (a pydicom Dataset): its TEXT and CODE
    content, the date of the study it reports (Study Date) and when it was made (Content
    Date). None when the SR holds no text."""
    from radloop.study.metadata import parse_dicom_date

    lines = _sr_text(dataset.get("ContentSequence", []))
    if not lines:
        return None
    verified = str(dataset.get("VerificationFlag", "") or "").upper() == "VERIFIED"
    label = source if verified else f"{source}, not verified"
    return prior_report_item(
        " ".join(lines),
        film_date=film_date,
        prior_date=parse_dicom_date(dataset.get("StudyDate")),
        signed_at=parse_dicom_date(dataset.get("ContentDate")),
        source=label,
    )
