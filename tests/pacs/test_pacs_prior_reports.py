"""Prior reports from the PACS: the patient's latest earlier SR, found by QIDO-RS, retrieved
by WADO-RS and given to the model as a context item labelled with its source and age."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from pacskit import ROUTINE, draft_and_sign, sample_instance
from pydicom.uid import generate_uid

SINCE = datetime.date(2024, 1, 1)


def _current_study(tmp_path: Path, patient: str, date: datetime.date) -> Any:
    from radloop.study import load_study

    path = tmp_path / "current" / "current.dcm"
    path.parent.mkdir(parents=True)
    path.write_bytes(sample_instance(patient=patient, date=date))
    return load_study(path.parent)


def test_the_latest_earlier_sr_of_the_patient_is_the_prior_report(
    orthanc: Any, pacs_config: Any, store: Any, tmp_path: Path
) -> None:
    from radloop.pacs.poll import poll_once
    from radloop.pacs.priors import prior_report_finder, sr_prior_reports
    from radloop.pacs.send import send_report
    from radloop.pacs.web import make_client

    # A prior film read and signed in radloop, its SR stored in the PACS; another patient's.
    for patient, day in (("PRIOR-1", datetime.date(2024, 1, 20)), ("OTHER", SINCE)):
        orthanc.upload(sample_instance(generate_uid(), patient=patient, date=day))
    pulled = poll_once(store, pacs_config, since=SINCE)
    assert len(pulled.added) == 2
    for study_id in pulled.added:
        draft_and_sign(store, study_id)
        send_report(store, pacs_config, study_id)

    current = _current_study(tmp_path, "PRIOR-1", datetime.date(2024, 3, 1))
    items = sr_prior_reports(make_client(pacs_config), current, "PRIOR-1")
    assert len(items) == 1
    item = items[0]
    assert item.kind == "prior_report" and item.source == "PACS SR"
    assert item.days_before == 41 and item.date == datetime.date(2024, 1, 20)
    impression = ROUTINE.split("IMPRESSION:")[1].strip()
    assert impression in item.text
    # Nothing for a patient without one, nor for a film dated before the prior.
    assert sr_prior_reports(make_client(pacs_config), current, "NOBODY") == []
    early = _current_study(tmp_path / "early", "PRIOR-1", datetime.date(2024, 1, 2))
    assert sr_prior_reports(make_client(pacs_config), early, "PRIOR-1") == []

    # Through the setting, as the worker's context gatherer asks for it.
    env = {**orthanc.pacs_env(), "RADLOOP_PACS_PRIOR_REPORTS": "1"}
    finder = prior_report_finder(env)
    assert finder is not None
    assert [i.text for i in finder(current, "PRIOR-1")] == [item.text]


def test_off_unless_asked_for_and_installed_as_an_entry_point() -> None:
    from importlib.metadata import entry_points

    from radloop.context.priors import PRIOR_REPORT_GROUP
    from radloop.pacs.priors import prior_report_finder

    assert prior_report_finder({}) is None
    # Asked for without a PACS to ask: off, with the reason logged (drafting goes on).
    assert prior_report_finder({"RADLOOP_PACS_PRIOR_REPORTS": "1"}) is None
    names = {e.name: e.value for e in entry_points(group=PRIOR_REPORT_GROUP)}
    assert names.get("pacs") == "radloop.pacs.priors:prior_report_finder"
