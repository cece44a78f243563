"""Rejecting a critical finding the safety check verified takes a reason, over the API too.

The urgent study's draft states a large left pneumothorax the table verifier supports: a
rejection without a reason is refused (422, in words); with one it is stored with the
decision and in its audit entry. Runs against SQLite and PostgreSQL (the ``backend`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

from reviewkit import Seeded
from sqlalchemy import func, select


def _items(client: Any, study: str) -> dict[str, dict[str, Any]]:
    detail = client.get(f"/api/studies/{study}")
    assert detail.status_code == 200, detail.text
    return {item["key"]: item for item in detail.json()["items"]}


def _audit_after(store: Any, since: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)
        ).scalars()
        return [(e.username, e.action, e.target, json.loads(e.detail or "{}")) for e in rows]


def _last_seq(store: Any) -> int:
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        return int(session.execute(select(func.max(AuditEntry.seq))).scalar() or 0)


def test_rejecting_a_verified_critical_finding_needs_a_reason(
    seeded: Seeded, client_for: Any, store: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["urgent"]
    items = _items(rad, study)
    required = [key for key, item in items.items() if item["reason_required"]]
    assert len(required) == 1, items
    key = required[0]
    assert items[key]["finding"]["code"] == "pneumothorax"
    assert items[key]["state"] == "verified"
    url = f"/api/studies/{study}/findings/{key}"
    before = items[key]["decision"]

    for body in ({"decision": "rejected"}, {"decision": "rejected", "reason": "   "}):
        refused = rad.post(url, json=body)
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert "expected a reason for rejecting a critical finding" in detail, detail
    assert _items(rad, study)[key]["decision"] == before  # nothing stored

    since = _last_seq(store)
    kept = rad.post(url, json={"decision": "rejected", "reason": " skin fold, not a pneumothorax "})
    assert kept.status_code == 200, kept.text
    assert kept.json()["reason"] == "skin fold, not a pneumothorax"
    after = _items(rad, study)[key]
    assert (after["decision"], after["decision_reason"]) == (
        "rejected",
        "skin fold, not a pneumothorax",
    )
    edits = [e for e in _audit_after(store, since) if e[1] == "edit"]
    assert len(edits) == 1, edits
    username, _, target, detail = edits[0]
    assert (username, target) == ("rad", study)
    assert detail["key"] == key and detail["decision"] == "rejected"
    assert detail["reason"] == "skin fold, not a pneumothorax"

    page = rad.get(f"/studies/{study}")
    assert "reason: skin fold, not a pneumothorax" in page.text


def test_other_decisions_need_no_reason(seeded: Seeded, client_for: Any) -> None:
    rad = client_for("rad")
    study = seeded.ids["urgent"]
    items = _items(rad, study)
    critical = next(key for key, item in items.items() if item["reason_required"])
    other = next(key for key, item in items.items() if not item["reason_required"])
    # Accepting the critical finding, and rejecting one that is not critical, are not asked why.
    accepted = rad.post(f"/api/studies/{study}/findings/{critical}", json={"decision": "accepted"})
    assert accepted.status_code == 200, accepted.text
    rejected = rad.post(f"/api/studies/{study}/findings/{other}", json={"decision": "rejected"})
    assert rejected.status_code == 200, rejected.text
    assert "reason" not in rejected.json()
    # A flagged (unsupported) finding is rejected without a reason as before.
    flagged = _items(rad, seeded.ids["flagged"])
    assert not any(item["reason_required"] for item in flagged.values())
    mass = next(key for key, item in flagged.items() if item["finding"]["code"] == "mass")
    response = rad.post(
        f"/api/studies/{seeded.ids['flagged']}/findings/{mass}", json={"decision": "rejected"}
    )
    assert response.status_code == 200, response.text
