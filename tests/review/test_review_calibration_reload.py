"""A refitted calibration file reaches a running worker without a restart; a bad one is
refused with a logged and audited error while the previous calibration stays in force."""

from __future__ import annotations

import dataclasses
import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from reviewkit import write_sample_copy

from radloop.safety.calibration import Calibrator

REPLY = "FINDINGS: Cardiomegaly.\nIMPRESSION: Cardiomegaly."
DOMAIN = "synthetic-lab"


def _study(store: Any, folder: Path) -> tuple[str, str]:
    from radloop.review.ingest import ingest_path

    uid = generate_uid()
    write_sample_copy(folder, uid=uid, patient="CAL", date=datetime.date(2024, 2, 1))
    (study_id,) = ingest_path(store, folder).added
    return str(study_id), uid


def _probability(store: Any, study_id: str) -> float:
    from radloop.review.db import Draft

    with store.sessions() as session:
        draft = session.get(Draft, study_id)
        assert draft is not None and draft.calibrated
        (found,) = [f for f in draft.findings if f["code"] == "cardiomegaly"]
    return float(found["probability"])


def _actions(store: Any) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        rows = session.execute(
            select(AuditEntry.username, AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.action.like("calibration_%"))
            .order_by(AuditEntry.seq)
        ).all()
    return [(u, a, d) for u, a, d in rows]


def test_the_worker_reads_a_refitted_file_and_keeps_the_last_good_one(
    store: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from radloop.models.mock import MockModel
    from radloop.review.worker import DraftingWorker
    from radloop.safety import TableVerifier

    path = tmp_path / "calibration.json"
    Calibrator(bias=0.0, domain=DOMAIN).save(path)
    settings = dataclasses.replace(store.settings, calibration=path, calibration_check_s=0.0,
                                   samples=0, ask_back=False)  # fmt: skip
    tuned = dataclasses.replace(store, settings=settings)
    ids = [_study(tuned, tmp_path / f"s{i}") for i in range(3)]
    lab = {"domains": [{"name": DOMAIN, "images": "test", "findings": ["cardiomegaly"]}]}
    verifier = TableVerifier({uid: {"presence": {"cardiomegaly": 0.5}} for _, uid in ids},
                             name="table", competence=lab)  # fmt: skip
    worker = DraftingWorker(tuned, model=MockModel(REPLY), verifier=verifier)

    def draft(study_id: str) -> float:
        (claim,) = worker.claim(1)
        assert claim.study_id == study_id
        assert worker.run_job(claim) == "done"
        return _probability(tuned, study_id)

    # The worker drafts the studies in arrival order; p = 0.5 sits at logit 0.
    assert draft(ids[0][0]) == pytest.approx(0.5, abs=1e-3)
    Calibrator(bias=-2.25, domain=DOMAIN).save(path)  # a refit, written while it runs
    assert draft(ids[1][0]) == pytest.approx(1 / (1 + 2.718281828**2.25), abs=1e-3)
    assert worker.calibrator is not None and worker.calibrator.bias == -2.25

    path.write_text('{"format": "radloop-calibration", "vers', encoding="utf-8")  # cut short
    with caplog.at_level(logging.ERROR, logger="radloop.review.worker"):
        kept = draft(ids[2][0])
    assert kept == pytest.approx(1 / (1 + 2.718281828**2.25), abs=1e-3)
    assert worker.calibrator.bias == -2.25 and worker.calibration.error is not None
    assert "calibration file" in caplog.text and "previous calibration stays" in caplog.text
    actions = _actions(tuned)
    assert [a for _, a, _ in actions] == ["calibration_reloaded", "calibration_refused"]
    assert all(user == "radloop-worker" for user, _, _ in actions)
    assert "calibration JSON file" in actions[-1][2] and "-2.25" not in actions[-1][2]


def test_the_file_is_looked_at_at_most_every_so_often(tmp_path: Path) -> None:
    from radloop.review.calibration_watch import CalibrationFile

    path = tmp_path / "calibration.json"
    Calibrator(bias=0.0, domain=DOMAIN).save(path)
    watched = CalibrationFile(path, every_s=3600.0)
    Calibrator(bias=1.5, domain=DOMAIN).save(path)
    assert not watched.refresh()  # not yet time to look
    assert watched.calibrator is not None and watched.calibrator.bias == 0.0
    assert watched.refresh(force=True)
    assert watched.calibrator.bias == 1.5
    assert not watched.refresh(force=True)  # unchanged: not read again
    path.unlink()
    assert not watched.refresh(force=True)
    assert watched.calibrator.bias == 1.5 and "no file at" in (watched.error or "")
    assert CalibrationFile(None).refresh(force=True) is False


def test_a_bad_file_at_start_stops_the_worker(store: Any, tmp_path: Path) -> None:
    from radloop.review.worker import DraftingWorker
    from radloop.safety.errors import CalibrationDataError

    path = tmp_path / "calibration.json"
    path.write_text("{}", encoding="utf-8")
    tuned = dataclasses.replace(
        store, settings=dataclasses.replace(store.settings, calibration=path)
    )
    with pytest.raises(CalibrationDataError, match="radloop-calibration"):
        DraftingWorker(tuned)
