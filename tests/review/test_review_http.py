"""The app over HTTP: sessions, CSRF, roles, uploads and their limits, STOW-RS, export.

Runs against SQLite and PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, Request
from reviewkit import Seeded, login, write_sample_copy
from sqlalchemy import func, select


def _study_count(app: Any) -> int:
    from radloop.review.db import StudyRow

    with app.state.ctx.store.sessions() as session:
        return int(session.execute(select(func.count(StudyRow.id))).scalar_one())


def _stored_files(app: Any) -> set[Path]:
    root = app.state.ctx.store.data_dir
    return {
        p for p in root.rglob("*") if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm")
    }


def _concrete(path: str, study_id: str) -> str:
    return (
        path.replace("{study_id}", study_id)
        .replace("{position}", "0")
        .replace("{code}", "mass")
        .replace("{key}", "f0")
    )


def test_nothing_but_the_login_page_is_reachable_without_a_session(
    app: Any, seeded: Seeded, client_for: Any
) -> None:
    from fastapi.routing import APIRoute

    from radloop.review import api, dicomweb, pages

    routes = [
        (prefix, route)
        for router, prefix in (
            (pages.router, ""),
            (api.router, "/api"),
            (dicomweb.router, "/dicomweb"),
        )
        for route in router.routes
    ]
    routes += [("", r) for r in app.routes if isinstance(r, APIRoute)]
    anonymous = client_for(None)
    checked = 0
    for prefix, route in routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            path = _concrete(prefix + route.path, seeded.ids["routine"])
            response = anonymous.request(method, path, follow_redirects=False)
            if path == "/login":
                assert response.status_code in (200, 403, 422), path
                continue
            checked += 1
            if path.startswith(("/api/", "/dicomweb/", "/openapi")) or method != "GET":
                assert response.status_code == 401, (method, path, response.status_code)
            else:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"] == "/login"
    assert checked >= 20
    assert anonymous.get("/openapi.json").status_code == 401
    assert anonymous.get("/login").status_code == 200


def test_session_cookie_is_secure_httponly_and_samesite(
    app: Any, accounts: dict[str, str], client_for: Any
) -> None:
    client = client_for(None)
    response = login(client, accounts["radiologist"])
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "radloop_session=" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie


def test_state_changing_calls_need_the_csrf_token(seeded: Seeded, client_for: Any) -> None:
    client = client_for("rad")
    token = client.headers.pop("X-CSRF-Token")
    url = f"/api/studies/{seeded.ids['routine']}/findings/f0"
    refused = client.post(url, json={"decision": "accepted"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = client.post(url, json={"decision": "accepted"}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    ok = client.post(url, json={"decision": "accepted"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200, ok.text


def test_login_is_rate_limited(app: Any, client_for: Any, accounts: dict[str, str]) -> None:
    from sqlalchemy import delete

    from radloop.review.db import LoginAttempt

    client = client_for(None)
    try:
        statuses = [login(client, "aud", "not the password").status_code for _ in range(4)]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3] == 429
        assert login(client, "aud").status_code == 429  # even the right password, for a while
    finally:  # every test client shares one address: lift the block for the other tests
        with app.state.ctx.store.sessions() as session:
            session.execute(delete(LoginAttempt))
            session.commit()


def test_worklist_puts_the_urgent_study_first_and_filters(seeded: Seeded, client_for: Any) -> None:
    client = client_for("rad")
    studies = client.get("/api/worklist").json()["studies"]
    assert studies[0]["id"] == seeded.ids["urgent"] and studies[0]["urgent"]
    flagged = client.get("/api/worklist", params={"flagged": True}).json()["studies"]
    assert seeded.ids["flagged"] in {s["id"] for s in flagged}
    assert all(s["flag_count"] > 0 for s in flagged)
    site_b = client.get("/api/worklist", params={"site": "Site B"}).json()["studies"]
    assert [s["id"] for s in site_b] == [seeded.ids["routine"]]
    page = client.get("/", params={"urgent": "yes"})
    assert page.status_code == 200 and "URGENT" in page.text


def test_worklist_counts_exactly_up_to_a_bound(
    app: Any, seeded: Seeded, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.review import queries

    client = client_for("rad")
    everything = client.get("/api/worklist", params={"status": "all"}).json()
    assert everything["total_exact"] and everything["total"] == _study_count(app) >= 3
    monkeypatch.setattr(queries, "COUNT_UP_TO", 1)  # count one study past the page
    capped = client.get("/api/worklist", params={"status": "all", "limit": 1}).json()
    assert capped == {**capped, "total": 2, "total_exact": False}
    assert len(capped["studies"]) == 1
    page = client.get("/", params={"status": "all"})
    assert page.status_code == 200 and f"{_study_count(app)} studies" in page.text
    last = client.get(
        "/api/worklist", params={"status": "all", "limit": 1, "offset": _study_count(app) - 1}
    ).json()
    assert last["total_exact"] and last["total"] == _study_count(app)


def test_worklist_page_shows_a_changed_study_at_once(
    app: Any, seeded: Seeded, client_for: Any
) -> None:
    """Worklist rows are rendered once per content: a change in any shown column shows."""
    from sqlalchemy import update

    from radloop.review.db import StudyRow

    client = client_for("rad")
    study = seeded.ids["routine"]

    def row_html() -> str:
        page = client.get("/", params={"status": "all"})
        assert page.status_code == 200
        match = re.search(rf'<tr[^>]*data-study="{study}".*?</tr>', page.text, re.S)
        assert match is not None, "the study is not on the worklist"
        return match.group(0)

    before = row_html()
    assert "URGENT" not in before and "Site B" in before
    with app.state.ctx.store.sessions() as session:
        session.execute(
            update(StudyRow)
            .where(StudyRow.id == study)
            .values(urgent=True, triage_reasons=["test: <tension> pneumothorax"], site="Site C")
        )
        session.commit()
    try:
        after = row_html()
        assert "URGENT" in after and "Site C" in after and "Site B" not in after
        assert "test: &lt;tension&gt; pneumothorax" in after  # escaped, as before the cache
    finally:
        with app.state.ctx.store.sessions() as session:
            session.execute(
                update(StudyRow)
                .where(StudyRow.id == study)
                .values(urgent=False, triage_reasons=[], site="Site B")
            )
            session.commit()
    assert row_html() == before


def test_review_page_shows_verdicts_reasons_and_the_assistant_label(
    seeded: Seeded, client_for: Any
) -> None:
    client = client_for("aud")
    page = client.get(f"/studies/{seeded.ids['flagged']}")
    assert page.status_code == 200
    assert "Assistant output — not a diagnosis" in page.text
    assert "verdict-unsupported" in page.text or "verdict-contradicted" in page.text
    assert "Only a radiologist can edit and sign reports." in page.text
    detail = client.get(f"/api/studies/{seeded.ids['current']}").json()
    assert detail["prior_id"] == seeded.ids["prior"]


def test_only_a_radiologist_can_sign(seeded: Seeded, client_for: Any) -> None:
    study = seeded.ids["current"]
    for user in ("aud", "boss"):
        refused = client_for(user).post(f"/api/studies/{study}/sign")
        assert refused.status_code == 403, refused.text
        assert "radiologist" in refused.json()["detail"]
    rad = client_for("rad")
    detail = rad.get(f"/api/studies/{study}").json()
    for item in detail["items"]:
        if item["flagged"]:
            rad.post(f"/api/studies/{study}/findings/{item['key']}", json={"decision": "accepted"})
    signed = rad.post(f"/api/studies/{study}/sign")
    assert signed.status_code == 200, signed.text
    again = rad.put(f"/api/studies/{study}/text", json={"text": "changed"})
    assert again.status_code == 409 and "addendum" in again.json()["detail"].lower()
    fhir = rad.get(f"/api/studies/{study}/export/fhir")
    assert fhir.status_code == 200 and fhir.json()["status"] == "final"
    sr = rad.get(f"/api/studies/{study}/export/sr")
    assert sr.status_code == 200 and sr.content[128:132] == b"DICM"


def test_audit_trail_records_views_edits_signoff_and_exports(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["routine"]
    rad.get(f"/api/studies/{study}")
    rad.get(f"/api/studies/{study}/export/fhir")
    auditor = client_for("aud")
    trail = auditor.get("/api/audit", params={"limit": 1000}).json()
    assert trail["problems"] == []
    mine = {(e["action"], e["target"]) for e in trail["entries"] if e["user"] == "rad"}
    assert {("view", study), ("export", study)} <= mine
    assert client_for("rad").get("/api/audit").status_code == 403


def _upload(client: Any, name: str, data: bytes) -> Any:
    return client.post("/api/upload", files=[("files", (name, data, "application/octet-stream"))])


def test_bad_uploads_get_a_clear_4xx_and_nothing_is_stored(
    app: Any, client_for: Any, tmp_path: Path
) -> None:
    client = client_for("rad")
    before_count, before_files = _study_count(app), _stored_files(app)
    corrupt = b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00" + b"1.2" * 5
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.dcm", b"\x00" * (50 * 1024 * 1024))
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../../../etc/evil.dcm", b"DICM")
    cases = {
        "corrupt.dcm": (corrupt, 422, "corrupt.dcm: expected a DICOM image"),
        "bomb.zip": (bomb.getvalue(), 422, "decompression bomb"),
        "evil.zip": (traversal.getvalue(), 422, "relative to the archive root"),
        "../../escape.dcm": (corrupt, 422, "plain file name"),
        "huge.dcm": (b"\x00" * (3 * 1024 * 1024), 413, "at most"),
        "notes.txt": (b"hello, not an image", 422, "expected"),
    }
    for name, (data, status, words) in cases.items():
        response = _upload(client, name, data)
        assert response.status_code == status, (name, response.status_code, response.text)
        assert words in response.json()["detail"], (name, response.json())
        assert "/incoming/" not in response.json()["detail"]  # no server paths in messages
    assert _study_count(app) == before_count
    assert _stored_files(app) == before_files


def test_upload_and_stow_rs_put_new_studies_on_the_worklist(
    app: Any, client_for: Any, tmp_path: Path
) -> None:
    from pydicom.uid import generate_uid

    client = client_for("boss")
    first = write_sample_copy(
        tmp_path / "a", uid=generate_uid(), patient="U1", date=datetime.date(2024, 3, 1)
    )
    uploaded = _upload(client, "IM0001.dcm", first.read_bytes())
    assert uploaded.status_code == 200, uploaded.text
    assert len(uploaded.json()["added"]) == 1
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(2):
            copy = write_sample_copy(
                tmp_path / f"z{k}",
                uid=generate_uid(),
                patient=f"Z{k}",
                date=datetime.date(2024, 3, 3),
            )
            zf.write(copy, f"study{k}/IM0001.dcm")
    from_zip = _upload(client, "two-studies.zip", zipped.getvalue())
    assert from_zip.status_code == 200, from_zip.text
    assert len(from_zip.json()["added"]) == 2
    assert not list((app.state.ctx.store.data_dir / "incoming").iterdir())
    second = write_sample_copy(
        tmp_path / "b", uid=generate_uid(), patient="U2", date=datetime.date(2024, 3, 2)
    )
    boundary = "radloop-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + second.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stored = client.post(
        "/dicomweb/studies",
        content=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert stored.status_code == 200, stored.text
    assert stored.headers["content-type"].startswith("application/dicom+json")
    assert len(stored.json()["00081199"]["Value"]) == 1
    status = client_for("boss").get("/api/worklist", params={"status": "all", "limit": 500})
    assert {s["status"] for s in status.json()["studies"]} >= {"queued"}


def test_the_question_box_answers_as_assistant_output(seeded: Seeded, client_for: Any) -> None:
    client = client_for("rad")
    answer = client.post(
        f"/api/studies/{seeded.ids['urgent']}/ask", json={"question": "Is there a pneumothorax?"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "assistant output — not a diagnosis"
    assert answer.json()["text"]
    # The answer went through the workstation's verifier (the reference model's).
    # "No pneumothorax detected." rests on pneumothorax absent, a claim the verifier checks;
    # any state but verified names its reasons.
    checked = answer.json()
    assert checked["state"] in {"verified", "contradicted", "unsupported", "not checked"}
    assert checked["verifier"] == "radloop-reference-0.6.0"
    assert checked["reasons"] or checked["state"] == "verified"


class _Backends:
    """A worker stand-in for the ask box: a scripted model and a given verifier (or none)."""

    def __init__(self, reply: str, verifier: Any = None) -> None:
        from radloop.models.mock import MockModel

        self.model, self.verifier = MockModel(reply, model="scripted-ask-model"), verifier

    def drafting_model(self) -> Any:
        return self.model

    def backends(self) -> tuple[Any, Any]:
        if self.verifier is None:
            from radloop.safety import UnknownVerifierError

            raise UnknownVerifierError("a registered verifier", "'gone'", source="verifier")
        return self.model, self.verifier


def test_the_question_box_states_whether_the_answer_was_checked(
    app: Any, seeded: Seeded, client_for: Any
) -> None:
    from radloop.safety import TableVerifier

    client = client_for("rad")
    lab = {"domains": [{"name": "synthetic-lab", "images": "test", "findings": ["pneumothorax"]}]}
    uid = seeded.uids["urgent"]
    cases = [
        # In the verifier's domain and validated for the finding: checked.
        (TableVerifier({uid: {"presence": {"pneumothorax": 0.97}}}, competence=lab), "verified"),
        # A verifier that declares no validated domain never speaks.
        (TableVerifier({uid: {"presence": {"pneumothorax": 0.97}}}), "not checked"),
        # The verifier cannot be loaded: the answer stands, labelled unchecked.
        (None, "unchecked"),
    ]
    ctx = app.state.ctx
    kept = ctx.worker
    try:
        for verifier, state in cases:
            ctx.worker = _Backends("Yes, there is a large left pneumothorax.", verifier)
            reply = client.post(
                f"/api/studies/{seeded.ids['urgent']}/ask",
                json={"question": "Is there a pneumothorax?"},
            )
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert (body["state"], body["label"]) == (state, "assistant output — not a diagnosis")
            assert body["text"] == "Yes, there is a large left pneumothorax."
            if state != "verified":
                assert body["reasons"] and body["reasons"][0].startswith(state), body["reasons"]
    finally:
        ctx.worker = kept


def test_the_worklist_shows_claims_not_checked_and_failed_drafts_that_stay_urgent(
    seeded: Seeded, client_for: Any
) -> None:
    client = client_for("rad")
    studies = {s["id"]: s for s in client.get("/api/worklist").json()["studies"]}
    assert studies[seeded.ids["unchecked"]]["not_checked"] == 1
    assert studies[seeded.ids["routine"]]["not_checked"] == 0
    failed = studies[seeded.ids["failed"]]
    assert (failed["status"], failed["urgent"]) == ("failed", True)
    assert failed["error"].startswith("draft failed: the reply is a repetition loop")
    page = client.get("/")
    row = re.search(rf'<tr[^>]*data-study="{seeded.ids["failed"]}".*?</tr>', page.text, re.S)
    assert row is not None
    assert "URGENT" in row.group(0) and "draft failed: the reply is a repetition loop" in row.group(
        0
    )
    unchecked = re.search(
        rf'<tr[^>]*data-study="{seeded.ids["unchecked"]}".*?</tr>', page.text, re.S
    )
    assert unchecked is not None and "1 not checked" in unchecked.group(0)


def test_the_review_page_shows_claim_states_and_the_draft_banner(
    seeded: Seeded, client_for: Any
) -> None:
    client = client_for("rad")
    page = client.get(f"/studies/{seeded.ids['unchecked']}").text
    assert "state-verified" in page and "state-not-checked" in page
    assert "is not validated for rib fracture on synthetic-lab" in page
    assert "uncalibrated p=0.90" in page
    assert 'id="draft-banner"' not in page
    failed = client.get(f"/studies/{seeded.ids['failed']}").text
    assert 'class="draft-banner draft-failed"' in failed
    assert "Draft failed: the reply is a repetition loop" in failed
    abstained = client.get(f"/studies/{seeded.ids['abstained']}").text
    assert 'class="draft-banner draft-abstained"' in abstained
    detail = client.get(f"/api/studies/{seeded.ids['abstained']}").json()
    assert detail["draft"]["banner"].startswith("The model abstained:")
    assert detail["items"] == [] and detail["text"] == ""


def test_serve_get_runs_one_request_and_exits_0(store: Any, backend: str) -> None:
    from click.testing import CliRunner

    from radloop.cli import main

    if backend == "postgresql":
        url = f"{store.settings.database_url}?options=-csearch_path%3D{store.settings.db_schema}"
    else:
        url = ""
    runner = CliRunner()
    args = ["serve", "--data-dir", str(store.data_dir), "--get"]
    ok = runner.invoke(main, [*args, "/login"], env={"RADLOOP_DATABASE_URL": url})
    assert ok.exit_code == 0, ok.output
    assert "Sign in" in ok.output
    refused = runner.invoke(main, [*args, "/api/worklist"], env={"RADLOOP_DATABASE_URL": url})
    assert refused.exit_code == 1
    as_user = runner.invoke(
        main, [*args, "/api/worklist", "--as-user", "rad"], env={"RADLOOP_DATABASE_URL": url}
    )
    assert as_user.exit_code == 0 and '"studies"' in as_user.output


@pytest.mark.parametrize("role", ["radiologist", "admin"])
def test_users_api_is_admin_only(role: str, accounts: dict[str, str], client_for: Any) -> None:
    client = client_for(accounts[role])
    response = client.post(
        "/api/users",
        json={"username": f"new-{role}", "role": "auditor", "password": "a very long one"},
    )
    assert response.status_code == (201 if role == "admin" else 403), response.text


def test_extensions_add_routes_and_role_filtered_nav_links(
    settings: Any, store: Any, seeded: Seeded, accounts: dict[str, str]
) -> None:
    from fastapi.testclient import TestClient

    from radloop.review.app import NavLink, create_app

    def monitoring(app: Any, ctx: Any) -> None:
        router = APIRouter()
        reader = Depends(ctx.require_role("admin", "auditor"))

        @router.get("/monitor", dependencies=[reader])
        def page(request: Request) -> Any:
            return ctx.render(request, "error.html", code=200, message="monitoring dashboard")

        app.include_router(router)
        ctx.nav.append(NavLink("Monitoring", "/monitor", roles=("admin", "auditor")))

    app = create_app(settings, store=store, extensions=[monitoring], start_worker=False)
    with TestClient(app, base_url="https://testserver") as auditor:
        assert auditor.get("/monitor", follow_redirects=False).status_code == 303
        login(auditor, accounts["auditor"])
        assert 'href="/monitor"' in auditor.get("/").text
        assert "monitoring dashboard" in auditor.get("/monitor").text
    with TestClient(app, base_url="https://testserver") as radiologist:
        login(radiologist, accounts["radiologist"])
        assert 'href="/monitor"' not in radiologist.get("/").text
        assert radiologist.get("/monitor").status_code == 403


def test_a_one_time_password_must_be_replaced_before_anything_else(
    app: Any, client_for: Any
) -> None:
    from radloop.review.accounts import create_user

    with app.state.ctx.store.sessions() as session:
        create_user(session, "fresh", "one-time-secret", "admin").must_change_password = True
        session.commit()
    client = client_for(None)
    assert login(client, "fresh", "one-time-secret").status_code == 303
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/account/password"
    assert client.get("/api/worklist").status_code == 403
    form = client.get("/account/password")
    assert "Replace your one-time password" in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    fields = {"csrf_token": token.group(1), "current": "one-time-secret"}
    refused = client.post(
        "/account/password",
        data=fields | {"new": "my own passphrase", "repeat": "not the same one"},
    )
    assert refused.status_code == 422 and "twice" in refused.text
    done = client.post(
        "/account/password",
        follow_redirects=False,
        data=fields | {"new": "my own passphrase", "repeat": "my own passphrase"},
    )
    assert done.status_code == 303
    assert client.get("/api/worklist").status_code == 200


def test_an_oversize_upload_without_content_length_is_cut_off_as_it_streams(
    app: Any, client_for: Any
) -> None:
    client = client_for("rad")
    before_count, before_files = _study_count(app), _stored_files(app)
    boundary = "x-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="big.dcm"\r\nContent-Type: application/dicom\r\n\r\n'
    ).encode()

    def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
        yield head
        for _ in range(40):
            yield b"\x00" * (128 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/api/upload",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413, response.text
    assert "at most" in response.json()["detail"]
    assert _study_count(app) == before_count
    assert _stored_files(app) == before_files


def test_the_monitoring_dashboard_plugs_in_for_auditors_and_admins_only(
    seeded: Seeded, client_for: Any, accounts: dict[str, str]
) -> None:
    # Installed through the radloop.review.extensions entry point, not imported by the app.
    auditor = client_for(accounts["auditor"])
    page = auditor.get("/monitor")
    assert page.status_code == 200
    assert "Monitoring: drafts compared with signed reports" in page.text
    # Inside the workstation's layout: its top bar, navigation and sign-out.
    assert '<header class="topbar">' in page.text and 'action="/logout"' in page.text
    assert auditor.get("/monitor/data.json").json()["schema"]
    assert 'href="/monitor"' in auditor.get("/").text
    radiologist = client_for(accounts["radiologist"])
    assert radiologist.get("/monitor").status_code == 403
    assert 'href="/monitor"' not in radiologist.get("/").text


def test_every_response_carries_the_security_headers(app: Any, client_for: Any) -> None:
    from fastapi.testclient import TestClient

    signed_in = client_for("rad")
    anonymous = client_for(None)
    for response in (
        anonymous.get("/login"),
        anonymous.get("/static/review.js"),
        anonymous.get("/api/worklist"),  # 401
        anonymous.get("/", follow_redirects=False),  # redirect
        signed_in.get("/"),
        signed_in.get("/api/nothing-here"),  # 404
    ):
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-eval'" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["strict-transport-security"].startswith("max-age=")
    with TestClient(app, base_url="http://testserver") as plain:
        response = plain.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers


def test_worklist_counts_are_kept_for_their_ttl_and_then_recounted() -> None:
    import time

    from radloop.review.queries import CountCache

    calls: list[str] = []

    def count(name: str, value: int) -> Any:
        def run() -> int:
            calls.append(name)
            return value

        return run

    cache = CountCache(ttl_s=0.2)
    assert cache.get(("to_review", 100), count("a", 7)) == 7
    assert cache.get(("to_review", 100), count("a", 9)) == 7  # within the ttl: not recounted
    assert cache.get(("signed", 100), count("b", 3)) == 3  # another filter: its own count
    time.sleep(0.25)
    assert cache.get(("to_review", 100), count("a", 9)) == 9
    assert calls == ["a", "b", "a"]
