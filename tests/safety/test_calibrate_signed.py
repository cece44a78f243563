"""``radloop calibrate --from-signed``: the combiner fitted on the site's signed reports, the
latest 20 % held out, refused (saying how many are needed) below the minimum count."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from radloop.report import Finding, Presence, Verdict
from radloop.safety import Calibrator
from radloop.safety.combine import EvidenceCalibrator
from radloop.safety.signed_calibration import (
    NotEnoughSignedCasesError,
    SignedClaim,
    claims_of_signed_case,
    fit_from_signed,
    signed_states,
)
from radloop.safety.verify import ClaimCheck, ClaimNumbers
from radloop.vocabulary import Side

START = datetime.datetime(2025, 3, 3, 8, 0, tzinfo=datetime.UTC)


def _case(rng: np.random.Generator, i: int) -> tuple[list[dict[str, object]], list[Finding]]:
    """One drafted and signed case: the draft's stored checks and the signed findings. The
    second opinion separates present from absent; ask-back was asked for half the claims."""
    checks, signed = [], []
    for index, code in enumerate(("pleural_effusion", "pneumothorax", "cardiomegaly")):
        present = bool(rng.random() < 0.35)
        stated = bool(rng.random() < (0.8 if present else 0.25))
        z = rng.normal(2.0 if present else -2.0, 1.2)
        numbers = ClaimNumbers(
            p_second_opinion=float(1 / (1 + np.exp(-z))),
            p_ask_yes=float(rng.uniform(0.3, 0.9)) if i % 2 else None,
        )
        found = Finding(code, presence=Presence.PRESENT if stated else Presence.ABSENT)
        verdict = Verdict.SUPPORTED if stated == present else Verdict.UNSUPPORTED
        checks.append(ClaimCheck(found, verdict, (), numbers, index).to_dict())  # fmt: skip
        if present:
            signed.append(Finding(code))
    return checks, signed


def _signed_claims(n: int, seed: int = 0) -> list[SignedClaim]:
    rng = np.random.default_rng(seed)
    out: list[SignedClaim] = []
    for i in range(n):
        checks, signed = _case(rng, i)
        when = START + datetime.timedelta(hours=i)
        out += claims_of_signed_case(f"study-{i:04d}", when, checks, signed)
    return out


def test_the_label_is_what_the_radiologist_signed_on_a_compatible_side() -> None:
    right = Finding("pleural_effusion", side=Side.RIGHT)
    assert signed_states(right, [Finding("pleural_effusion", side=Side.BILATERAL)])
    assert not signed_states(right, [Finding("pleural_effusion", side=Side.LEFT)])
    assert signed_states(Finding("consolidation"), [Finding("lung_opacity")])
    assert not signed_states(right, [Finding("pleural_effusion", presence=Presence.ABSENT)])


def test_possible_omissions_are_not_claims_of_the_draft() -> None:
    omission = ClaimCheck(Finding("pneumothorax", presence=Presence.ABSENT),
                          Verdict.CONTRADICTED, ("possible omission",), ClaimNumbers(p_claim=0.9),
                          None, possible_omission=True).to_dict()  # fmt: skip
    assert claims_of_signed_case("s", START, [omission], [Finding("pneumothorax")]) == []


def test_below_the_minimum_nothing_is_fitted_and_the_error_says_how_many_are_needed() -> None:
    with pytest.raises(NotEnoughSignedCasesError, match="137 more signed cases are needed"):
        fit_from_signed(_signed_claims(63), min_cases=200)


def test_the_latest_fifth_of_the_signed_cases_is_held_out() -> None:
    fitted = fit_from_signed(_signed_claims(400), min_cases=200)
    assert (fitted.n_fit_cases, fitted.n_test_cases) == (320, 80)
    assert fitted.fit_until < fitted.test_from
    assert fitted.test_until == START + datetime.timedelta(hours=399)
    assert fitted.result.n_test == 240 and fitted.result.n_fit == 960
    calibrator = fitted.result.calibrator
    assert isinstance(calibrator, EvidenceCalibrator) and calibrator.domain == "real-frontal"
    held_out = fitted.result.metrics
    assert held_out[calibrator.method]["ece"] <= held_out["identity"]["ece"]
    assert held_out[calibrator.method]["ece"] < 0.1


def _seed_database(url_dir: Path, n: int) -> str:
    pytest.importorskip("sqlalchemy")
    store_module = pytest.importorskip("radloop.review.store")
    from radloop.review.db import Draft, SignedReport, StudyRow
    from radloop.review.settings import Settings

    store = store_module.open_store(Settings(data_dir=url_dir, in_process_worker=False))
    rng = np.random.default_rng(5)
    try:
        with store.sessions() as session:
            for i in range(n):
                checks, signed = _case(rng, i)
                study_id = f"st{i:05d}"
                when = START + datetime.timedelta(hours=i)
                session.add(StudyRow(id=study_id, study_instance_uid=f"1.2.{i}", received_at=when,
                                     status="signed", pending=False, source="test"))  # fmt: skip
                session.flush()
                drafted = [c["finding"] for c in checks]
                session.add(Draft(study_id=study_id, model="mllm", verifier="onnx", text="",
                                  findings=drafted, checks=checks))  # fmt: skip
                signed_at = when + datetime.timedelta(minutes=30)
                session.add(SignedReport(study_id=study_id, kind="final", text="",
                                         findings=[f.to_dict() for f in signed], flags=[],
                                         signed_by="rad", signed_by_name="Dr Rad",
                                         signed_at=signed_at))  # fmt: skip
            session.commit()
        return str(store.engine.url)
    finally:
        store.close()


def test_calibrate_from_signed_reads_the_review_database_and_writes_a_file_the_worker_loads(
    tmp_path: Path,
) -> None:
    from radloop.monitor.calibrate_cli import calibrate

    url = _seed_database(tmp_path / "data", 260)
    out = tmp_path / "calibration.json"
    result = CliRunner().invoke(
        calibrate, ["--from-signed", url, "--out", str(out), "--min-cases", "200", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["signed_cases"], summary["held_out_cases"]) == (260, 52)
    assert summary["n_test"] == 52 * 3
    loaded = Calibrator.load(out)
    assert isinstance(loaded, EvidenceCalibrator) and loaded.domain == "real-frontal"
    assert Image.open(tmp_path / "calibration.png").format == "PNG"

    since = (START + datetime.timedelta(hours=100)).date().isoformat()
    refused = CliRunner().invoke(
        calibrate, ["--from-signed", url, "--since", since, "--out", str(out), "--min-cases",
                    "200"],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "more signed cases are needed" in str(refused.exception)


def test_bad_schedules_and_dates_are_refused_with_what_was_expected() -> None:
    from radloop.errors import InputError
    from radloop.monitor.calibrate_cli import parse_every, parse_since

    assert parse_every("7d") == 7 * 86_400 and parse_every("30m") == 1_800
    with pytest.raises(InputError, match="7d, 12h, 30m"):
        parse_every("weekly")
    with pytest.raises(InputError, match="ISO-8601"):
        parse_since("last monday")
    assert parse_since("2025-01-31") == datetime.datetime(2025, 1, 31, tzinfo=datetime.UTC)
