"""Prior reports from the PACS: the patient's latest earlier DICOM SR, as a context item.

Where radloop has no signed report of its own for a study's prior (the prior was read before
radloop was installed, or elsewhere), the drafting model may still be given the prior's report
if the PACS holds it as a Structured Report. With ``RADLOOP_PACS_PRIOR_REPORTS=1`` (and the
DICOMweb URL set) the context gatherer asks :func:`prior_report_finder`'s finder, which:

1. searches the PACS by QIDO-RS for SR instances of the patient (Patient ID) in studies dated
   up to the film's date, other than the film's own study;
2. retrieves the latest of them (by study date, then content date and time) by WADO-RS;
3. reads its text and coded content into a context item labelled "PACS SR" (", not verified"
   when its Verification Flag is not VERIFIED) and dated by its study date
   (:func:`radloop.context.prior_report_from_sr`).

A PACS that is down or refuses costs the draft nothing but the item (the gatherer logs it and
drafts on). The finder is registered through the entry-point group
``radloop.context.prior_reports`` (``pyproject.toml``), so the workstation's worker finds it
whatever process it runs in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from radloop.context import prior_report_from_sr
from radloop.pacs.config import PacsConfig, PacsConfigError
from radloop.pacs.web import PacsWeb, _answer_error, _value, make_client
from radloop.study import ContextItem, Study

__all__ = ["prior_report_finder", "sr_prior_reports"]

log = logging.getLogger("radloop.pacs.priors")

_FIELDS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "StudyDate",
    "ContentDate",
    "ContentTime",
]


def sr_prior_reports(web: PacsWeb, study: Study, patient_key: str | None) -> list[ContextItem]:
    """The patient's latest SR in the PACS from before ``study`` (dated up to its day, not
    the study itself) as a context item; none when the PACS holds none, or when the study
    names no patient."""
    if not patient_key:
        return []
    film_date = study.metadata.study_date
    filters = {"PatientID": patient_key, "Modality": "SR"}
    if film_date is not None:
        filters["StudyDate"] = f"-{film_date:%Y%m%d}"
    try:
        found = web.client.search_for_instances(
            search_filters=filters, fields=_FIELDS, get_remaining=True
        )
    except Exception as error:  # requests' errors: the PACS is down or refused
        raise _answer_error("QIDO-RS search for prior SRs", error) from error
    candidates = [
        item
        for item in found
        if _value(item, "0020000D") and _value(item, "0020000D") != study.study_instance_uid
    ]
    if not candidates:
        return []
    latest = max(
        candidates,
        key=lambda i: (_value(i, "00080020"), _value(i, "00080023"), _value(i, "00080033")),
    )
    try:
        dataset = web.client.retrieve_instance(
            _value(latest, "0020000D"),
            _value(latest, "0020000E"),
            _value(latest, "00080018"),
            media_types=(("application/dicom", "*"),),
        )
    except Exception as error:
        raise _answer_error("WADO-RS retrieve of a prior SR", error) from error
    item = prior_report_from_sr(dataset, film_date=film_date)
    return [item] if item is not None else []


def prior_report_finder(
    env: dict[str, str] | None = None,
) -> Callable[[Study, str | None], Sequence[ContextItem]] | None:
    """The finder the context gatherer asks, or None when ``RADLOOP_PACS_PRIOR_REPORTS`` is
    not set (or the PACS settings cannot be used: logged, and drafting goes on without it)."""
    try:
        config = PacsConfig.from_env(env)
    except PacsConfigError as error:
        log.error("prior reports from the PACS are off: %s", error)
        return None
    if not config.prior_reports:
        return None
    web: list[PacsWeb] = []

    def finder(study: Study, patient_key: str | None) -> Sequence[ContextItem]:
        if not web:
            web.append(make_client(config))
        return sr_prior_reports(web[0], study, patient_key)

    return finder
