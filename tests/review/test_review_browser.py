"""The workstation in a real browser: Debian's Chromium, headless, driven by Playwright.

One session walks the flow a radiologist follows: log in; the urgent study is first; open
the flagged draft, look at the heatmap, reject the fabricated finding with the keyboard, edit
another, edit the text, sign; export FHIR and DICOM SR; then an auditor cannot sign.
Screenshots go to tests/artifacts/review/. Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded

from browserkit import CHROMIUM, sign_in

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "review"
pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


def _login(page: Any, base: str, username: str) -> None:
    sign_in(page, base, username, PASSWORD)


def test_radiologist_reviews_edits_signs_and_exports_and_an_auditor_cannot_sign(
    server: str, browser: Any, seeded: Seeded, backend: str, store: Any, tmp_path: Path
) -> None:
    import pydicom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = lambda page, name: page.screenshot(path=str(ARTIFACTS / f"{name}-{backend}.png"))  # noqa: E731
    context = browser.new_context(viewport={"width": 1500, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The Content-Security-Policy must not block anything the workstation's own pages use.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    page.goto(f"{server}/login")
    shot(page, "01-login")
    _login(page, server, "rad")
    first_row = page.locator("table.studies tbody tr").first
    assert first_row.get_attribute("data-study") == seeded.ids["urgent"]
    assert "URGENT" in first_row.inner_text()
    shot(page, "02-worklist")

    # Upload a PNG in the browser: it lands on the worklist, queued for drafting.
    png = tmp_path / "upload.png"
    from PIL import Image as PILImage

    PILImage.new("L", (64, 64), 128).save(png)
    page.set_input_files('#upload input[type="file"]', str(png))
    page.wait_for_function(
        "() => /Added|refused/.test(document.getElementById('upload-status').textContent)"
    )
    assert "Added 1 study" in page.locator("#upload-status").inner_text()
    page.wait_for_selector("span.status-queued")

    # The flagged draft: look at the evidence, reject the fabricated mass by keyboard.
    page.click(f'tr[data-study="{seeded.ids["flagged"]}"] a')
    page.wait_for_selector(".viewer.loaded")
    page.select_option("#heatmap-select", "mass")
    page.wait_for_function("() => document.querySelector('img.overlay').complete")
    shot(page, "03-review-flagged")
    mass = page.locator('li.finding:has-text("mass")')
    assert "flagged" in (mass.get_attribute("class") or "")
    assert page.locator(".model-banner").inner_text().startswith("Assistant output")
    mass.click()
    page.keyboard.press("r")
    page.wait_for_selector('li.finding.decision-rejected:has-text("mass")')

    # Edit the other finding, then the text, then sign.
    heart = page.locator('li.finding:has-text("ardiomegaly")')
    heart.locator('button[data-decide="edited"]').click()
    heart.locator('form.edit input[name="sentence"]').fill("Mild cardiomegaly.")
    heart.locator('form.edit button[type="submit"]').click()
    page.wait_for_selector("li.finding.decision-edited")
    text = page.locator("#report-text")
    assert "mass" not in text.input_value().lower()
    text.fill(text.input_value() + "\nNo prior for comparison.")
    page.click("#sign")
    page.wait_for_selector("article.signed")
    signed = page.locator("article.signed").inner_text()
    assert "Dr Rad" in signed and "No prior for comparison." in signed
    shot(page, "04-signed")

    with page.expect_download() as fhir_download:
        page.click("#export-fhir")
    fhir_path = ARTIFACTS / f"report-{backend}.fhir.json"
    fhir_download.value.save_as(fhir_path)
    resource = json.loads(fhir_path.read_text())
    assert resource["resourceType"] == "DiagnosticReport" and resource["status"] == "final"
    with page.expect_download() as sr_download:
        page.click("#export-sr")
    sr_path = ARTIFACTS / f"report-{backend}-sr.dcm"
    sr_download.value.save_as(sr_path)
    sr = pydicom.dcmread(io.BytesIO(sr_path.read_bytes()))
    assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")

    # The prior side by side, with window/level and invert.
    page.goto(f"{server}/studies/{seeded.ids['current']}")
    page.wait_for_selector(".viewer.loaded")
    page.keyboard.press("p")
    page.wait_for_selector('.viewer[data-which="prior"].loaded')
    page.keyboard.press("i")
    readout = page.locator('.viewer[data-which="current"] .readout').inner_text()
    assert "inverted" in readout
    shot(page, "05-prior-side-by-side")
    page.click("button.link:has-text('Sign out')")
    page.wait_for_url(f"{server}/login")

    # An auditor sees the study but cannot sign it, not even by calling the API directly.
    _login(page, server, "aud")
    page.goto(f"{server}/studies/{seeded.ids['urgent']}")
    assert page.locator("#sign").count() == 0
    status = page.evaluate(
        """async (id) => (await fetch(`/api/studies/${id}/sign`, {method: 'POST',
             headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}}
           )).status""",
        seeded.ids["urgent"],
    )
    assert status == 403
    shot(page, "06-auditor-cannot-sign")

    # The auditor's monitoring dashboard (radloop.monitor, plugged into the app) counts the
    # study signed above.
    page.click("nav a:has-text('Monitoring')")
    page.wait_for_url(f"{server}/monitor")
    assert "Monitoring: drafts compared with signed reports" in page.content()
    signed = page.evaluate("async () => (await (await fetch('/monitor/data.json')).json())")
    assert signed["summary"]["n"] >= 1, signed["summary"]["n"]
    shot(page, "07-monitoring-dashboard")
    assert errors == [] and blocked == []
    context.close()
    assert len(list(ARTIFACTS.glob(f"0*-{backend}.png"))) == 7


REAL_FILM = "covid-19-pneumonia-15-PA.png"  # a real PA film the scope guard accepts


@pytest.fixture()
def radiologist(server: str, browser: Any, backend: str) -> Iterator[Any]:
    """A signed-in radiologist's page; fails the test on any JavaScript error."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _login(page, server, "rad")
    yield page
    context.close()
    assert errors == []


def _shot(page: Any, name: str, backend: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"safety-{name}-{backend}.png"))


def test_a_failed_draft_stays_urgent_on_the_worklist_with_its_reason(
    server: str, radiologist: Any, seeded: Seeded, backend: str
) -> None:
    page = radiologist
    page.goto(f"{server}/")
    row = page.locator(f'tr[data-study="{seeded.ids["failed"]}"]')
    text = row.inner_text()
    assert "URGENT" in text and "possible omission: pneumothorax" in text
    assert "failed" in row.locator(".status").inner_text()
    assert "draft failed: the reply is a repetition loop" in text
    unchecked = page.locator(f'tr[data-study="{seeded.ids["unchecked"]}"] .badge.unchecked')
    assert unchecked.inner_text() == "1 not checked"
    _shot(page, "01-worklist", backend)

    row.locator("a").click()
    page.wait_for_selector(".viewer.loaded")
    banner = page.locator("#draft-banner")
    assert banner.is_visible()
    assert banner.inner_text().startswith("Draft failed: the reply is a repetition loop")
    assert page.locator("#report-text").input_value() == ""  # never a normal report
    omission = page.locator('li.finding:has-text("neumothorax")')
    assert "flagged" in (omission.get_attribute("class") or "")
    assert omission.locator(".finding-text").inner_text() == "Pneumothorax."
    assert "possible omission" in omission.inner_text()
    _shot(page, "02-failed-draft", backend)
    page.click("#sign")
    page.wait_for_function(
        "() => /Not signed/.test(document.getElementById('action-status').textContent)"
    )
    said = page.locator("#action-status").inner_text()
    assert "Decide the possible omission “Pneumothorax.” first" in said, said


def test_a_claim_not_checked_shows_its_state_and_reason(
    server: str, radiologist: Any, seeded: Seeded, backend: str
) -> None:
    page = radiologist
    page.goto(f"{server}/studies/{seeded.ids['unchecked']}")
    page.wait_for_selector(".viewer.loaded")
    rib = page.locator('li.finding:has-text("rib fracture")')
    state = rib.locator(".state")
    # The state is words, not a colour alone: read as a screen reader would.
    assert state.inner_text().strip().endswith("not checked")
    assert "not validated for rib fracture on synthetic-lab" in rib.locator(".why").inner_text()
    assert "flagged" not in (rib.get_attribute("class") or "")
    heart = page.locator('li.finding:has-text("ardiomegaly")')
    assert heart.locator(".state").inner_text().strip().endswith("verified")
    assert heart.locator(".certainty").inner_text() == "uncalibrated p=0.90"
    assert "uncalibrated" in page.locator(".model-banner").inner_text()
    assert page.locator("#draft-banner").count() == 0
    assert page.locator(".study-head .badge.unchecked").inner_text() == "1 not checked"

    # The ask box says whether its answer was checked.
    page.fill('#ask-form input[name="question"]', "Is there cardiomegaly?")
    page.click('#ask-form button[type="submit"]')
    page.wait_for_selector(".answer .answer-state")
    answered = page.locator(".answer").first
    assert "assistant output — not a diagnosis" in answered.inner_text().lower()
    assert answered.locator(".answer-state .state").inner_text() in {
        "verified",
        "contradicted",
        "unsupported",
        "not checked",
    }
    answered.scroll_into_view_if_needed()
    _shot(page, "03b-ask-checked", backend)
    page.evaluate("document.querySelector('.report-pane').scrollTop = 0")
    _shot(page, "03-not-checked", backend)


def test_an_abstained_draft_says_so_and_states_no_finding(
    server: str, radiologist: Any, seeded: Seeded, backend: str
) -> None:
    page = radiologist
    page.goto(f"{server}/studies/{seeded.ids['abstained']}")
    page.wait_for_selector(".viewer.loaded")
    banner = page.locator("#draft-banner")
    assert banner.inner_text().startswith("The model abstained: the stub model is validated")
    assert page.locator("li.finding").count() == 0
    assert page.locator("#report-text").input_value() == ""
    _shot(page, "04-abstained-stub", backend)


def test_the_builtin_model_abstains_on_a_real_film(
    server: str, radiologist: Any, store: Any, backend: str, shared: Any
) -> None:
    film = shared(f"data/realcxr-dev/images/{REAL_FILM}")
    from radloop.models.builtin import load_reference_model
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import draft_study
    from radloop.safety import load_verifier

    added = ingest_path(store, film).added
    assert added, "the film is already in this store"
    draft_study(store, added[0], load_reference_model(), load_verifier("reference"))
    page = radiologist
    page.goto(f"{server}/studies/{added[0]}")
    page.wait_for_selector(".viewer.loaded")
    banner = page.locator("#draft-banner").inner_text()
    assert banner.startswith(
        "The model abstained: the reference model is validated on synthetic radiographs only"
    )
    assert page.locator("li.finding").count() == 0
    assert page.locator("#report-text").input_value() == ""
    # The reference verifier is outside its domain on this film too: nothing was checked.
    assert "this film is outside that domain" in page.locator(".model-banner").inner_text()
    _shot(page, "05-abstained-real-film", backend)


class _HungModel:
    """A drafting model that never answers until ``release`` is set (a hung model server)."""

    def __init__(self, release: Any) -> None:
        from radloop.models.mock import MockModel

        self.release = release
        self.inner = MockModel("Yes.", model="hung-test-model")
        self.model_id = self.inner.model_id
        self.supports_json_schema = False

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.release.wait(60)
        return self.inner.generate(*args, **kwargs)

    def drafting_model(self) -> Any:
        return self

    def backends(self) -> tuple[Any, Any]:
        raise RuntimeError("no verifier in this test")


def test_a_question_the_model_does_not_answer_in_time_says_so(
    server: str, radiologist: Any, app: Any, seeded: Seeded, backend: str
) -> None:
    import threading

    ctx = app.state.ctx
    kept_worker, kept_settings = ctx.worker, ctx.settings
    release = threading.Event()
    ctx.worker = _HungModel(release)
    ctx.settings = kept_settings.with_(ask_timeout_s=1.0)
    try:
        page = radiologist
        page.goto(f"{server}/studies/{seeded.ids['routine']}")
        page.wait_for_selector(".viewer.loaded")
        page.fill('#ask-form input[name="question"]', "Is there a pneumothorax?")
        page.click('#ask-form button[type="submit"]')
        page.wait_for_selector(".answer.error", timeout=10_000)
        box = page.locator(".answer.error").first
        text = box.inner_text()
        assert "Q: Is there a pneumothorax?" in text
        assert "No answer in time: the model did not answer in 1 s" in text
        assert "504" not in text  # words, not a status code
        box.scroll_into_view_if_needed()
        _shot(page, "06-ask-timed-out", backend)
    finally:
        release.set()
        ctx.worker, ctx.settings = kept_worker, kept_settings


def test_opening_a_study_audits_the_view_and_its_images(
    server: str, radiologist: Any, store: Any, seeded: Seeded
) -> None:
    from sqlalchemy import func, select

    from radloop.review.audit import verify_chain
    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        start = session.execute(select(func.max(AuditEntry.seq))).scalar() or 0
    study = seeded.ids["urgent"]
    page = radiologist
    page.goto(f"{server}/studies/{study}")
    page.wait_for_selector(".viewer.loaded")
    with store.sessions() as session:
        entries = [
            (e.username, e.action, e.target, json.loads(e.detail or "{}"))
            for e in session.execute(
                select(AuditEntry).where(AuditEntry.seq > start).order_by(AuditEntry.seq)
            ).scalars()
        ]
        assert verify_chain(session, store.seal)[1] == []
    assert entries[0][:3] == ("rad", "view", study)
    assert ("rad", "view_image", study, {"position": 0}) in entries
    assert {action for _, action, _, _ in entries} <= {"view", "view_image"}
