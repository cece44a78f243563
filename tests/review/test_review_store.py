"""Storage, accounts, audit chain, drafting, worksheet, sign-off and export, without HTTP.

Runs against SQLite and PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import pytest
from reviewkit import Seeded, write_sample_copy
from sqlalchemy import func, select, text

from radloop.review.worker import draft_study


def _count_studies(store: Any) -> int:
    from radloop.review.db import StudyRow

    with store.sessions() as session:
        return int(session.execute(select(func.count(StudyRow.id))).scalar_one())


def test_migrations_create_every_table(store: Any) -> None:
    from sqlalchemy import inspect

    tables = set(inspect(store.engine).get_table_names(schema=store.settings.db_schema))
    expected = {
        "users",
        "web_sessions",
        "login_attempts",
        "studies",
        "images",
        "drafts",
        "worksheets",
        "signed_reports",
        "jobs",
        "audit_log",
        "alembic_version",
    }
    assert expected <= tables


def test_passwords_are_argon2_hashed_and_verified(store: Any) -> None:
    from radloop.review.accounts import create_user, hash_password, verify_password

    stored = hash_password("a long password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long password")
    assert not verify_password(stored, "a long passworD")
    with store.sessions() as session, pytest.raises(ValueError, match="at least 12 characters"):
        create_user(session, "shorty", "short", "radiologist")


def test_first_start_creates_one_admin_with_a_one_time_password(store: Any) -> None:
    from radloop.review.accounts import authenticate, ensure_first_admin

    with store.sessions() as session:
        first = ensure_first_admin(session)
        again = ensure_first_admin(session)
        assert first is not None and again is None
        admin = authenticate(session, store.settings, "admin", first, "127.0.0.9")
        assert admin is not None and admin.role == "admin"


def test_login_is_throttled_after_repeated_failures(store: Any, accounts: dict[str, str]) -> None:
    from radloop.review.accounts import LoginThrottledError, authenticate

    with store.sessions() as session:
        for _ in range(store.settings.login_max_failures):
            assert authenticate(session, store.settings, "nobody", "wrong pass", "10.9.9.9") is None
        with pytest.raises(LoginThrottledError, match="too many failed logins"):
            authenticate(session, store.settings, "nobody", "wrong pass", "10.9.9.9")


def test_audit_chain_verifies_and_detects_an_edited_row(store: Any) -> None:
    from radloop.review import audit

    seqs = [
        audit.record(store.sessions, "tester", "view", f"study-{i}", {"i": i}, seal=store.seal)
        for i in range(3)
    ]
    middle = seqs[1]
    with store.sessions() as session:
        count, problems = audit.verify_chain(session, store.seal)
    assert count >= 3 and problems == []
    # The database refuses edits outright ...
    with store.engine.connect() as connection, pytest.raises(Exception, match="append-only"):
        connection.execute(text(f"UPDATE audit_log SET username = 'mallory' WHERE seq = {middle}"))
        connection.commit()
    # ... and someone who gets past the trigger is still caught by the chain.
    _tamper(store, f"UPDATE audit_log SET username = 'mallory' WHERE seq = {middle}")
    with store.sessions() as session:
        _, problems = audit.verify_chain(session, store.seal)
    assert [p.seq for p in problems] == [middle]
    assert "edited" in problems[0].problem
    _tamper(store, f"UPDATE audit_log SET username = 'tester' WHERE seq = {middle}")


def _tamper(store: Any, statement: str) -> None:
    """Run an UPDATE past the append-only trigger, as an attacker with the database would."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text(statement))
            connection.execute(
                text(
                    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                )
            )
        else:
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            connection.execute(text(statement))
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_radloop_audit_verify_exits_1_on_an_edited_row(store: Any, backend: str) -> None:
    from click.testing import CliRunner

    from radloop.cli import main

    url = store.settings.database_url or ""
    if backend == "postgresql":  # the test's own schema, through libpq's options
        url += f"?options=-csearch_path%3D{store.settings.db_schema}"
    env = {"RADLOOP_DATABASE_URL": url}
    from radloop.review import audit

    seq = audit.record(store.sessions, "tester", "export", "study-x", seal=store.seal)
    runner = CliRunner()
    args = ["audit", "verify", "--data-dir", str(store.data_dir)]
    ok = runner.invoke(main, args, env=env)
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    _tamper(store, f"UPDATE audit_log SET action = 'nothing' WHERE seq = {seq}")
    broken = runner.invoke(main, args, env=env)
    assert broken.exit_code == 1
    assert f"TAMPERED entry {seq}" in broken.output
    _tamper(store, f"UPDATE audit_log SET action = 'export' WHERE seq = {seq}")


def test_corrupt_dicom_and_traversal_zip_leave_nothing_stored(store: Any, tmp_path: Path) -> None:
    import zipfile

    from radloop.errors import CorruptFileError, UnsafeArchiveError
    from radloop.review.ingest import ingest_path

    before = _count_studies(store)
    originals = sorted((store.data_dir / "originals").glob("*"))
    corrupt = tmp_path / "broken.dcm"
    corrupt.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00" + b"1.2" * 5)
    with pytest.raises(CorruptFileError):
        ingest_path(store, corrupt)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.dcm", b"x" * 10)
    with pytest.raises(UnsafeArchiveError):
        ingest_path(store, evil)
    assert _count_studies(store) == before
    assert sorted((store.data_dir / "originals").glob("*")) == originals


def test_ingest_links_a_prior_and_skips_a_known_study(
    store: Any, seeded: Seeded, tmp_path: Path
) -> None:
    from radloop.review.db import StudyRow
    from radloop.review.ingest import ingest_path

    with store.sessions() as session:
        current = session.get(StudyRow, seeded.ids["current"])
        assert current is not None and current.prior_id == seeded.ids["prior"]
        assert current.image_stats.keys() == {"mean", "std", "p05", "p95"}
    again = write_sample_copy(
        tmp_path / "again", uid=seeded.uids["routine"], patient="X", date=datetime.date(2024, 1, 15)
    )
    result = ingest_path(store, again.parent)
    assert result.added == [] and result.existing == [seeded.uids["routine"]]


def test_drafts_carry_verdicts_triage_and_heatmaps(store: Any, seeded: Seeded) -> None:
    from radloop.review.db import Draft, StudyRow

    with store.sessions() as session:
        urgent = session.get(StudyRow, seeded.ids["urgent"])
        flagged = session.get(StudyRow, seeded.ids["flagged"])
        routine = session.get(StudyRow, seeded.ids["routine"])
        draft = session.get(Draft, seeded.ids["flagged"])
        assert urgent is not None and flagged is not None and routine is not None
        assert draft is not None
        assert urgent.urgent and any("pneumothorax" in r for r in urgent.triage_reasons)
        assert not routine.urgent and routine.flag_count == 0
        assert flagged.flag_count >= 1
        verdicts = {c["finding"]["code"]: c["verdict"] for c in draft.checks}
        assert verdicts["mass"] in ("unsupported", "contradicted")
        assert verdicts["cardiomegaly"] == "supported"
        assert {"mass", "cardiomegaly"} <= set(draft.heatmaps)
        assert store.path(draft.heatmaps["mass"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_worker_drafts_queued_studies_with_the_reference_model(
    store: Any, seeded: Seeded, tmp_path: Path
) -> None:
    from pydicom.uid import generate_uid

    from radloop.review.db import Draft, Job, StudyRow
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import DraftingWorker

    folder = write_sample_copy(
        tmp_path / "w", uid=generate_uid(), patient="W", date=datetime.date(2024, 2, 1)
    ).parent
    study_id = ingest_path(store, folder).added[0]
    assert DraftingWorker(store).run_pending() == 1
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        draft = session.get(Draft, study_id)
        job = session.execute(select(Job).where(Job.study_id == study_id)).scalar_one()
        assert row is not None and row.status == "ready" and job.state == "done"
        assert draft is not None and "reference" in draft.verifier
        assert draft.notice is not None and "synthetic" in draft.notice


def test_sign_needs_a_decision_on_every_flagged_claim_and_is_immutable(
    store: Any, seeded: Seeded
) -> None:
    from radloop.review import worksheet
    from radloop.review.db import SignedReport
    from radloop.review.store import signed_cases

    study_id = seeded.ids["flagged"]
    with store.sessions() as session:
        with pytest.raises(ValueError, match=r"Decide the flagged finding “.*” first"):
            worksheet.sign(session, study_id, "rad", "Dr Rad")
        items = worksheet.review_items(*_draft_and_sheet(session, study_id))
        mass = next(i for i in items if i.finding["code"] == "mass")
        worksheet.decide(session, study_id, mass.key, "rejected", "rad")
        with pytest.raises(ValueError, match="a sentence stating a finding"):
            worksheet.decide(session, study_id, "f1", "edited", "rad", "lorem ipsum")
        worksheet.decide(session, study_id, "f1", "edited", "rad", "Mild cardiomegaly.")
        signed = worksheet.sign(session, study_id, "rad", "Dr Rad")
    assert "mass" not in signed.text.lower()
    assert [f["code"] for f in signed.findings] == ["cardiomegaly"]
    with store.engine.connect() as connection, pytest.raises(Exception, match="append-only"):
        connection.execute(text(f"UPDATE signed_reports SET text = 'x' WHERE id = {signed.id}"))
        connection.commit()
    with store.sessions() as session, pytest.raises(ValueError, match="not yet signed"):
        worksheet.decide(session, study_id, "f1", "accepted", "rad")
    with store.sessions() as session:
        worksheet.add_addendum(session, study_id, "Also a small left effusion.", "rad", "Dr Rad")
        kinds = [
            r.kind
            for r in session.execute(
                select(SignedReport).where(SignedReport.study_id == study_id)
            ).scalars()
        ]
    assert kinds == ["final", "addendum"]
    cases = [c for c in signed_cases(store.engine) if c["study_id"] == study_id]
    assert len(cases) == 1
    case = cases[0]
    assert set(case) == {
        "study_id",
        "received_at",
        "signed_at",
        "age",
        "sex",
        "site",
        "manufacturer",
        "view",
        "model",
        "draft_findings",
        "signed_findings",
        "draft_text",
        "signed_text",
        "flags",
        "ood_score",
        "image_stats",
        "draft_state",
    }
    assert case["draft_state"] == "drafted"
    assert case["flags"] == [
        {"code": "mass", "reason": case["flags"][0]["reason"], "decision": "rejected"}
    ]
    assert {f["code"] for f in case["draft_findings"]} == {"mass", "cardiomegaly"}
    assert datetime.datetime.fromisoformat(case["signed_at"]).tzinfo is not None
    later = datetime.datetime.fromisoformat(case["signed_at"]) + datetime.timedelta(seconds=1)
    assert [c for c in signed_cases(store.engine, since=later) if c["study_id"] == study_id] == []


def _drafted_cardiomegaly(store: Any, folder: Path, calibrator: Any = None) -> str:
    """A fresh study drafted "Cardiomegaly." with the verifier at 0.8 for it."""
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.ingest import ingest_path
    from radloop.safety import TableVerifier

    uid = generate_uid()
    image = write_sample_copy(folder, uid=uid, patient=folder.name, date=datetime.date(2024, 3, 2))
    study_id: str = ingest_path(store, image.parent).added[0]
    lab = {"domains": [{"name": "synthetic-lab", "images": "test", "findings": ["cardiomegaly"]}]}
    verifier = TableVerifier({uid: {"presence": {"cardiomegaly": 0.8}}}, competence=lab)
    draft_study(store, study_id, MockModel("Cardiomegaly."), verifier, calibrator=calibrator)
    return study_id


def test_a_signed_report_keeps_the_reviewed_findings_not_a_reading_of_its_text(
    store: Any, tmp_path: Path
) -> None:
    """A calibrated 0.8 is written "likely", which the parser reads back as uncertain; the
    signed report keeps the finding as reviewed: present, with its probability."""
    from radloop.report import Finding, Presence, parse
    from radloop.review import worksheet
    from radloop.review.store import signed_cases
    from radloop.safety import Calibrator

    study_id = _drafted_cardiomegaly(store, tmp_path / "likely", Calibrator())
    with store.sessions() as session:
        draft, sheet = _draft_and_sheet(session, study_id)
        assert draft.calibrated
        reviewed = worksheet.reviewed_findings(draft, sheet)
        signed = worksheet.sign(session, study_id, "rad", "Dr Rad")
    (found,) = reviewed
    assert (found.code, found.presence) == ("cardiomegaly", Presence.PRESENT)
    assert found.probability == pytest.approx(0.8)
    # The text states it with its certainty phrase, which reads back as something else.
    assert [(f.code, f.presence) for f in parse(signed.text)] == [
        ("cardiomegaly", Presence.UNCERTAIN)
    ]
    assert signed.findings == [f.to_dict() for f in reviewed]
    assert [Finding.from_dict(f) for f in signed.findings] == reviewed
    (case,) = [c for c in signed_cases(store.engine) if c["study_id"] == study_id]
    assert case["signed_findings"] == signed.findings


def test_a_report_typed_by_hand_is_signed_with_the_findings_its_text_states(
    store: Any, tmp_path: Path
) -> None:
    from radloop.review import worksheet

    study_id = _drafted_cardiomegaly(store, tmp_path / "by-hand")
    with store.sessions() as session:
        worksheet.set_text(session, study_id, "Small left pleural effusion.", "rad")
        signed = worksheet.sign(session, study_id, "rad", "Dr Rad")
    assert [(f["code"], f.get("side")) for f in signed.findings] == [("pleural_effusion", "left")]


def _draft_and_sheet(session: Any, study_id: str) -> tuple[Any, Any]:
    from radloop.review.db import Draft, Worksheet

    return session.get(Draft, study_id), session.get(Worksheet, study_id)


def test_exports_map_status_to_fhir_and_sr_flags(store: Any, seeded: Seeded) -> None:
    import pydicom

    from radloop.review.db import StudyRow
    from radloop.review.export import dicom_sr, fhir_diagnostic_report
    from radloop.review.ingest import load_stored_study
    from radloop.review.queries import export_content

    with store.sessions() as session:
        draft = export_content(session, seeded.ids["routine"])
        row = session.get(StudyRow, seeded.ids["routine"])
        assert row is not None
        sources = [i.source for i in load_stored_study(store, row).images]
    resource = fhir_diagnostic_report(draft)
    assert resource["status"] == "preliminary"
    assert all(o["status"] == "preliminary" for o in resource["contained"])
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(draft, sources)))
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "PARTIAL",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    signed = draft.__class__(
        **{**draft.__dict__, "status": draft.status.__class__("final"), "signed_by": "Reader^Rad"}
    )
    assert fhir_diagnostic_report(signed)["status"] == "final"
    sr_final = pydicom.dcmread(io.BytesIO(dicom_sr(signed, sources)))
    assert (sr_final.CompletionFlag, sr_final.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(sr_final.VerifyingObserverSequence[0].VerifyingObserverName) == "Reader^Rad"
    assert sr_final.StudyInstanceUID == seeded.uids["routine"]


def test_radloop_worker_drafts_in_a_separate_process(store: Any, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from pydicom.uid import generate_uid

    from radloop.review.db import Draft, Job, StudyRow
    from radloop.review.ingest import ingest_path

    folder = write_sample_copy(
        tmp_path / "p", uid=generate_uid(), patient="P", date=datetime.date(2024, 2, 2)
    ).parent
    study_id = ingest_path(store, folder).added[0]
    url = store.settings.database_url or ""
    if store.settings.db_schema:
        url += f"?options=-csearch_path%3D{store.settings.db_schema}"
    env = {**os.environ, "RADLOOP_DATABASE_URL": url}
    command = [sys.executable, "-m", "radloop", "worker", "--once"]
    done = subprocess.run(
        [*command, "--data-dir", str(store.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "drafted" in done.stdout
    with store.sessions() as session:
        job = session.execute(select(Job).where(Job.study_id == study_id)).scalar_one()
        row = session.get(StudyRow, study_id)
        assert job.state == "done" and job.worker is not None
        assert job.worker.split(":")[1] != str(os.getpid())  # another process drafted it
        assert row is not None and row.status == "ready"
        assert session.get(Draft, study_id) is not None


def test_two_processes_appending_never_fork_the_audit_chain(store: Any) -> None:
    """Two writers with their own remembered tips (as two server processes have) interleave;
    each stale tip is caught by the unique constraints and the chain stays one line."""
    from radloop.review import audit

    first, second = (
        audit.ChainWriter(store.engine, store.seal),
        audit.ChainWriter(store.engine, store.seal),
    )
    seqs = []
    for i in range(6):
        writer = first if i % 2 == 0 else second
        seqs.append(writer.append("tester", "view", f"interleaved-{i}"))
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    with store.sessions() as session:
        _, problems = audit.verify_chain(session, store.seal)
    assert problems == []


def test_an_image_far_from_the_training_embeddings_gets_the_ood_flag(
    store: Any, tmp_path: Path
) -> None:
    import numpy as np
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.db import StudyRow
    from radloop.review.ingest import ingest_path
    from radloop.review.queries import WorklistFilter, worklist
    from radloop.safety import MahalanobisScorer, TableVerifier

    uids = {"near": generate_uid(), "far": generate_uid()}
    scorer = MahalanobisScorer.fit(np.random.default_rng(0).normal(0, 1, (300, 4)))
    verifier = TableVerifier(
        {
            uids["near"]: {"presence": {}, "embedding": [0.1, 0, 0, 0]},
            uids["far"]: {"presence": {}, "embedding": [40.0, -40, 40, 0]},
        }
    )
    ids = {}
    for role, uid in uids.items():
        folder = write_sample_copy(
            tmp_path / role, uid=uid, patient=role, date=datetime.date(2024, 4, 1)
        ).parent
        ids[role] = ingest_path(store, folder).added[0]
        draft_study(
            store, ids[role], MockModel("The lungs are clear."), verifier, ood_scorer=scorer
        )
    with store.sessions() as session:
        far, near = session.get(StudyRow, ids["far"]), session.get(StudyRow, ids["near"])
        assert far is not None and near is not None
        assert far.ood and far.ood_score is not None and far.ood_score > scorer.threshold
        assert not near.ood and near.ood_score is None
        assert far.scope_outcome in ("flagged", "refused")
        _, _, listed = worklist(session, WorklistFilter(status="all", limit=500))
    assert {s["id"]: s["ood"] for s in listed}[ids["far"]] is True


def test_a_configured_calibration_reaches_the_drafts_and_its_omission_thresholds_triage(
    store: Any, tmp_path: Path
) -> None:
    import dataclasses

    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.db import Draft, StudyRow
    from radloop.review.ingest import ingest_path
    from radloop.review.settings import settings_from_env
    from radloop.review.worker import DraftingWorker
    from radloop.safety import CalibrationDataError, Calibrator, TableVerifier

    path = Calibrator(omission_thresholds={"pneumothorax": 0.1}).save(tmp_path / "cal.json")
    env = {"RADLOOP_CALIBRATION": str(path)}
    assert settings_from_env(tmp_path, env=env).calibration == path
    configured = dataclasses.replace(store, settings=store.settings.with_(calibration=path))
    worker = DraftingWorker(configured)
    assert worker.calibrator is not None
    assert worker.calibrator.omission_thresholds == {"pneumothorax": 0.1}
    urgent = {}
    for name, calibrator in (("raw", None), ("calibrated", worker.calibrator)):
        uid = generate_uid()
        folder = write_sample_copy(
            tmp_path / name, uid=uid, patient=name, date=datetime.date(2024, 5, 1)
        ).parent
        study_id = ingest_path(store, folder).added[0]
        # A faint pneumothorax: below the default 0.5, above the fitted 0.1.
        lab = {
            "domains": [{"name": "synthetic-lab", "images": "test", "findings": ["pneumothorax"]}]
        }
        verifier = TableVerifier({uid: {"presence": {"pneumothorax": 0.2}}}, competence=lab)
        reply = MockModel("No pneumothorax.")
        draft_study(store, study_id, reply, verifier, calibrator=calibrator)
        with store.sessions() as session:
            row, draft = session.get(StudyRow, study_id), session.get(Draft, study_id)
            assert row is not None and draft is not None
            urgent[name] = row.urgent
            assert draft.checks[0]["possible_omission"] is (calibrator is not None)
    assert urgent == {"raw": False, "calibrated": True}
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(CalibrationDataError, match="radloop-calibration"):
        DraftingWorker(dataclasses.replace(store, settings=store.settings.with_(calibration=bad)))


def test_a_failed_draft_shows_its_reason_and_keeps_the_study_urgent(
    store: Any, seeded: Seeded
) -> None:
    from radloop.review.db import Draft, StudyRow
    from radloop.review.queries import study_detail

    with store.sessions() as session:
        row = session.get(StudyRow, seeded.ids["failed"])
        draft = session.get(Draft, seeded.ids["failed"])
        assert row is not None and draft is not None
        assert row.status == "failed"
        assert row.error == "draft failed: the reply is a repetition loop: 2 distinct words in 60"
        # The verifier, in its domain, sees a pneumothorax the failed draft cannot mention.
        assert row.urgent
        assert row.triage_reasons == ["possible omission: pneumothorax (always critical)"]
        assert draft.findings == [] and draft.failure is not None
        assert draft.failure["kind"] == "repetition_loop"
        assert draft.banner is not None and draft.banner.startswith("Draft failed:")
        detail = study_detail(session, seeded.ids["failed"])
    # Nothing of the reply is read as normal: the text is empty, the omission needs a decision.
    assert detail["text"] == ""
    assert [(i["finding"]["code"], i["omission"], i["flagged"]) for i in detail["items"]] == [
        ("pneumothorax", True, True)
    ]


def test_adding_a_possible_omission_states_the_finding(store: Any, seeded: Seeded) -> None:
    from radloop.review import worksheet
    from radloop.review.queries import study_detail

    study_id = seeded.ids["failed"]
    with store.sessions() as session:
        worksheet.decide(session, study_id, "c0", "accepted", "rad")
        text = study_detail(session, study_id)["text"]
        sheet = session.get(worksheet.Worksheet, study_id)
        assert sheet is not None
        sheet.decisions = {}  # as the other tests expect the study
        session.commit()
    assert "Pleura: Pneumothorax." in text and "no pneumothorax" not in text.lower()
    # The failed draft commented on nothing else: never "Unremarkable".
    assert "Lungs: Not commented." in text and "Unremarkable" not in text


def test_a_failed_draft_never_lowers_an_urgent_flag(store: Any, tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    from radloop.models.mock import MockModel
    from radloop.review.db import StudyRow
    from radloop.review.ingest import ingest_path
    from radloop.safety import TableVerifier

    uid = generate_uid()
    folder = write_sample_copy(
        tmp_path / "u", uid=uid, patient="U", date=datetime.date(2024, 6, 1)
    ).parent
    study_id = ingest_path(store, folder).added[0]
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None
        row.urgent, row.triage_reasons = True, ["pneumothorax (always critical)"]
        session.commit()
    # A verifier that sees nothing critical, and a reply that is empty.
    lab = {"domains": [{"name": "synthetic-lab", "images": "test", "findings": ["pneumothorax"]}]}
    verifier = TableVerifier({uid: {"presence": {"pneumothorax": 0.01}}}, competence=lab)
    draft_study(store, study_id, MockModel(""), verifier)
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None
        assert (row.status, row.urgent) == ("failed", True)
        assert row.triage_reasons == ["pneumothorax (always critical)"]
        assert row.error is not None and row.error.startswith("draft failed: ")


def test_an_exception_while_drafting_is_retried_then_fails_keeping_the_urgent_flag(
    store: Any, tmp_path: Path
) -> None:
    """A model that raises: the job is queued again with backoff, and after the maximum
    attempts the draft is stored as failed (no reply), the job fails with the reason and the
    study keeps its urgency."""
    import dataclasses
    import time

    from pydicom.uid import generate_uid
    from sqlalchemy import update

    from radloop.models.mock import MockModel
    from radloop.review.db import Draft, Job, StudyRow
    from radloop.review.ingest import ingest_path
    from radloop.review.worker import DraftingWorker
    from radloop.safety import TableVerifier

    def broken(*_: Any) -> str:
        raise RuntimeError("the model server went away")

    folder = write_sample_copy(
        tmp_path / "x", uid=generate_uid(), patient="X", date=datetime.date(2024, 6, 2)
    ).parent
    study_id = ingest_path(store, folder).added[0]
    with store.sessions() as session:
        session.execute(
            update(StudyRow)
            .where(StudyRow.id == study_id)
            .values(urgent=True, triage_reasons=["tension pneumothorax"])
        )
        session.commit()
    retrying = dataclasses.replace(
        store, settings=store.settings.with_(job_max_attempts=2, job_backoff_s=0.05)
    )
    worker = DraftingWorker(retrying, model=MockModel(broken), verifier=TableVerifier({}))

    def attempt() -> str:
        for _ in range(50):  # other tests' queued studies go first; a retry waits its backoff
            claims = worker.claim(100)
            outcomes = {c.study_id: worker.run_job(c) for c in claims}
            if study_id in outcomes:
                return outcomes[study_id]
            time.sleep(0.05)
        raise AssertionError("the study was never claimed")

    assert attempt() == "queued"
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        job = session.execute(select(Job).where(Job.study_id == study_id)).scalar_one()
        assert row is not None and (row.status, row.urgent) == ("queued", True)
        assert row.error is not None and "attempt 1 of 2" in row.error
        assert job.state == "queued" and job.not_before is not None and job.attempts == 1
    assert attempt() == "done"  # the last attempt stores a failed draft
    with store.sessions() as session:
        row = session.get(StudyRow, study_id)
        job = session.execute(select(Job).where(Job.study_id == study_id)).scalar_one()
        stored = session.get(Draft, study_id)
        assert row is not None and job.state == "failed" and job.attempts == 2
        assert (row.status, row.urgent) == ("failed", True)
        assert "tension pneumothorax" in row.triage_reasons
        assert row.error is not None and "the model server went away" in row.error
        assert stored is not None and stored.failure is not None
        assert stored.failure["kind"] == "model_unavailable" and stored.findings == []


def test_claims_not_checked_are_counted_and_keep_their_reason(store: Any, seeded: Seeded) -> None:
    from radloop.review.db import StudyRow
    from radloop.review.queries import WorklistFilter, study_detail, worklist

    with store.sessions() as session:
        row = session.get(StudyRow, seeded.ids["unchecked"])
        assert row is not None and row.not_checked == 1 and row.flag_count == 0
        detail = study_detail(session, seeded.ids["unchecked"])
        _, _, listed = worklist(session, WorklistFilter(status="all", limit=500))
    states = {i["finding"]["code"]: (i["state"], i["reasons"]) for i in detail["items"]}
    assert states["cardiomegaly"] == ("verified", [])
    assert states["rib_fracture"] == (
        "not checked",
        ["not checked: the verifier 'test-table-verifier' is not validated for rib fracture "
         "on synthetic-lab"],
    )  # fmt: skip
    assert not any(i["flagged"] for i in detail["items"])  # not checked needs no decision
    assert detail["draft"]["calibrated"] is False and detail["draft"]["banner"] is None
    # No calibrator: the model's own words stand, with no certainty phrase.
    assert (
        detail["text"] == "FINDINGS: Cardiomegaly. Right rib fracture.\nIMPRESSION: Cardiomegaly."
    )
    counts = {s["id"]: s["not_checked"] for s in listed}
    assert counts[seeded.ids["unchecked"]] == 1 and counts[seeded.ids["routine"]] == 0


def test_an_abstained_draft_is_ready_with_no_findings_and_its_banner(
    store: Any, seeded: Seeded
) -> None:
    from reviewkit import OutOfDomainModel

    from radloop.review.queries import study_detail

    with store.sessions() as session:
        detail = study_detail(session, seeded.ids["abstained"])
    assert detail["status"] == "ready" and detail["items"] == [] and detail["text"] == ""
    draft = detail["draft"]
    assert draft["abstained"] == OutOfDomainModel.reason
    assert draft["banner"] == f"The model abstained: {OutOfDomainModel.reason}."
    assert draft["domain"]["domain"] is None  # the verifier is outside its domain there too
    assert [w["kind"] for w in draft["warnings"]] == ["abstained"]


def test_a_claim_the_model_stated_invalidly_needs_a_decision() -> None:
    from types import SimpleNamespace

    from radloop.review import worksheet

    check = {
        "finding": {"code": "pleural_effusion", "presence": "uncertain"},
        "verdict": "not_checked",
        "reasons": [
            "not checked: no verifier",
            "the model's output was invalid: held as uncertain",
        ],
        "numbers": {},
        "index": 0,
        "possible_omission": False,
        "invalid_output": True,
    }
    draft = SimpleNamespace(findings=[check["finding"]], checks=[check])
    [item] = worksheet.review_items(draft, None)
    assert item.flagged and item.invalid_output and item.state == "not checked"


def test_uncalibrated_decisions_rewrite_the_text_without_certainty_phrases(
    store: Any, seeded: Seeded
) -> None:
    from radloop.review import worksheet
    from radloop.review.queries import study_detail

    study_id = seeded.ids["urgent"]
    with store.sessions() as session:
        worksheet.decide(session, study_id, "f0", "accepted", "rad")
        text = study_detail(session, study_id)["text"]
        # Back to no decision, as the other tests expect the study.
        sheet = session.get(worksheet.Worksheet, study_id)
        assert sheet is not None
        sheet.decisions = {}
        session.commit()
    assert "Pleura: Large left pneumothorax." in text  # p=0.98 is not a calibrated probability
    assert "consistent with" not in text.lower() and "may represent" not in text.lower()


def test_migration_0002_upgrades_a_store_with_drafts(backend: str, tmp_path: Path) -> None:
    import secrets

    import sqlalchemy
    from reviewkit import PG_URL

    from radloop.review.db import Draft, StudyRow
    from radloop.review.settings import Settings
    from radloop.review.store import make_engine, migrate

    schema = f"rv_mig_{secrets.token_hex(4)}" if backend == "postgresql" else None
    settings = Settings(
        data_dir=tmp_path,
        database_url=PG_URL if backend == "postgresql" else None,
        db_schema=schema,
    )
    engine = make_engine(settings)
    try:
        migrate(engine, schema, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO studies (id, study_instance_uid, received_at, status, pending, "
                    "urgent, triage_reasons, flag_count, out_of_scope, scope, ood, source, "
                    "source_kind, image_stats) VALUES ('s1', '1.2.3', '2024-01-01T00:00:00+00:00', "
                    "'ready', true, false, '[]', 0, false, '[]', false, 'x', 'png', '{}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO drafts (study_id, model, verifier, text, findings, checks, "
                    "heatmaps, created_at) VALUES ('s1', 'm', 'v', 'Cardiomegaly.', '[]', '[]', "
                    "'{}', '2024-01-01T00:00:00+00:00')"
                )
            )
        migrate(engine, schema)
        with sqlalchemy.orm.Session(engine) as session:
            row, draft = session.get(StudyRow, "s1"), session.get(Draft, "s1")
            assert row is not None and draft is not None
            assert row.not_checked == 0
            assert (draft.calibrated, draft.banner, draft.failure, draft.abstained) == (
                False,
                None,
                None,
                None,
            )
            assert (draft.warnings, draft.unaddressed, draft.domain) == ([], [], None)
        _alembic_downgrade(engine, schema, "0001")
        with engine.connect() as connection:
            left = connection.execute(text("SELECT text FROM drafts WHERE study_id = 's1'"))
            assert left.scalar_one() == "Cardiomegaly."  # nothing lost either way
    finally:
        if schema:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _alembic_downgrade(engine: Any, schema: str | None, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from radloop.review import store

    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["schema"] = schema
        command.downgrade(config, revision)
