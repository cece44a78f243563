"""Sign-off and decisions that cannot race, on SQLite and PostgreSQL.

Every write and the sign request carry the worksheet version the reader saw; a stale one gets
409 naming what changed and by whom. One final report per study (a unique partial index):
of concurrent signers exactly one wins and the others get 409, never 500. Decisions on
different findings merge; the same finding decided twice gives 409 to the second. Opening a
study's worksheet for the first time concurrently never gives 500.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reviewkit import HALLUCINATION, PASSWORD, write_sample_copy

THREADS = 4
RADIOLOGISTS = ("rad", "rad2", "rad3", "rad4")


@pytest.fixture(scope="module")
def more_radiologists(store: Any, accounts: dict[str, str]) -> tuple[str, ...]:
    from radloop.review.accounts import create_user

    with store.sessions() as session:
        for name in RADIOLOGISTS[1:]:
            create_user(session, name, PASSWORD, "radiologist", f"Dr {name.title()}")
        session.commit()
    return RADIOLOGISTS


@pytest.fixture()
def new_study(store: Any, tmp_path: Path) -> Callable[[str], str]:
    """``new_study(reply)``: a fresh drafted study whose draft is the scripted reply."""
    from pydicom.uid import generate_uid
    from sqlalchemy import update

    from radloop.models.mock import MockModel
    from radloop.review.db import Job
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import draft_study
    from radloop.safety import TableVerifier

    def make(reply: str) -> str:
        uid = generate_uid()
        folder = write_sample_copy(
            tmp_path / uid, uid=uid, patient=f"PAT-{uid[-8:]}", date=datetime.date(2024, 2, 1)
        ).parent
        study_id = ingest_path(store, folder).added[0]
        with store.sessions() as session:
            session.execute(update(Job).where(Job.study_id == study_id).values(state="done"))
            session.commit()
        presence = {"mass": 0.02, "cardiomegaly": 0.97, "pneumothorax": 0.01}
        codes = sorted(presence)
        verifier = TableVerifier(
            {uid: {"presence": presence}},
            name="test-table-verifier",
            competence={"domains": [{"name": "lab", "images": "test", "findings": codes}]},
        )
        draft_study(store, study_id, MockModel(reply, model="scripted-test-model"), verifier)
        return study_id

    return make


ROUTINE = "FINDINGS: Cardiomegaly. No pneumothorax.\nIMPRESSION: Cardiomegaly."
FLAGGED = f"FINDINGS: {HALLUCINATION} Cardiomegaly.\nIMPRESSION: Cardiomegaly."


def _together(calls: list[tuple[Any, str, dict[str, Any]]]) -> list[Any]:
    """POST ``(client, url, json)`` each in a thread, released at the same instant; the
    responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        client, url, body = calls[i]
        barrier.wait()
        try:
            results[i] = client.post(url, json=body)
        except Exception as error:  # reported to the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_concurrent_signers_get_one_final_report_and_409s(
    new_study: Callable[[str], str],
    client_for: Any,
    more_radiologists: tuple[str, ...],
    store: Any,
) -> None:
    from sqlalchemy import func, select

    from radloop.review.db import SignedReport

    for _ in range(3):
        study = new_study(ROUTINE)
        clients = [client_for(name) for name in more_radiologists]
        version = clients[0].get(f"/api/studies/{study}").json()["version"]
        answers = _together(
            [(c, f"/api/studies/{study}/sign", {"version": version}) for c in clients]
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] + [409] * (THREADS - 1), [a.text for a in answers]
        with store.sessions() as session:
            finals = session.execute(
                select(func.count())
                .select_from(SignedReport)
                .where(SignedReport.study_id == study, SignedReport.kind == "final")
            ).scalar_one()
        assert finals == 1
        fhir = clients[0].get(f"/api/studies/{study}/export/fhir").json()
        assert fhir["status"] == "final"


def test_the_database_refuses_a_second_final_report(
    new_study: Callable[[str], str], store: Any
) -> None:
    from sqlalchemy.exc import IntegrityError

    from radloop.review import worksheet
    from radloop.review.db import SignedReport, utcnow

    study = new_study(ROUTINE)
    with store.sessions() as session:
        worksheet.sign(session, study, "rad", "Dr Rad")
    with store.sessions() as session:
        session.add(
            SignedReport(
                study_id=study,
                kind="final",
                text="x",
                findings=[],
                flags=[],
                signed_by="rad2",
                signed_by_name="Dr Rad2",
                signed_at=utcnow(),
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()
    with store.sessions() as session:
        worksheet.add_addendum(session, study, "Addendum one.", "rad", "Dr Rad")
    with store.sessions() as session:
        worksheet.add_addendum(session, study, "Addendum two.", "rad2", "Dr Rad2")


def test_a_stale_save_or_sign_gets_409_naming_who_changed_it(
    new_study: Callable[[str], str], client_for: Any, more_radiologists: tuple[str, ...]
) -> None:
    study = new_study(ROUTINE)
    a, b = client_for("rad"), client_for("rad2")
    seen = a.get(f"/api/studies/{study}").json()["version"]
    assert b.get(f"/api/studies/{study}").json()["version"] == seen
    saved = a.put(
        f"/api/studies/{study}/text", json={"text": "No acute abnormality.", "version": seen}
    )
    assert saved.status_code == 200 and saved.json()["version"] == seen + 1
    stale = b.put(
        f"/api/studies/{study}/text",
        json={"text": "Large right pneumothorax.", "version": seen},
    )
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert body["changed_by"] == "rad" and body["change"] == "text edited"
    assert "rad" in body["detail"] and body["version"] == seen + 1
    # B saves on the current version; A, who saw only their own text, cannot sign B's.
    fresh = b.put(
        f"/api/studies/{study}/text",
        json={"text": "Large right pneumothorax.", "version": seen + 1},
    )
    assert fresh.status_code == 200
    refused = a.post(f"/api/studies/{study}/sign", json={"version": seen + 1})
    assert refused.status_code == 409, refused.text
    assert refused.json()["changed_by"] == "rad2"
    detail = a.get(f"/api/studies/{study}").json()
    assert detail["signed"] == [] and detail["text"] == "Large right pneumothorax."
    signed = a.post(f"/api/studies/{study}/sign", json={"version": detail["version"]})
    assert signed.status_code == 200, signed.text
    assert a.get(f"/api/studies/{study}").json()["signed"][0]["text"] == detail["text"]


def test_decisions_on_different_findings_both_persist(
    new_study: Callable[[str], str], client_for: Any, more_radiologists: tuple[str, ...]
) -> None:
    for _ in range(3):
        study = new_study(FLAGGED)
        a, b = client_for("rad"), client_for("rad2")
        detail = a.get(f"/api/studies/{study}").json()
        keys = [item["key"] for item in detail["items"]][:2]
        assert len(keys) == 2
        seen = detail["version"]
        answers = _together(
            [
                (
                    a,
                    f"/api/studies/{study}/findings/{keys[0]}",
                    {"decision": "rejected", "version": seen},
                ),
                (
                    b,
                    f"/api/studies/{study}/findings/{keys[1]}",
                    {"decision": "accepted", "version": seen},
                ),
            ]
        )
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
        decided = {i["key"]: i["decision"] for i in a.get(f"/api/studies/{study}").json()["items"]}
        assert decided[keys[0]] == "rejected" and decided[keys[1]] == "accepted"


def test_the_same_finding_decided_twice_gives_409_to_the_second(
    new_study: Callable[[str], str], client_for: Any, more_radiologists: tuple[str, ...]
) -> None:
    study = new_study(FLAGGED)
    a, b = client_for("rad"), client_for("rad2")
    detail = a.get(f"/api/studies/{study}").json()
    key = detail["items"][0]["key"]
    first = a.post(
        f"/api/studies/{study}/findings/{key}",
        json={"decision": "rejected", "version": detail["version"]},
    )
    assert first.status_code == 200
    second = b.post(
        f"/api/studies/{study}/findings/{key}",
        json={"decision": "accepted", "version": detail["version"]},
    )
    assert second.status_code == 409, second.text
    assert second.json()["changed_by"] == "rad"
    assert second.json()["change"] == f"decision on {key}"
    # At the same time: one of the two wins.
    study = new_study(FLAGGED)
    detail = a.get(f"/api/studies/{study}").json()
    url = f"/api/studies/{study}/findings/{key}"
    answers = _together(
        [
            (c, url, {"decision": d, "version": detail["version"]})
            for c, d in ((a, "rejected"), (b, "accepted"))
        ]
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    # The winner, on the version it got back, may change its mind.
    winner = next(r for r in answers if r.status_code == 200).json()
    again = a.post(
        f"/api/studies/{study}/findings/{key}",
        json={"decision": "accepted", "version": winner["version"]},
    )
    assert again.status_code == 200, again.text


def test_concurrent_first_writes_create_the_worksheet_without_500(
    new_study: Callable[[str], str], client_for: Any, more_radiologists: tuple[str, ...]
) -> None:
    for _ in range(3):
        study = new_study(FLAGGED)
        clients = [client_for(name) for name in more_radiologists]
        answers = _together(
            [
                (c, f"/api/studies/{study}/findings/f{k % 2}", {"decision": "accepted"})
                for k, c in enumerate(clients)
            ]
        )
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        study = new_study(ROUTINE)
        answers = _together([(c, f"/api/studies/{study}/sign", {}) for c in clients])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * (THREADS - 1), [r.text for r in answers]
