"""Per-film lab values (the hannover-dev layout) as FHIR Observations with LOINC codes, dated
relative to each film, and into the drafting prompt with their dates: on synthetic rows, and
on a few real hannover-dev rows when ../shared/data is here."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fhir.resources")

from radloop.assist import draft
from radloop.assist.context_cli import context
from radloop.context.labcsv import LAB_COLUMNS, bundle_for_row, film_date, items_for_row
from radloop.models.mock import MockModel
from radloop.study import load_study

ROW = {
    "image": "images/aaaa0001.png",
    "patient_id": "p-01",
    "image_id": "aaaa0001",
    "sex": "f",
    "admission_offset": "-5",
    "modality": "CR",
    "projection": "ap",
    "crp_offset": "-1.0",
    "crp_val": "48.0",
    "ldh_offset": "0.0",
    "ldh_val": "300.0",
    "d-dimer_offset": "0.0",
    "d-dimer_val": "inf",
    "factor_xii_offset": "",
    "factor_xii_val": "",
    "lymphocytes_offset": "-3.0",
    "lymphocytes_val": "0.8",
    "neutrophils_offset": "2.0",
    "neutrophils_val": "9.1",  # two days after the film
    "pco2_offset": "0.0",
    "pco2_val": "-inf",
    "po2_offset": "-1.0",
    "po2_val": "62.0",
}


def _resources(bundle: dict[str, object], kind: str) -> list[dict[str, object]]:
    entries = bundle["entry"]
    assert isinstance(entries, list)
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == kind]


def test_each_test_becomes_an_observation_with_its_loinc_code_unit_and_date() -> None:
    bundle = bundle_for_row(ROW)
    film = _resources(bundle, "ImagingStudy")[0]
    assert film["started"] == film_date(ROW).isoformat() == "2000-01-06"  # admitted 5 days before
    observations = {o["code"]["coding"][0]["code"]: o for o in _resources(bundle, "Observation")}
    assert set(observations) == {
        "1988-5",
        "2532-0",
        "48065-7",
        "731-0",
        "751-8",
        "11557-6",
        "11556-8",
    }
    crp = observations["1988-5"]
    assert crp["effectiveDateTime"] == "2000-01-05"  # the day before the film
    assert crp["valueQuantity"] == {
        "value": 48.0,
        "unit": "mg/L",
        "system": "http://unitsofmeasure.org",
        "code": "mg/L",
    }
    assert crp["category"][0]["coding"][0]["code"] == "laboratory"
    assert observations["48065-7"]["valueString"] == "above the measuring range"
    assert observations["11557-6"]["valueString"] == "below the detection limit"
    patient = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert {o["subject"]["reference"] for o in observations.values()} == {patient}
    assert {c.loinc for c in LAB_COLUMNS} >= set(observations)


def test_the_bundle_is_valid_fhir_r4() -> None:
    from fhir.resources.R4B.bundle import Bundle

    parsed = Bundle.model_validate(bundle_for_row(ROW))
    assert parsed.type == "collection" and len(parsed.entry or []) == 10


def test_the_items_carry_the_days_from_the_film_and_nothing_from_after_it() -> None:
    items = {i.text: i for i in items_for_row(ROW, source="metadata.csv")}
    assert items["CRP 48 mg/L"].days_before == 1 and items["CRP 48 mg/L"].flag == "high"
    assert items["LDH 300 U/L"].days_before == 0
    assert items["Lymphocytes 0.8 10^3/µL"].flag == "low"
    assert items["D-dimer above the measuring range"].flag == "high"
    assert items["Neutrophils 9.1 10^3/µL"].days_before == -2  # known only after the film
    assert items["COVID-19"].kind == "condition"
    assert "COVID-19" not in {i.text for i in items_for_row(ROW, condition=False)}


def test_the_values_reach_the_prompt_with_their_dates(tmp_path: Path) -> None:
    from radloop.context import with_items
    from radloop.study import sample_study_path

    study = with_items(load_study(sample_study_path()), items_for_row(ROW, source="metadata.csv"))
    model = MockModel("No pneumothorax.")
    drafted = draft(study, model)
    prompt = model.requests[0].prompt
    assert (
        "Laboratory values (metadata.csv):\n- LDH 300 U/L, high (same day as this film)" in prompt
    )
    assert "- CRP 48 mg/L, high (1 day before this film)" in prompt
    assert "- Lymphocytes 0.8 10^3/µL, low (3 days before this film)" in prompt
    assert "Neutrophils" not in prompt
    assert drafted.context is not None
    assert [d["reason"] for d in drafted.context["dropped"]] == ["after this film"]


def _hannover(shared: Callable[[str], Path]) -> Path:
    return shared("data/hannover-dev")


def test_real_hannover_rows_reach_the_prompt_with_their_dates(
    shared: Callable[[str], Path],
) -> None:
    from radloop.evaluate.datasets import open_dataset

    root = _hannover(shared)
    with (root / "metadata.csv").open(newline="") as handle:
        rows = {r["image_id"]: r for r in csv.DictReader(handle)}
    dataset = open_dataset(f"folder:{root}")
    cases = {Path(c.source).stem: c for c in dataset.cases()}

    def offsets(row: dict[str, str]) -> set[int]:
        return {
            round(float(row[f"{c.prefix}_offset"]))
            for c in LAB_COLUMNS
            if row[f"{c.prefix}_offset"] and row[f"{c.prefix}_val"]
        }

    # A few films: values only on the film's day, some from days before, some from after it.
    chosen = [
        next(i for i, r in rows.items() if offsets(r) == {0}),
        next(i for i, r in rows.items() if min(offsets(r) or {0}) < 0),
        next(i for i, r in rows.items() if max(offsets(r) or {0}) > 0),
    ]
    for image in chosen:
        row = rows[image]
        model = MockModel("No pneumothorax.")
        drafted = draft(dataset.load_study(cases[image]), model)
        prompt = model.requests[0].prompt
        assert f"Laboratory values ({root.name} metadata.csv):" in prompt
        for column in LAB_COLUMNS:
            value, offset = row[f"{column.prefix}_val"], row[f"{column.prefix}_offset"]
            if not value or not offset:
                continue
            days = -round(float(offset))
            given = [
                g
                for g in drafted.context["given"]
                if g.get("code") == f"http://loinc.org|{column.loinc}"
            ]
            if days < 0:
                assert given == [], (image, column.prefix)  # after the film: never given
                continue
            assert len(given) == 1 and given[0]["days_before"] == days, (image, column.prefix)
            when = (
                "same day as this film"
                if days == 0
                else f"{days} day{'s' if days > 1 else ''} before this film"
            )
            line = next(x for x in prompt.splitlines() if x.startswith(f"- {given[0]['text']}"))
            assert line.endswith(f"({when})"), line


def test_c9280a30_reads_as_expected(shared: Callable[[str], Path]) -> None:
    root = _hannover(shared)
    result = CliRunner().invoke(
        context, ["show", str(root / "images" / "c9280a30.png"), "--context-csv", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert (
        "Laboratory values (hannover-dev/metadata.csv):\n"
        "- CRP 38 mg/L, high (same day as this film)\n"
        "- pO2 80 mmHg (1 day before this film)\n"
        "- pCO2 40 mmHg (1 day before this film)\n"
        "- Factor XIII 145 %, high (2 days before this film)"
    ) in result.output


def test_from_csv_writes_one_bundle_per_film(shared: Callable[[str], Path], tmp_path: Path) -> None:
    root = _hannover(shared)
    result = CliRunner().invoke(
        context,
        [
            "from-csv",
            str(root),
            "--out",
            str(tmp_path),
            "--image",
            "c9280a30",
            "--image",
            "53c9be49",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["53c9be49.json", "c9280a30.json"]
    bundle = json.loads((tmp_path / "c9280a30.json").read_text())
    codes = {o["code"]["coding"][0]["code"] for o in _resources(bundle, "Observation")}
    assert codes == {"1988-5", "27815-0", "11557-6", "11556-8"}


def test_draft_takes_a_bundle_from_the_command_line(
    shared: Callable[[str], Path], tmp_path: Path
) -> None:
    from radloop.safety.assist_cli import draft as draft_command

    root = _hannover(shared)
    CliRunner().invoke(
        context, ["from-csv", str(root), "--out", str(tmp_path), "--image", "c9280a30"]
    )
    result = CliRunner().invoke(
        draft_command,
        [
            str(root / "images" / "c9280a30.png"),
            "--context",
            str(tmp_path / "c9280a30.json"),
            "--model",
            "mock",
            "--no-check",
            "--json",
            "--samples",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert "- CRP 38 mg/L, high (same day as this film)" in payload["context"]["text"]
    assert "Laboratory values (FHIR Bundle c9280a30.json):" in payload["context"]["text"]
