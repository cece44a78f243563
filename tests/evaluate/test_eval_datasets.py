"""Datasets: folder (generic and realcxr layouts), MIMIC-CXR-JPG, CheXpert and synthetic
studies, each read from tiny fixtures the tests build."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radloop.evaluate import DatasetError, UnknownDatasetError, available_datasets, open_dataset
from radloop.evaluate.datasets.folder import country_of
from radloop.lab.datasets import case_from_truth, lesion_contrast


def _png(path: Path, value: int = 90, size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = np.clip(rng.normal(value, 20, (size, size)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_every_builtin_dataset_kind_is_registered() -> None:
    assert {"synth", "folder", "mimic", "chexpert"} <= set(available_datasets())


def test_a_dataset_without_kind_is_refused_with_the_expected_form() -> None:
    with pytest.raises(DatasetError, match=r"expected a dataset as KIND:PATH"):
        open_dataset("just-a-folder")


def test_an_unknown_dataset_kind_names_the_known_ones() -> None:
    with pytest.raises(UnknownDatasetError, match=r"expected a dataset name, one of .*folder"):
        open_dataset("nifti:/tmp/x")


def test_generic_folder_reads_labels_zones_and_attributes(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    _csv(
        tmp_path / "metadata.csv",
        [
            {
                "image": "a.png",
                "pleural_effusion": "1",
                "pleural_effusion_zones": "right_lower",
                "pneumothorax": "0",
                "age": "71",
                "sex": "F",
                "site": "north",
                "view": "PA",
            },
            {
                "image": "b.png",
                "pleural_effusion": "0",
                "pleural_effusion_zones": "",
                "pneumothorax": "-1",
                "age": "",
                "sex": "M",
                "site": "south",
                "view": "AP",
            },
        ],
    )
    dataset = open_dataset(f"folder:{tmp_path}")
    assert dataset.codes == ("pneumothorax", "pleural_effusion")
    a, b = dataset.cases()
    assert a.labels == {"pneumothorax": 0, "pleural_effusion": 1}
    assert b.labels == {"pneumothorax": None, "pleural_effusion": 0}  # -1 is unknown
    assert a.zone_labels["pleural_effusion"]["right_lower"] == 1
    assert sum(a.zone_labels["pleural_effusion"].values()) == 1
    assert a.findings[0].side is not None and a.findings[0].side.value == "right"
    assert a.attributes["site"] == "north" and a.attributes["age"] == 71.0
    study = dataset.load_study(a)
    assert study.metadata.view_position == "PA" and study.metadata.patient_sex == "F"


def test_generic_folder_columns_can_be_renamed(tmp_path: Path) -> None:
    _png(tmp_path / "img" / "x.png")
    _csv(tmp_path / "labels.csv", [{"path": "img/x.png", "edema": "1", "hospital": "h1"}])
    dataset = open_dataset(
        f"folder:{tmp_path}", csv="labels.csv", image_column="path", site_column="hospital"
    )
    (case,) = dataset.cases()
    assert case.attributes["site"] == "h1" and case.labels == {"edema": 1}


def test_folder_without_its_csv_says_which_file_it_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"expected a CSV metadata\.csv in the folder"):
        open_dataset(f"folder:{tmp_path}")


def test_folder_with_an_unknown_zone_is_refused_before_anything_runs(tmp_path: Path) -> None:
    _csv(tmp_path / "metadata.csv", [{"image": "a.png", "edema": "1", "edema_zones": "apex"}])
    with pytest.raises(DatasetError, match="expected zones among right_upper"):
        open_dataset(f"folder:{tmp_path}")


def _realcxr_rows() -> list[dict[str, str]]:
    base = {
        "patientid": "1",
        "offset_days": "",
        "license": "CC BY",
        "source_url": "",
        "clinical_notes": "",
        "brixia_global": "",
        "geographic_extent_mean": "",
        "opacity_mean": "",
    }
    zones = dict.fromkeys((f"brixia_{z}" for z in "ABCDEF"), "")
    return [
        {
            **base,
            **zones,
            "image": "images/scored.png",
            "sex": "M",
            "age": "64",
            "finding": "COVID-19",
            "view": "PA",
            "modality": "X-ray",
            "location": "Milan, Italy",
            "brixia_A": "2",
            "brixia_B": "0",
            "brixia_C": "1",
            "brixia_D": "0",
            "brixia_E": "0",
            "brixia_F": "0",
        },
        {
            **base,
            **zones,
            "image": "images/normal.png",
            "sex": "F",
            "age": "30",
            "finding": "No Finding",
            "view": "AP Supine",
            "modality": "X-ray",
            "location": "Spain",
        },
        {
            **base,
            **zones,
            "image": "images/unscored.png",
            "sex": "",
            "age": "",
            "finding": "COVID-19",
            "view": "PA",
            "modality": "X-ray",
            "location": "?",
        },
        {
            **base,
            **zones,
            "image": "images/ct.png",
            "sex": "M",
            "age": "50",
            "finding": "COVID-19",
            "view": "Axial",
            "modality": "CT",
            "location": "Spain",
        },
    ]


def test_realcxr_layout_turns_brixia_scores_into_opacity_per_zone(tmp_path: Path) -> None:
    rows = _realcxr_rows()
    for row in rows:
        _png(tmp_path / row["image"])
    _csv(tmp_path / "metadata.csv", rows)
    dataset = open_dataset(f"folder:{tmp_path}")
    assert dataset.codes == ("lung_opacity",)
    scored, normal, unscored, ct = dataset.cases()
    assert scored.labels == {"lung_opacity": 1}
    assert scored.zone_labels["lung_opacity"] == {
        "right_upper": 1,
        "right_middle": 0,
        "right_lower": 1,
        "left_upper": 0,
        "left_middle": 0,
        "left_lower": 0,
    }
    assert scored.findings[0].side is not None and scored.findings[0].side.value == "right"
    assert normal.labels == {"lung_opacity": 0} and not normal.zone_labels
    assert unscored.labels == {"lung_opacity": None}
    assert ct.labels == {"lung_opacity": None}
    assert ct.attributes["expected_scope"] == "refused"
    assert scored.attributes["site"] == "Italy" and normal.attributes["view"] == "AP"
    study = dataset.load_study(ct)
    assert study.metadata.modality == "CT"


def test_country_of_a_location_is_its_last_part() -> None:
    assert country_of("Hospital Universitario, Madrid, Spain") == "Spain"
    assert country_of("?") is None


def test_the_shared_realcxr_dev_set_has_its_brixia_scored_frontal_films(
    shared: Callable[[str], Path],
) -> None:
    dataset = open_dataset(f"folder:{shared('data/realcxr-dev')}")
    cases = dataset.cases()
    scored = [c for c in cases if c.zone_labels]
    assert len(cases) == 333 and len(scored) == 62
    assert sum(c.attributes["expected_scope"] == "refused" for c in cases) >= 35


def _mimic(root: Path, *, gz: bool) -> None:
    rows = [
        ("10000032", "50414267", "d1", "PA", "1.0", "", "-1.0"),
        ("10000032", "50414267", "d2", "LATERAL", "1.0", "", "-1.0"),
        ("10000033", "50414268", "d3", "AP", "0.0", "1.0", ""),
    ]
    for subject, study, dicom, _view, *_ in rows:
        _png(root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg")
    labels = "subject_id,study_id,Pleural Effusion,Pneumothorax,Edema\n" + "".join(
        f"{s},{st},{e},{p},{ed}\n" for s, st, _, v, e, p, ed in rows if v != "LATERAL"
    )
    meta = "dicom_id,subject_id,study_id,ViewPosition\n" + "".join(
        f"{d},{s},{st},{v}\n" for s, st, d, v, *_ in rows
    )
    for name, text in (
        ("mimic-cxr-2.0.0-chexpert.csv", labels),
        ("mimic-cxr-2.0.0-metadata.csv", meta),
    ):
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (root / name).write_text(text)


@pytest.mark.parametrize("gz", [False, True])
def test_mimic_layout_reads_one_frontal_image_per_study(tmp_path: Path, gz: bool) -> None:
    _mimic(tmp_path, gz=gz)
    dataset = open_dataset(f"mimic:{tmp_path}")
    first, second = dataset.cases()
    assert first.source.endswith("d1.jpg") and first.attributes["view"] == "PA"
    assert first.labels["pleural_effusion"] == 1
    assert first.labels["pneumothorax"] == 0  # blank: not mentioned, absent
    assert first.labels["edema"] is None  # -1: uncertain, left out
    assert second.labels == {"pleural_effusion": 0, "pneumothorax": 1, "edema": 0}
    assert dataset.load_study(first).images


def test_mimic_uncertain_policy_u_ones(tmp_path: Path) -> None:
    _mimic(tmp_path, gz=False)
    first, _ = open_dataset(f"mimic:{tmp_path}", uncertain="positive").cases()
    assert first.labels["edema"] == 1


def test_mimic_without_its_csv_files_names_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"mimic-cxr-2\.0\.0-chexpert\.csv"):
        open_dataset(f"mimic:{tmp_path}")


def test_chexpert_layout_reads_paths_relative_to_the_parent_folder(tmp_path: Path) -> None:
    root = tmp_path / "CheXpert-v1.0-small"
    for view in ("view1_frontal", "view2_lateral"):
        _png(tmp_path / "CheXpert-v1.0-small/valid/patient1/study1" / f"{view}.jpg")
    (root / "valid.csv").write_text(
        "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Lung Opacity\n"
        "CheXpert-v1.0-small/valid/patient1/study1/view2_lateral.jpg,Female,68,Lateral,,0,1,1\n"
        "CheXpert-v1.0-small/valid/patient1/study1/view1_frontal.jpg,Female,68,Frontal,AP,0,1,1\n"
    )
    dataset = open_dataset(f"chexpert:{root}")
    (case,) = dataset.cases()
    assert case.source.endswith("view1_frontal.jpg")
    assert case.labels == {"cardiomegaly": 1, "lung_opacity": 1}  # no_finding is not a finding
    assert case.attributes == {"age": 68.0, "sex": "F", "site": None, "view": "AP"}
    assert dataset.codes == ("cardiomegaly", "lung_opacity")


def test_lesion_contrast_is_the_mask_minus_ring_difference_in_percent() -> None:
    display = np.full((60, 60), 100, dtype=np.uint8)
    mask = np.zeros((60, 60), dtype=bool)
    mask[25:35, 25:35] = True
    display[mask] = 151
    assert lesion_contrast(display, mask) == pytest.approx(20.0, abs=1e-3)
    assert lesion_contrast(display, np.zeros_like(mask)) is None


def test_a_synthetic_truth_becomes_a_case_with_labels_zones_and_lesions(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    display = np.full((64, 64), 80, dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[10:20, 10:20] = 255
    display[mask > 0] = 90
    Image.fromarray(display).save(tmp_path / "PA.png")
    Image.fromarray(mask).save(tmp_path / "masks" / "PA_f1.png")
    truth = {
        "study_id": "s00007",
        "profile": "enhanced",
        "patient": {"age_years": 66, "sex": "F"},
        "findings": [
            {
                "id": "f1",
                "code": "nodule",
                "presence": "present",
                "side": "right",
                "zones": ["right_upper"],
                "lobes": ["right_upper_lobe"],
                "vertebral_level": "T4",
                "size_mm": 9.5,
            }
        ],
        "images": [
            {
                "view": "PA",
                "preview": "PA.png",
                "findings": [{"id": "f1", "code": "nodule", "mask": "masks/PA_f1.png"}],
            }
        ],
    }
    case = case_from_truth(tmp_path, json.loads(json.dumps(truth)))
    assert case.labels["nodule"] == 1 and case.labels["mass"] == 0
    assert case.zone_labels["nodule"]["right_upper"] == 1
    assert case.zone_labels["mass"] == dict.fromkeys(case.zone_labels["mass"], 0)
    (lesion,) = case.lesions
    assert lesion.size_mm == 9.5 and lesion.contrast == pytest.approx(10 / 255 * 100, abs=1e-3)
    assert case.attributes == {"age": 66, "sex": "F", "site": "enhanced", "view": "PA"}
    assert case.findings[0].vertebral_level is not None


def _report_xml(pmc: str, findings: str, impression: str, tags: list[str]) -> bytes:
    majors = "".join(f"<major>{t}</major>" for t in tags)
    return (
        f'<eCitation><pmcId id="{pmc}"/><MedlineCitation><Article><Abstract>'
        f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
        f'<AbstractText Label="IMPRESSION">{impression}</AbstractText>'
        f"</Abstract></Article></MedlineCitation><MeSH>{majors}</MeSH></eCitation>"
    ).encode()


def _report_set(tmp_path: Path) -> tuple[Path, Path]:
    import io
    import tarfile

    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": {
        "pleural_effusion": ["Pleural Effusion"], "nodule_mass": ["Nodule", "Mass"],
        "normal": ["normal"]}}))  # fmt: skip
    archive = tmp_path / "reports.tgz"
    reports = [
        ("1", "Small right pleural effusion.", "Effusion.", ["Pleural Effusion/right/small"]),
        ("2", "Lungs are clear.", "No acute disease.", ["normal"]),
        ("3", "A 1 cm nodule in the left upper lobe.", "Nodule.", ["Nodule/lung/upper lobe/left"]),
    ]
    with tarfile.open(archive, "w:gz") as tar:
        for pmc, f, i, tags in reports:
            data = _report_xml(pmc, f, i, tags)
            info = tarfile.TarInfo(f"ecgen-radiology/{pmc}.xml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive, labels


def test_report_sets_carry_text_and_labels_from_mesh_tags(tmp_path: Path) -> None:
    archive, labels = _report_set(tmp_path)
    dataset = open_dataset(f"reports:{archive}", labels=str(labels))
    assert dataset.codes == ("lung_lesion", "pleural_effusion")  # "normal" is not a finding
    effusion, normal, nodule = dataset.cases()
    assert effusion.labels == {"lung_lesion": 0, "pleural_effusion": 1}
    assert effusion.findings[0].side is not None and effusion.findings[0].side.value == "right"
    assert normal.labels == {"lung_lesion": 0, "pleural_effusion": 0}
    assert nodule.labels["lung_lesion"] == 1 and "nodule" in (nodule.text or "")


def test_the_parser_is_evaluated_on_a_report_set(tmp_path: Path) -> None:
    from radloop.evaluate.pipeline import evaluate

    archive, labels = _report_set(tmp_path)
    outcome = evaluate("parser", f"reports:{archive}", tmp_path / "run",
                       data_options={"labels": str(labels)}, resamples=20)  # fmt: skip
    per = outcome.table["per_finding"]
    # The parser's nodule counts for the broader lung_lesion label.
    assert per["lung_lesion"]["draft"]["sensitivity"]["value"] == 1.0
    assert per["pleural_effusion"]["draft"]["sensitivity"]["value"] == 1.0
    assert outcome.table["summary"]["draft"]["hallucination_rate"]["value"] == 0.0


def test_an_image_model_on_a_report_set_is_refused(tmp_path: Path) -> None:
    from radloop.evaluate.pipeline import evaluate

    archive, labels = _report_set(tmp_path)
    with pytest.raises(DatasetError, match=r"--model parser with a report-only dataset"):
        evaluate("builtin", f"reports:{archive}", tmp_path / "run",
                 data_options={"labels": str(labels)})  # fmt: skip


def test_splits_of_several_profiles_get_distinct_case_ids(tmp_path: Path) -> None:
    from radloop.lab.datasets import SyntheticDataset

    folders = []
    for split in ("synth-test-1-enhanced-1", "synth-test-2-standard-1"):
        folder = tmp_path / split / "s00000"
        folder.mkdir(parents=True)
        truth = {
            "study_id": "s00000",
            "profile": split.split("-")[3],
            "findings": [],
            "patient": {"age_years": 50, "sex": "M"},
            "images": [{"view": "PA"}],
        }
        (folder / "truth.json").write_text(json.dumps(truth))
        folders.append(folder)
    cases = SyntheticDataset("synth:test", folders, "two splits").cases()
    assert [c.case_id for c in cases] == [
        "synth-test-1-enhanced-1-s00000",
        "synth-test-2-standard-1-s00000",
    ]
    assert [c.attributes["site"] for c in cases] == ["enhanced", "standard"]


def test_a_dataset_with_a_case_id_used_twice_is_refused(tmp_path: Path) -> None:
    from radloop.evaluate.runner import RunSettings, run_evaluation
    from radloop.evaluate.types import Case

    twice = [Case("a", "x.png", {}), Case("a", "y.png", {})]
    settings = RunSettings("mock", "folder:x", None, None, None)
    with pytest.raises(DatasetError, match=r"expected a unique id per case"):
        run_evaluation(open_dataset(f"folder:{_folder_with_one_image(tmp_path)}"), None,
                       tmp_path / "run", settings, cases=twice)  # fmt: skip
    assert not (tmp_path / "run").exists()  # refused before anything is written


def _folder_with_one_image(root: Path) -> Path:
    _png(root / "a.png")
    _csv(root / "metadata.csv", [{"image": "a.png", "edema": "1"}])
    return root


def test_an_option_the_dataset_does_not_take_is_refused(tmp_path: Path) -> None:
    _folder_with_one_image(tmp_path)
    with pytest.raises(DatasetError, match=r"options of a folder dataset among .*got image_colum"):
        open_dataset(f"folder:{tmp_path}", image_colum="path")


def test_eval_over_normal_films_only_writes_its_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from radloop.cli import main

    data = tmp_path / "normals"
    for name in ("a.png", "b.png"):
        _png(data / name)
    _csv(
        data / "metadata.csv",
        [
            {"image": name, "view": "PA", "pneumothorax": "0", "pleural_effusion": "0"}
            for name in ("a.png", "b.png")
        ],
    )
    for labels in ("with", "without"):
        if labels == "without":
            _csv(data / "metadata.csv", [{"image": n, "view": "PA"} for n in ("a.png", "b.png")])
        out = tmp_path / f"run-{labels}"
        args = ["eval", "--model", "builtin", "--data", f"folder:{data}", "--out", str(out),
                "--ood", "none", "--resamples", "20", "--json"]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output.strip().splitlines()[-1])
        assert summary["n_cases"] == 2
        assert summary["draft"]["macro_auroc"] is None  # no positive: AUROC is undefined
        assert (out / "report.html").is_file()
