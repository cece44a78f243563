"""Files on disk: DICOM DX that round-trips through radloop.study, determinism, the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.cli import synth
from radloop.lab.synth.study_writer import make_dataset


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_output_whatever_the_workers(
    anatomy: Anatomy, tmp_path: Path
) -> None:
    one = make_dataset(3, 21, tmp_path / "a", profile="mixed", size=192, workers=1)
    make_dataset(3, 21, tmp_path / "b", profile="mixed", size=192, workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert len(one["studies"]) == 3
    make_dataset(1, 22, tmp_path / "c", profile="mixed", size=192, workers=1)
    assert _digest(tmp_path / "c") != {k: v for k, v in _digest(tmp_path / "a").items()
                                        if k.startswith("s00000")}  # fmt: skip


def test_dicom_round_trips_through_radloop_study(anatomy: Anatomy, tmp_path: Path) -> None:
    study_module = pytest.importorskip("radloop.study")
    if not hasattr(study_module, "load_study"):
        pytest.skip("radloop.study.load_study is not available yet")
    for profile in ("standard", "community"):
        out = tmp_path / profile
        make_dataset(1, 5, out, profile=profile, size=256, workers=1)
        truth = json.loads((out / "s00000" / "truth.json").read_text())
        study = study_module.load_study(out / "s00000" / "dicom")
        views = {image.view_position for image in study.images}
        assert views == {i["view"] for i in truth["images"]}
        image = study.images[0]
        spacing = truth["images"][0]["pixel_spacing_mm"][0]
        assert image.pixel_spacing_mm == pytest.approx((spacing, spacing), rel=1e-5)
        assert study.metadata.patient_age == truth["patient"]["age_years"]
        assert (
            str(
                study.metadata.patient_sex.value
                if hasattr(study.metadata.patient_sex, "value")
                else study.metadata.patient_sex
            )[0].upper()
            == truth["patient"]["sex"]
        )
        assert study.metadata.manufacturer.startswith("Synthetic")
        # MONOCHROME1 is stored inverted and displayed the same as MONOCHROME2.
        preview = (out / "s00000" / truth["images"][0]["preview"]).read_bytes()
        assert preview[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.pixels.shape == (truth["images"][0]["rows"], truth["images"][0]["cols"])


def test_cli_make_then_show(anatomy: Anatomy, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(synth, ["make", "--n", "2", "--seed", "3", "--size", "128",
                                   "--workers", "1", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["study_id"] for s in manifest["studies"]] == ["s00000", "s00001"]
    shown = runner.invoke(synth, ["show", str(out / "s00000")])
    assert shown.exit_code == 0, shown.output
    assert (out / "s00000" / "overlay.png").is_file()


def test_cli_rejects_an_unknown_profile(tmp_path: Path) -> None:
    result = CliRunner().invoke(synth, ["make", "--n", "1", "--seed", "1", "--profile", "mars",
                                        "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code != 0
    assert "standard, portable, community, enhanced" in str(result.exception or result.output)


def test_another_ct_given_by_path_renders_like_the_default_source(
    anatomy: Anatomy, tmp_path: Path
) -> None:
    from radloop.lab.synth.anatomy import find_source

    source = find_source()
    make_dataset(1, 31, tmp_path / "default", size=128, workers=1)
    make_dataset(1, 31, tmp_path / "given", size=128, workers=1, ct=source.ct, labels=source.labels)
    assert _digest(tmp_path / "default") == _digest(tmp_path / "given")


def test_a_ct_without_its_label_map_is_refused_before_anything_is_written(
    anatomy: Anatomy, tmp_path: Path
) -> None:
    from radloop.errors import InputError
    from radloop.lab.synth.anatomy import find_source

    out = tmp_path / "never"
    with pytest.raises(InputError, match="expected both a CT and its label map"):
        make_dataset(1, 1, out, ct=find_source().ct)
    assert not out.exists()
