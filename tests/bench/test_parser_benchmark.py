"""The parser benchmark's protocol, checked on a tiny archive of made-up reports."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from radloop.errors import InputError
from radloop.lab.bench.parser import (
    format_parser_benchmark,
    predicted_labels,
    run_parser_benchmark,
)
from radloop.report import Finding, Presence
from sharedkit import shared_path

LABELS = {
    "about": "test labels",
    "labels": {
        "cardiomegaly": ["Cardiomegaly"],
        "lung_opacity": ["Opacity", "Airspace Disease"],
        "pleural_effusion": ["Pleural Effusion"],
        "pneumothorax": ["Pneumothorax"],
        "normal": ["normal"],
    },
}


def report_xml(report_id: str, findings: str, impression: str, tags: list[str]) -> bytes:
    majors = "".join(f"<major>{tag}</major>" for tag in tags)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><eCitation><pmcId id="{report_id}"/>'
        "<MedlineCitation><Article><Abstract>"
        '<AbstractText Label="COMPARISON">None.</AbstractText>'
        f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
        f'<AbstractText Label="IMPRESSION">{impression}</AbstractText>'
        f"</Abstract></Article></MedlineCitation><MeSH>{majors}"
        "<automatic>ignored</automatic></MeSH></eCitation>"
    ).encode()


REPORTS = [
    # An effusion on the left; the unmapped head "Foo Bar" is ignored, side and all.
    report_xml(
        "1",
        "Small left pleural effusion.",
        "Left effusion.",
        ["Pleural Effusion/left/small", "Foo Bar/right"],
    ),
    # A normal report: predicted {normal} because nothing is present.
    report_xml("2", "The lungs are clear.", "No acute cardiopulmonary abnormality.", ["normal"]),
    # Only degenerative change: no label is gold and none is predicted (not normal).
    report_xml("3", "Degenerative changes of the spine.", "", ["Spine/degenerative"]),
    # The IMPRESSION is part of the text; the pneumothorax tag is missed.
    report_xml(
        "4",
        "Mild cardiomegaly.",
        "Right lower lobe opacity.",
        ["Cardiomegaly/mild", "Opacity/lung/lower lobe/right", "Pneumothorax/left"],
    ),
]


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, Path]:
    reports = tmp_path / "reports.tgz"
    with tarfile.open(reports, "w:gz") as tar:
        for i, data in enumerate(REPORTS, start=1):
            info = tarfile.TarInfo(f"ecgen-radiology/{i}.xml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        readme = b"not a report"
        info = tarfile.TarInfo("ecgen-radiology/README.txt")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS), encoding="utf-8")
    return reports, labels


def test_benchmark_arithmetic_follows_the_protocol(archive: tuple[Path, Path]) -> None:
    result = run_parser_benchmark(*archive)
    assert result.n_reports == 4
    # 4 true positives (effusion, normal, cardiomegaly, opacity), no false positive, one
    # false negative (pneumothorax): precision 1, recall 0.8.
    assert result.micro_f1 == pytest.approx(2 * 0.8 / 1.8)
    assert result.per_label["pneumothorax"].recall == 0.0
    assert result.per_label["pneumothorax"].support == 1
    assert result.per_label["normal"].f1 == 1.0
    assert set(result.per_label) == set(LABELS["labels"])


def test_laterality_and_location_count_mapped_tags_only(archive: tuple[Path, Path]) -> None:
    result = run_parser_benchmark(*archive)
    # Sided mapped tags: effusion left (met), opacity right (met), pneumothorax left (missed).
    assert (result.laterality_n, result.laterality_accuracy) == (3, pytest.approx(2 / 3))
    assert (result.location_n, result.location_accuracy) == (1, 1.0)


def test_result_has_a_json_form_and_a_table(archive: tuple[Path, Path]) -> None:
    result = run_parser_benchmark(*archive)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["n_reports"] == 4
    assert data["reports_per_s"] > 0
    assert set(data["per_label_f1"]) == set(LABELS["labels"])
    table = format_parser_benchmark(result)
    assert "micro F1" in table
    assert "pneumothorax" in table


def test_normal_is_predicted_only_without_any_positive_finding() -> None:
    labels = ["normal", "pleural_effusion"]
    assert predicted_labels([], labels) == {"normal"}
    absent = Finding("pleural_effusion", presence=Presence.ABSENT)
    assert predicted_labels([absent], labels) == {"normal"}
    assert predicted_labels([Finding("degenerative_change")], labels) == set()
    uncertain = Finding("pleural_effusion", presence=Presence.UNCERTAIN)
    assert predicted_labels([uncertain], labels) == {"pleural_effusion"}


def test_a_labels_file_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text('["Cardiomegaly"]', encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        run_parser_benchmark(tmp_path / "none.tgz", labels)


def test_a_missing_archive_is_refused(tmp_path: Path) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS), encoding="utf-8")
    with pytest.raises(InputError, match=r"expected a \.tgz archive"):
        run_parser_benchmark(tmp_path / "none.tgz", labels)


DEV_REPORTS = shared_path("data/iu-xray-reports-dev.tgz")
DEV_LABELS = shared_path("benchmarks/iu-mesh-labels.json")


@pytest.mark.skipif(
    DEV_REPORTS is None or DEV_LABELS is None, reason="IU dev reports not available"
)
def test_real_dev_reports_reach_the_bars() -> None:
    assert DEV_REPORTS is not None and DEV_LABELS is not None
    result = run_parser_benchmark(DEV_REPORTS, DEV_LABELS)
    assert result.micro_f1 >= 0.90
    assert result.laterality_accuracy >= 0.85
    assert result.location_accuracy >= 0.80
