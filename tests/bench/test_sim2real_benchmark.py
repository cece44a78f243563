"""``radloop bench sim2real`` on a tiny folder whose truth is known: a reader built from the
films' own masks scores every figure as worked out by hand below, a reader with its sides
swapped scores none of its side claims, and without the network the bench says what to build."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

import radloop.lab.bench.sim2real as sim2real
from radloop.errors import InputError
from radloop.lab.bench.sim2real import (
    MissingLungFieldsError,
    bench_sim2real,
    format_sim2real,
    load_reader,
    run_sim2real_benchmark,
)
from radloop.lab.bench.sim2real_metrics import (
    PairScores,
    change_zone_accuracy,
    dice,
    outline_errors,
)
from radloop.models.competence import DomainDecision
from radloop.models.reference.lungfields import ZONE_ORDER, LungFields, zone_map
from radloop.report import Finding, Presence

ROWS, TOP, BOTTOM = 64, 8, 56  # each lung: rows 8..55, thirds of 16 rows (equal zone areas)
RIGHT_COLS, LEFT_COLS = (6, 26), (34, 54)  # thorax 48 px wide; each lung 48 x 20 = 960 px
LUNG_PIXELS = 2 * 48 * 20
LETTERS = "ABCDEF"

# index: view, modality, notes, Brixia A–F (None: not scored), heart width, outline, ignore
FILMS: list[dict[str, Any]] = [
    {"view": "PA", "modality": "X-ray", "notes": "Fever.", "brixia": (1, 0, 0, 0, 0, 0),
     "heart": 12, "outline": "lungs", "ignore": False},
    {"view": "AP Supine", "modality": "X-ray", "notes": "", "brixia": (2, 1, 0, 0, 0, 0),
     "heart": 18, "outline": None, "ignore": False},
    {"view": "PA", "modality": "X-ray", "notes": "Central line in place.",
     "brixia": (0, 0, 0, 1, 1, 2), "heart": 24, "outline": None, "ignore": False},
    {"view": "AP", "modality": "X-ray", "notes": "No findings.", "brixia": (0,) * 6,
     "heart": 30, "outline": "lungs+band", "ignore": True},
    {"view": "PA", "modality": "X-ray", "notes": "Cough; tuberculosis in the past.",
     "brixia": None, "heart": 36, "outline": "lungs+band", "ignore": False},
    {"view": "PA", "modality": "X-ray", "notes": "ETT tip 3 cm above the carina.",
     "brixia": (0, 0, 0, 0, 0, 3), "heart": 20, "outline": None, "ignore": False},
    {"view": "L", "modality": "X-ray", "notes": "", "brixia": None, "heart": 10,
     "outline": None, "ignore": False},
    {"view": "Axial", "modality": "CT", "notes": "", "brixia": None, "heart": 10,
     "outline": None, "ignore": False},
]  # fmt: skip
FRONTAL = 6
PAIRS = [  # prior index, current index, prior Brixia, current Brixia
    (0, 1, (1, 0, 0, 0, 0, 0), (2, 1, 0, 0, 0, 0)),
    (2, 5, (0, 0, 0, 1, 1, 2), (0, 0, 0, 0, 0, 3)),
    (6, 0, (0,) * 6, (1, 0, 0, 0, 0, 0)),  # the lateral is not read: the pair is not either
]


def _width(index: int) -> int:
    return 60 + index  # each film's width names it, whatever the loader does to its grey levels


def _masks(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = (ROWS, _width(index))
    right, left, heart = (np.zeros(shape, dtype=bool) for _ in range(3))
    right[TOP:BOTTOM, slice(*RIGHT_COLS)] = True
    left[TOP:BOTTOM, slice(*LEFT_COLS)] = True
    heart[30:50, 20 : 20 + FILMS[index]["heart"]] = True
    return right, left, heart


def _band(index: int) -> np.ndarray:
    band = np.zeros((ROWS, _width(index)), dtype=bool)
    band[0:TOP, 0:60] = True  # 8 x 60 = 480 px above the lungs
    return band


def _png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(mask.astype(np.uint8) * 255).save(path)


def _write_folder(root: Path, *, notes: bool = True) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i, film in enumerate(FILMS):
        image = f"images/film{i}.png"
        pixels = rng.integers(0, 256, size=(ROWS, _width(i)), dtype=np.uint8)
        (root / "images").mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(pixels).save(root / image)
        right, left, _ = _masks(i)
        outline = ""
        if film["outline"]:
            outline = f"lungs/film{i}.png"
            extra = _band(i) if film["outline"] == "lungs+band" else False
            _png(root / outline, right | left | extra)
        if film["ignore"]:
            _png(root / "ignore" / f"film{i}.png", _band(i))
        brixia = film["brixia"] or ("",) * 6
        row = {"image": image, "view": film["view"], "modality": film["modality"],
               **({"clinical_notes": film["notes"]} if notes else {}),
               **{f"brixia_{z}": str(b) for z, b in zip(LETTERS, brixia, strict=True)},
               "lung_mask": outline}  # fmt: skip
        rows.append(row)
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (root / "pairs.csv").open("w", newline="") as handle:
        pairs = csv.writer(handle)
        pairs.writerow(["prior", "current", "days"] + [f"{w}_brixia_{z}" for w in
                        ("prior", "current") for z in LETTERS])  # fmt: skip
        for a, b, before, after in PAIRS:
            pairs.writerow([f"images/film{a}.png", f"images/film{b}.png", 3, *before, *after])
    return root


class MaskReader:
    """Reads each film from its known masks; opacity 1 over the zones Brixia scores > 0."""

    version = "masks-0"

    def __init__(self, *, swap: bool = False) -> None:
        self.swap = swap

    def read(self, pixels: np.ndarray) -> LungFields:
        index = pixels.shape[1] - 60
        right, left, heart = _masks(index)
        zones = zone_map(right, left)
        brixia = FILMS[index]["brixia"] or (0,) * 6
        positive = [k for k, score in enumerate(brixia, start=1) if score > 0]
        opacity = np.isin(zones, positive).astype(np.float32)
        if self.swap:
            right, left = left, right
        return LungFields(right=right, left=left, heart=heart, opacity=opacity)


class Drafter:
    """States an endotracheal tube on even films (and a nodule, and an absent catheter), and
    places films 0 and 1 in its domain."""

    def predict_findings(self, images: Sequence[Any]) -> tuple[Finding, ...]:
        index = images[0].pixels.shape[1] - 60
        found = [Finding("nodule"), Finding("central_venous_catheter", Presence.ABSENT)]
        if index % 2 == 0:
            found.append(Finding("endotracheal_tube"))
        return tuple(found)

    def assess_domain(self, images: Sequence[Any]) -> DomainDecision:
        index = images[0].pixels.shape[1] - 60
        return DomainDecision("test", "lab" if index in (0, 1) else None, "by index")


def _run(root: Path, **options: Any) -> dict[str, Any]:
    options.setdefault("reader", MaskReader())
    result = run_sim2real_benchmark(
        root, drafter=Drafter(), resamples=200, progress=False, **options
    )
    return result.to_dict()


def test_a_reader_that_knows_the_masks_scores_every_figure_as_worked_out(tmp_path: Path) -> None:
    d = _run(_write_folder(tmp_path), threshold=0.3)
    assert d["films"] == {"count": 8, "frontal": FRONTAL, "skipped": 2}
    assert d["reader"] == "masks-0"
    # 5 scored films x 6 zones, 7 positive (1 + 2 + 3 + 0 + 1); zone scores are exactly 0 or 1.
    zone = d["zone_auroc"]
    assert (zone["value"], zone["n"], zone["films"], zone["positives"]) == (1.0, 30, 5, 7)
    assert zone["ci95"] == [1.0, 1.0]
    assert zone["per_zone"]["A"]["value"] == 1.0 and zone["per_zone"]["A"]["positives"] == 2
    assert zone["per_zone"]["C"]["value"] is None  # no film scores zone C: no AUROC
    # Four films with a positive side, one side each: 1/3, 2/3, 1 and 1/3 of it opaque, all
    # at least 0.3, and no opacity on the other side.
    side = d["opacity_side_accuracy"]
    assert (side["hits"], side["n"], side["films"], side["value"]) == (4, 4, 4, 1.0)
    # Outlines: film 0 the lungs (1.0); film 3 the lungs and a 480 px band under its ignore
    # mask (1.0); film 4 the same band, not ignored: 2 x 1920 / (1920 + 2400).
    band = 2 * LUNG_PIXELS / (2 * LUNG_PIXELS + 480)
    dice_ = d["lung_dice"]
    assert dice_["n"] == 3
    assert dice_["value"] == pytest.approx((2 + band) / 3, abs=1e-4)
    assert dice_["median"] == 1.0
    assert (dice_["at_least_0_90"]["hits"], dice_["at_least_0_90"]["n"]) == (2, 3)
    # Film 4's outline has 480 px the reading does not draw, of 2400: the mean missed share.
    assert dice_["errors"]["missed"] == pytest.approx(480 / 2400 / 3, abs=1e-4)
    assert dice_["errors"]["drawn_between"] == 0.0
    # Heart widths 12, 18, 24, 30, 36, 20 px over a 48 px thorax.
    ctr = d["ctr"]
    assert ctr["n"] == FRONTAL and ctr["undefined"] == 0
    assert ctr["median"] == pytest.approx((20 / 48 + 24 / 48) / 2, abs=1e-4)
    assert (ctr["above_0_5"]["hits"], ctr["above_0_5"]["n"]) == (2, 6)
    # Pair 0→1: A moved 1→2 but reads 1→1 (miss), B 0→1 (hit), four zones stayed at 0.
    # Pair 2→5: D and E fell to 0 (hits), F 2→3 reads 1→1 (miss), three zones stayed.
    change = d["change_zone_accuracy"]
    assert (change["hits"], change["n"], change["pairs"], change["pairs_unread"]) == (3, 5, 2, 1)
    assert (change["stayed"]["hits"], change["stayed"]["n"]) == (7, 7)
    assert (change["sign_only"]["hits"], change["sign_only"]["n"]) == (3, 5)
    # Device-free: films 0, 1 and 4 ("tuberculosis" is no tube); film 2 names a line, film 3
    # has an ignore mask, film 5 an ETT. The network calls tubes on films 0 and 4; the model
    # states only film 0's (film 4 lies outside its domain: it abstains there).
    devices = d["device_claims_per_film"]
    assert (devices["claims"], devices["films"], devices["device_free_known"]) == (1, 3, True)
    assert devices["value"] == pytest.approx(1 / 3, abs=1e-4)
    ungated = d["device_claims_ungated_per_film"]
    assert (ungated["claims"], ungated["films"]) == (2, 3)
    assert ungated["value"] == pytest.approx(2 / 3, abs=1e-4)
    domain = d["in_domain_share"]
    assert (domain["hits"], domain["n"]) == (2, FRONTAL)
    assert d["timing"]["seconds_per_film"] is not None


def test_a_reader_with_its_sides_swapped_gets_no_side_right(tmp_path: Path) -> None:
    d = _run(_write_folder(tmp_path), reader=MaskReader(swap=True), threshold=0.3)
    side = d["opacity_side_accuracy"]
    assert (side["hits"], side["n"], side["value"]) == (0, 4, 0.0)
    assert side["ci95"][0] == 0.0 and side["ci95"][1] < 0.6


def test_the_opacity_threshold_decides_which_sides_are_claimed(tmp_path: Path) -> None:
    """At 0.5 the films with one zone of three opaque (0 and 5) claim no side."""
    side = _run(_write_folder(tmp_path), threshold=0.5)["opacity_side_accuracy"]
    assert (side["hits"], side["n"]) == (2, 2)


def test_without_notes_every_film_is_counted_for_devices(tmp_path: Path) -> None:
    d = _run(_write_folder(tmp_path, notes=False))
    devices = d["device_claims_per_film"]
    assert (devices["claims"], devices["films"], devices["device_free_known"]) == (1, 6, False)
    assert "cannot be told" in devices["note"]
    assert d["device_claims_ungated_per_film"]["claims"] == 3  # films 0, 2 and 4


def test_limit_reads_the_first_films_and_leaves_pairs_unread(tmp_path: Path) -> None:
    d = _run(_write_folder(tmp_path), limit=2)
    assert d["films"] == {"count": 2, "frontal": 2, "skipped": 0}
    assert d["change_zone_accuracy"]["pairs"] == 1
    assert d["change_zone_accuracy"]["pairs_unread"] == 2


def test_dice_leaves_ignored_pixels_out_of_both_masks() -> None:
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    a[:2], b[1:3] = True, True  # 8 px each, 4 shared
    assert dice(a, b) == 0.5
    ignore = np.zeros((4, 4), dtype=bool)
    ignore[0] = ignore[2] = True
    assert dice(a, b, ignore) == 1.0  # only row 1 is left, in both
    assert dice(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_outline_errors_say_where_the_fields_differ_from_the_outline() -> None:
    outline = np.zeros((20, 20), dtype=bool)
    outline[5:15, 2:8] = outline[5:15, 12:18] = True  # two lungs, 120 px, a gap at 8-11
    drawn = outline.copy()
    drawn[5:15, 8:12] = True  # both lungs meeting at the midline: 40 px between them
    drawn[10:15, 18] = True  # 5 px beside the left lung
    drawn[3:5, 3:7] = True  # 8 px above the apices
    drawn[14, 2:8] = False  # 6 px of the right base missed
    errors = outline_errors(drawn, outline)
    assert errors == pytest.approx({"missed": 6 / 120, "drawn_between": 40 / 120,
        "drawn_beside": 5 / 120, "drawn_above": 8 / 120, "drawn_below": 0.0})  # fmt: skip
    ignore = np.zeros_like(outline)
    ignore[:, 8:12] = True  # what lies under the ignore mask counts nowhere
    assert outline_errors(drawn, outline, ignore)["drawn_between"] == 0.0
    empty = outline_errors(drawn, np.zeros_like(outline))
    assert all(np.isnan(v) for v in empty.values())


def test_an_outline_of_another_size_is_refused(tmp_path: Path) -> None:
    root = _write_folder(tmp_path)
    _png(root / "lungs" / "film0.png", np.ones((10, 10), dtype=bool))
    with pytest.raises(InputError, match="a lung outline at the film's size"):
        _run(root)


def test_without_the_network_the_bench_says_what_to_build(tmp_path: Path) -> None:
    empty = tmp_path / "model"
    empty.mkdir()
    with pytest.raises(MissingLungFieldsError, match="radloop train-lungfields --out DIR"):
        load_reader(empty)
    root = _write_folder(tmp_path / "data")
    result = CliRunner().invoke(bench_sim2real, ["--data", str(root), "--model-dir", str(empty)])
    assert isinstance(result.exception, MissingLungFieldsError)
    assert "lungfields.onnx" in str(result.exception)


def test_the_command_prints_json_and_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the built-in drafting model as shipped; only the reader is the test's."""
    monkeypatch.setattr(sim2real, "load_reader", lambda model_dir=None: MaskReader())
    root = _write_folder(tmp_path)
    args = ["--data", str(root), "--opacity-threshold", "0.3", "--resamples", "50"]
    result = CliRunner().invoke(bench_sim2real, [*args, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout.strip().splitlines()[-1])
    assert d["benchmark"] == "sim2real" and d["films"]["frontal"] == FRONTAL
    assert d["zone_auroc"]["value"] == 1.0
    assert d["opacity_side_accuracy"]["threshold"] == 0.3
    assert d["in_domain_share"]["n"] == FRONTAL
    assert d["device_claims_per_film"]["films"] == 3
    table = CliRunner().invoke(bench_sim2real, args)
    assert table.exit_code == 0, table.output
    assert "zone_auroc (pooled)" in table.stdout and "1.000" in table.stdout
    assert "3/5 zones of 2 pairs (1 pairs not read)" in table.stdout


def test_write_domain_declares_what_the_figures_earned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A perfect reader's zone AUROC and side accuracy meet their bars, its lung Dice (0.96 on
    the films with an outline, one with an unignored band) does too: lung_opacity enters."""
    monkeypatch.setattr(sim2real, "load_reader", lambda model_dir=None: MaskReader())
    root = _write_folder(tmp_path / "data")
    model = tmp_path / "model"
    model.mkdir()
    args = ["--data", str(root), "--opacity-threshold", "0.3", "--resamples", "20"]
    result = CliRunner().invoke(bench_sim2real, [*args, "--write-domain", str(model)])
    assert result.exit_code == 0, result.output
    declared = json.loads((model / "realfilm-domain.json").read_text())
    assert declared["findings"] == ["lung_opacity"] and declared["opacity_threshold"] == 0.3
    assert declared["types"]["lung_opacity"]["figures"]["zone_auroc"]["value"] == 1.0
    monkeypatch.setattr(sim2real, "load_reader", lambda model_dir=None: MaskReader(swap=True))
    result = CliRunner().invoke(bench_sim2real, [*args, "--write-domain", str(model)])
    assert result.exit_code == 0, result.output
    swapped = json.loads((model / "realfilm-domain.json").read_text())
    assert swapped["findings"] == []
    assert swapped["types"]["lung_opacity"]["figures"]["opacity_side_accuracy"]["met"] is False


def test_the_table_reads_a_folder_without_pairs(tmp_path: Path) -> None:
    root = _write_folder(tmp_path)
    (root / "pairs.csv").unlink()
    result = run_sim2real_benchmark(
        root, reader=MaskReader(), drafter=Drafter(), limit=1, resamples=0, progress=False
    )
    text = format_sim2real(result)
    assert "(no pairs.csv)" in text
    assert result.to_dict()["change_zone_accuracy"] is None


def test_change_is_scored_as_compare_states_it_a_small_move_is_stable() -> None:
    nan = float("nan")
    pair = PairScores(
        prior_brixia=(0, 1, 2, 0, 0, 1),
        current_brixia=(1, 1, 1, 0, 2, 1),
        # A: +0.02 (stated stable: a miss, though its sign is right); C: -0.2 (a hit);
        # E: no reading (a miss); B, D, F stayed: +0.01 and -0.03 stable (hits), F +0.3 (miss)
        prior_scores=(0.30, 0.40, 0.60, 0.10, nan, 0.20),
        current_scores=(0.32, 0.41, 0.40, 0.07, 0.50, 0.50),
    )
    scored = change_zone_accuracy([pair], tolerance=0.05)
    assert (scored["hits"], scored["n"]) == (1, 3)
    assert (scored["sign_only"]["hits"], scored["sign_only"]["n"]) == (2, 3)
    assert (scored["stayed"]["hits"], scored["stayed"]["n"]) == (2, 3)
    loose = change_zone_accuracy([pair], tolerance=0.01)
    assert loose["hits"] == 2  # A's +0.02 now counts as increased


def test_overlays_draw_outlined_films_first_and_the_png_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    root = _write_folder(tmp_path)
    result = run_sim2real_benchmark(
        root, reader=MaskReader(), drafter=Drafter(), resamples=0, progress=False, keep=2
    )
    kept = result.overlays
    # three frontal films have an outline; two are kept, then two of the three without
    assert [o.dice is not None for o in kept] == [True, True]
    assert kept[0].outline is not None and kept[0].right.shape == (256, 256)
    assert kept[0].dice == pytest.approx(1.0)
    monkeypatch.setattr(sim2real, "load_reader", lambda model_dir=None: MaskReader())
    png = tmp_path / "figs" / "overlays.png"
    args = ["--data", str(root), "--resamples", "0", "--overlays", str(png)]
    out = CliRunner().invoke(bench_sim2real, args)
    assert out.exit_code == 0, out.output
    with PILImage.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 600
    assert not list(png.parent.glob("*.partial")) and "6 films" in out.stderr


class PairReader(MaskReader):
    """Reads a pair by giving the current film the prior's opacity: every zone stays."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs = 0

    def on_scale_of(
        self, prior: np.ndarray, before: LungFields, current: np.ndarray, alone: LungFields
    ) -> LungFields:
        self.pairs += 1
        zones, scores = alone.zones(), before.zone_scores()
        opacity = np.zeros(zones.shape, dtype=np.float32)
        for k, zone in enumerate(ZONE_ORDER, start=1):
            opacity[zones == k] = scores[zone]
        return LungFields(alone.right, alone.left, alone.heart, opacity)


def test_a_reader_that_reads_pairs_is_scored_on_its_pair_reading(tmp_path: Path) -> None:
    reader = PairReader()
    d = _run(_write_folder(tmp_path), reader=reader, threshold=0.3)
    assert reader.pairs == 2  # the two pairs whose films were read; the lateral's is not
    change = d["change_zone_accuracy"]
    assert (change["hits"], change["n"]) == (0, 5)  # every moved zone read as stable
    assert (change["stayed"]["hits"], change["stayed"]["n"]) == (7, 7)
    assert d["zone_auroc"]["value"] == 1.0  # each film alone is read as before
