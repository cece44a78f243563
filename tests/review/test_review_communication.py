"""Sign-off refusals in plain words, the record of communicating a critical result, and the
next unsigned study in worklist order. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from typing import Any

import pytest
from reviewkit import Seeded
from sqlalchemy import func, select


def _last_seq(store: Any) -> int:
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        return int(session.execute(select(func.max(AuditEntry.seq))).scalar() or 0)


def _audit_after(store: Any, since: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)
        ).scalars()
        return [(e.username, e.action, e.target, json.loads(e.detail or "{}")) for e in rows]


def test_an_undecided_flag_is_refused_naming_the_finding_not_its_key(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["flagged"]
    page = rad.get(f"/studies/{study}").text
    # Said on the page before any confirmation, in words.
    listed = re.search(r'<ul id="sign-blockers".*?</ul>', page, re.S)
    assert listed is not None
    assert "Decide the flagged finding “" in listed.group(0)
    assert "right upper lobe" in listed.group(0).lower()

    refused = rad.post(f"/api/studies/{study}/sign", json={})
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith("Decide the flagged finding “"), detail
    assert "f0" not in detail and study not in detail and "expected" not in detail
    assert [b["kind"] for b in refused.json()["blockers"]] == ["undecided"]


def test_an_urgent_study_is_signed_only_after_the_communication_is_recorded(
    seeded: Seeded, client_for: Any, store: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["urgent"]
    refused = rad.post(f"/api/studies/{study}/sign", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith("Record to whom, when and how the critical result")
    assert "pneumothorax" in refused.json()["detail"]
    page = rad.get(f"/studies/{study}").text
    assert "Critical result communication" in page and "Not recorded yet" in page

    now = datetime.datetime.now(datetime.UTC)
    for bad, field in (
        ({"method": "telephone", "communicated_at": now.isoformat()}, "recipient"),
        (
            {
                "recipient": "Dr Lee, ED",
                "method": "carrier pigeon",
                "communicated_at": now.isoformat(),
            },
            "method",
        ),
        ({"recipient": "Dr Lee, ED", "method": "telephone"}, "communicated_at"),
        (
            {
                "recipient": "Dr Lee, ED",
                "method": "telephone",
                "communicated_at": (now + datetime.timedelta(hours=2)).isoformat(),
            },
            "communicated_at",
        ),
    ):
        answer = rad.post(f"/api/studies/{study}/communications", json=bad)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith(f"{field}: expected"), answer.text
    assert (
        client_for("aud")
        .post(f"/api/studies/{study}/communications", json={"waived_reason": "x"})
        .status_code
        == 403
    )

    since = _last_seq(store)
    told = (now - datetime.timedelta(minutes=3)).replace(microsecond=0)
    kept = rad.post(
        f"/api/studies/{study}/communications",
        json={
            "recipient": "Dr Lee, ED registrar",
            "method": "telephone",
            "communicated_at": told.isoformat(),
        },
    )
    assert kept.status_code == 200, kept.text
    record = kept.json()["recorded"]
    assert record["recipient"] == "Dr Lee, ED registrar" and record["method"] == "telephone"
    assert datetime.datetime.fromisoformat(record["communicated_at"]) == told
    assert "pneumothorax" in record["finding"]
    audited = [e for e in _audit_after(store, since) if e[1] == "communicate_critical"]
    assert audited and audited[0][:3] == ("rad", "communicate_critical", study)
    assert audited[0][3]["recipient"] == "Dr Lee, ED registrar"

    page = rad.get(f"/studies/{study}").text
    assert "told to <strong>Dr Lee, ED registrar</strong> by telephone" in page
    assert "Not recorded yet" not in page
    line = (
        "Critical result communicated to Dr Lee, ED registrar by telephone at "
        f"{told:%Y-%m-%d %H:%M} UTC by Dr Rad."
    )
    assert f"The signed report ends with: “{line}”" in page
    signed = rad.post(f"/api/studies/{study}/sign", json={})
    assert signed.status_code == 200, signed.text
    # The report documents the communication, so the FHIR and SR exports carry it.
    detail = rad.get(f"/api/studies/{study}").json()
    assert detail["signed"][0]["text"].endswith(f"\n\nCOMMUNICATION:\n{line}")
    fhir = rad.get(f"/api/studies/{study}/export/fhir").json()
    text = base64.b64decode(fhir["presentedForm"][0]["data"]).decode()
    assert text.rstrip().endswith(line)
    sr = rad.get(f"/api/studies/{study}/export/sr")
    assert sr.status_code == 200 and line.encode() in sr.content
    with store.sessions() as session:
        from radloop.review.db import SignedReport

        kept = session.execute(
            select(SignedReport).where(SignedReport.study_id == study)
        ).scalar_one()
        assert [f["code"] for f in kept.findings].count("pneumothorax") == 1


def test_a_waiver_with_a_reason_through_the_page_form_also_allows_signing(
    seeded: Seeded, client_for: Any, store: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["failed"]  # urgent: the verifier saw a pneumothorax the draft missed
    csrf = rad.headers["X-CSRF-Token"]
    empty = rad.post(
        f"/studies/{study}/communications",
        data={"csrf_token": csrf, "recipient": "", "waived_reason": ""},
        follow_redirects=False,
    )
    assert empty.status_code == 303
    assert "communication_error=" in empty.headers["location"]
    shown = rad.get(empty.headers["location"]).text
    assert "Not recorded: recipient: expected the name and role" in shown

    since = _last_seq(store)
    waived = rad.post(
        f"/studies/{study}/communications",
        data={"csrf_token": csrf, "waived_reason": "known pneumothorax, team at the bedside"},
        follow_redirects=False,
    )
    assert waived.status_code == 303 and "error" not in waived.headers["location"]
    actions = [e[1] for e in _audit_after(store, since)]
    assert "waive_communication" in actions
    detail = rad.get(f"/api/studies/{study}").json()
    blockers = rad.post(f"/api/studies/{study}/sign", json={"version": detail["version"]}).json()
    # What is left is the undecided omission, not the communication.
    assert [b["kind"] for b in blockers["blockers"]] == ["undecided"]
    assert "possible omission" in blockers["detail"]


def test_next_unsigned_follows_the_worklist_order_and_wraps(
    seeded: Seeded, client_for: Any, store: Any
) -> None:
    from radloop.review.queries import WorklistFilter, next_unsigned, worklist

    with store.reading() as connection:
        _, _, rows = worklist(connection, WorklistFilter("to_review", limit=100))
        order = [r["id"] for r in rows]
        assert len(order) >= 3
        assert next_unsigned(connection, order[0]) == order[1]
        assert next_unsigned(connection, order[-1]) == order[0]  # from the top again
        assert next_unsigned(connection, "no-such-study") == order[0]
    rad = client_for("rad")
    hop = rad.get(f"/worklist/next?after={order[0]}", follow_redirects=False)
    assert hop.status_code == 303 and hop.headers["location"] == f"/studies/{order[1]}"

    from sqlalchemy import update

    from radloop.review.db import StudyRow

    # A study still drafting cannot be signed yet: passed over.
    with store.sessions() as session:
        status = session.get(StudyRow, order[1]).status  # type: ignore[union-attr]
        session.execute(update(StudyRow).where(StudyRow.id == order[1]).values(status="drafting"))
        session.commit()
    try:
        with store.reading() as connection:
            assert next_unsigned(connection, order[0]) == order[2]
    finally:
        with store.sessions() as session:
            session.execute(update(StudyRow).where(StudyRow.id == order[1]).values(status=status))
            session.commit()


@pytest.mark.parametrize("minutes", [0, -60, 330])
def test_the_form_time_is_read_in_the_readers_zone(minutes: int) -> None:
    from radloop.review.communicate import _local_time

    utc = _local_time("2026-12-07T14:05", minutes)
    assert utc == datetime.datetime(2026, 12, 7, 14, 5, tzinfo=datetime.UTC) + datetime.timedelta(
        minutes=minutes
    )
    from radloop.errors import InputError

    with pytest.raises(InputError, match="expected a date and time"):
        _local_time("yesterday", minutes)
