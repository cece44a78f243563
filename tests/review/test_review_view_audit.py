"""Every view and every refusal is in the audit trail, and the chain still verifies.

Each request is made alone and the trail must have gained exactly the expected entry: image
and heatmap views, the monitoring page and its exports, the users page; refusals (401, 403
for a role, a CSRF token, the login form or a one-time password, 409, 413, 422) with the path,
the reason and the client address, by ``-`` when no one is signed in. Static files add
nothing. (429, 503 and 504 of the question box: test_review_ask_pool.py.)
"""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid
from reviewkit import Seeded, write_sample_copy

Entry = tuple[str, str, str, dict[str, Any]]


def _last_seq(store: Any) -> int:
    from sqlalchemy import func, select

    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        return int(session.execute(select(func.max(AuditEntry.seq))).scalar() or 0)


def _gained(store: Any, since: int) -> list[Entry]:
    """The entries after ``since`` (user, action, target, detail), after checking the chain."""
    from sqlalchemy import select

    from radloop.review.audit import verify_chain
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        assert verify_chain(session, store.seal)[1] == []
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)
        ).scalars()
        return [(e.username, e.action, e.target, json.loads(e.detail or "{}")) for e in rows]


class Trail:
    """``trail.after(call)``: what the audit trail gained while ``call`` ran."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def after(self, call: Any) -> tuple[Any, list[Entry]]:
        since = _last_seq(self.store)
        result = call()
        return result, _gained(self.store, since)


@pytest.fixture()
def trail(store: Any) -> Trail:
    return Trail(store)


def _refusal(status: int, method: str, reason: str) -> dict[str, Any]:
    return {"status": status, "method": method, "reason": reason, "client": "testclient"}


def test_image_and_heatmap_views_are_audited(client_for: Any, seeded: Seeded, trail: Trail) -> None:
    client = client_for("rad")
    study = seeded.ids["flagged"]
    image, gained = trail.after(lambda: client.get(f"/api/studies/{study}/images/0.png"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert gained == [("rad", "view_image", study, {"position": 0})]
    heatmap, gained = trail.after(lambda: client.get(f"/api/studies/{study}/heatmaps/mass.png"))
    assert heatmap.status_code == 200
    assert gained == [("rad", "view_heatmap", study, {"code": "mass"})]
    # Nothing there to see: a 404, not a view.
    missing, gained = trail.after(lambda: client.get(f"/api/studies/{study}/images/7.png"))
    assert (missing.status_code, gained) == (404, [])


def test_monitoring_views_and_exports_are_audited(client_for: Any, trail: Trail) -> None:
    client = client_for("aud")
    page, gained = trail.after(lambda: client.get("/monitor"))
    assert page.status_code == 200
    assert gained == [("aud", "view_monitor", "", {"window_days": None})]
    data, gained = trail.after(lambda: client.get("/monitor/data.json?window_days=30"))
    assert data.status_code == 200
    assert gained == [("aud", "export_monitor", "json", {"window_days": 30})]
    csv, gained = trail.after(lambda: client.get("/monitor/export.csv?table=kappa"))
    assert csv.status_code == 200
    assert gained == [("aud", "export_monitor", "csv", {"table": "kappa", "window_days": None})]


def test_the_users_page_is_audited(client_for: Any, trail: Trail) -> None:
    client = client_for("boss")
    page, gained = trail.after(lambda: client.get("/admin/users"))
    assert page.status_code == 200
    assert gained == [("boss", "view_users", "", {})]


def test_role_and_csrf_refusals_are_audited(client_for: Any, seeded: Seeded, trail: Trail) -> None:
    client = client_for("rad")
    refused, gained = trail.after(lambda: client.get("/api/audit"))
    assert refused.status_code == 403
    reason = "this needs the role auditor or admin; you are signed in as radiologist"
    assert gained == [("rad", "refused_role", "/api/audit", _refusal(403, "GET", reason))]
    refused, gained = trail.after(lambda: client.get("/monitor"))
    assert refused.status_code == 403
    assert [entry[:3] for entry in gained] == [("rad", "refused_role", "/monitor")]

    study = seeded.ids["routine"]
    path = f"/api/studies/{study}/sign"
    refused, gained = trail.after(
        lambda: client.post(path, headers={"X-CSRF-Token": "forged"}, json={})
    )
    assert refused.status_code == 403
    reason = "missing or wrong CSRF token; reload the page and try again"
    assert gained == [("rad", "refused_csrf", path, _refusal(403, "POST", reason))]


def test_unauthenticated_refusals_are_audited_as_nobody_with_the_client(
    client_for: Any, trail: Trail
) -> None:
    anonymous = client_for(None)
    refused, gained = trail.after(lambda: anonymous.get("/api/worklist"))
    assert refused.status_code == 401
    assert gained == [
        ("-", "refused_unauthenticated", "/api/worklist", _refusal(401, "GET", "sign in first"))
    ]
    # A page sends the browser to the login page: a redirect, not a refusal.
    redirected, gained = trail.after(lambda: anonymous.get("/", follow_redirects=False))
    assert (redirected.status_code, gained) == (303, [])
    # The login form posted without its cookie.
    refused, gained = trail.after(
        lambda: anonymous.post(
            "/login", data={"username": "rad", "password": "x", "csrf_token": "forged"}
        )
    )
    assert refused.status_code == 403
    reason = "the login form expired; reload the page and try again"
    assert gained == [("-", "refused_login_csrf", "/login", _refusal(403, "POST", reason))]
    # Static files and the login page are not audited.
    for path in ("/static/review.js", "/static/review.css", "/login"):
        page, gained = trail.after(lambda path=path: anonymous.get(path))
        assert (page.status_code, gained) == (200, []), path


def test_conflicts_are_audited(client_for: Any, seeded: Seeded, trail: Trail) -> None:
    client = client_for("rad")
    study = seeded.ids["current"]
    seen = client.get(f"/api/studies/{study}").json()["version"]
    saved = client.put(f"/api/studies/{study}/text", json={"text": "One.", "version": seen})
    assert saved.status_code == 200, saved.text
    path = f"/api/studies/{study}/text"
    stale, gained = trail.after(lambda: client.put(path, json={"text": "Two.", "version": seen}))
    assert stale.status_code == 409, stale.text
    assert len(gained) == 1
    user, action, target, detail = gained[0]
    assert (user, action, target) == ("rad", "refused_conflict", path)
    assert detail["status"] == 409 and detail["reason"] == stale.json()["detail"][:300]


def _bomb(tmp_path: Any) -> bytes:
    """The sample radiograph, its header claiming 9,999 x 9,999 16-bit pixels (RLE)."""
    path = write_sample_copy(
        tmp_path, uid=generate_uid(), patient="BOMB", date=datetime.date(2024, 6, 1)
    )
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 9999, 9999, 16, 1
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_refused_uploads_and_invalid_input_are_audited(
    client_for: Any, seeded: Seeded, trail: Trail, tmp_path: Any, settings: Any
) -> None:
    client = client_for("boss")
    bomb = _bomb(tmp_path)
    refused, gained = trail.after(
        lambda: client.post(
            "/api/upload", files=[("files", ("bomb.dcm", bomb, "application/octet-stream"))]
        )
    )
    assert refused.status_code == 422, refused.text
    assert len(gained) == 1
    user, action, target, detail = gained[0]
    assert (user, action, target, detail["status"]) == ("boss", "refused_input", "/api/upload", 422)
    assert "decodes to at most" in detail["reason"]

    big = b"\x00" * (settings.max_upload_bytes + 1)
    refused, gained = trail.after(
        lambda: client.post("/api/upload", files=[("files", ("big.dcm", big, "application/dicom"))])
    )
    assert refused.status_code == 413
    assert [(u, a, t, d["status"]) for u, a, t, d in gained] == [
        ("boss", "refused_too_large", "/api/upload", 413)
    ]

    path = f"/api/studies/{seeded.ids['routine']}/ask"
    refused, gained = trail.after(lambda: client.post(path, json={"question": ""}))
    assert refused.status_code == 422
    assert [(u, a, t, d["status"]) for u, a, t, d in gained] == [
        ("boss", "refused_invalid", path, 422)
    ]
    assert gained[0][3]["reason"].startswith("body.question:")


def test_a_one_time_password_refusal_is_audited_under_its_user(
    client_for: Any, store: Any, trail: Trail
) -> None:
    from reviewkit import PASSWORD, login

    from radloop.review.accounts import create_user, reset_password

    with store.sessions() as session:
        create_user(session, "fresh", PASSWORD, "radiologist", "Dr Fresh")
        session.commit()
        one_time = reset_password(session, "fresh")
    client = client_for(None)
    assert login(client, "fresh", one_time).status_code == 303
    refused, gained = trail.after(lambda: client.get("/api/worklist"))
    assert refused.status_code == 403
    reason = "replace your one-time password first (/account/password)"
    assert gained == [
        ("fresh", "refused_password_change", "/api/worklist", _refusal(403, "GET", reason))
    ]
