"""``radloop bench sim2real``: how the lung-fields network, trained on the synthetic lab only,
reads real films.

On a folder of real films (the ``folder:`` layout: realcxr-dev, hannover-dev, a site's own
films) every frontal radiograph (view PA or AP; modality DX, CR or DR, or none given) is read
by the lung-fields network (:mod:`radloop.models.reference.lungfields`) and by the built-in
drafting model (:mod:`radloop.models.builtin`). Other rows (laterals, CT) are skipped and
counted. Intervals are 95 %: the film bootstrap (films resampled, never zones) for AUROCs and
means, Wilson for shares.

- ``zone_auroc``: over the (film, zone) pairs of films with Brixia scores A–F, label Brixia
  score > 0, score the reading's zone score (mean opacity probability over the zone; an empty
  zone scores 0). Pooled AUROC, and each zone's.
- ``opacity_side_accuracy``: on films with Brixia scores and at least one zone > 0, the
  reading claims opacity on a side when that side's score (``side_scores``) is at least the
  opacity threshold (the network's sidecar ``opacity_threshold``, else 0.5, or as given); a
  claim is a hit when that side has a Brixia zone > 0. Hits over side claims.
- ``lung_dice``: Dice of the reading's lung fields against the annotators' outline (the
  ``lung_mask`` column: a 0/255 PNG at the film's size) on films with one; pixels under the
  film's ``ignore/`` mask (devices, markup) count in neither mask. Mean, median and the share
  of films at 0.90 or more; and where the fields differ from the outline, each a share of its
  area, averaged over films: ``missed``, and drawn ``between`` the outline's outermost pixels
  of a row (the mediastinum), ``beside`` them, ``above`` or ``below`` it.
- ``ctr``: the readings' cardiothoracic ratios (no labels): n, median, 5th and 95th
  percentiles, the share above 0.5.
- ``change_zone_accuracy`` (with a ``pairs.csv``: prior, current, days, prior_brixia_A..F,
  current_brixia_A..F; prior and current as in metadata.csv's ``image``): what ``compare``
  states per zone, the current film read on the prior's grey scale (a reader's
  ``on_scale_of``, where it has one, from the two films' readings alone) — increased or
  decreased when the zone score moved by at least the tolerance (0.05 unless given), else
  stable — against the Brixia score's change: on zones whose score moved, a hit when the
  stated direction is the score's; on zones that stayed (``stayed``), a hit when stated
  stable. ``sign_only``: the sign of the zone score's change on moved zones, with no
  tolerance.
- ``device_claims_per_film``: device findings (the vocabulary's device codes) the built-in
  model states present (none on a film outside its domain, where it abstains; the network's
  calls with no domain check are ``device_claims_ungated_per_film``), per device-free film:
  a film whose clinical notes do not mention a
  device (:data:`DEVICE_WORDS`) and that has no ``ignore/`` mask. Without a notes column
  (hannover-dev) the device-free films cannot be told: every film is counted, and the figure
  says so.
- ``in_domain_share``: films the built-in model's domain check places in its domain; under
  ``lung_fields``, the films the lung-fields network's own reference (fitted on lab and
  unlabelled real films) places in its domain.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click
import numpy as np
import numpy.typing as npt

from radloop.context.labcsv import read_rows
from radloop.errors import InputError
from radloop.lab.bench.realfilm import FOLDER_OPTION
from radloop.lab.bench.sim2real_metrics import (
    BRIXIA_LETTERS,
    FilmReading,
    PairScores,
    dice,
    outline_errors,
    summary,
)
from radloop.models.errors import MissingReferenceModelError
from radloop.models.reference.realfilm import CHANGE_TOLERANCE

if TYPE_CHECKING:
    from radloop.models.competence import DomainDecision
    from radloop.models.reference.lungfields import LungFields
    from radloop.report import Finding
    from radloop.study import Image

__all__ = [
    "DEVICE_WORDS",
    "DraftingModel",
    "FilmReader",
    "MissingLungFieldsError",
    "Sim2RealResult",
    "bench_sim2real",
    "format_sim2real",
    "load_reader",
    "run_sim2real_benchmark",
]

DEVICE_WORDS = re.compile(
    r"intubat|\btubes?\b|\blines?\b|catheter|\bett\b|\bcvc\b|\bpicc\b|pacemaker|drain",
    re.IGNORECASE,
)
"""Words in a film's clinical notes that mean it may show a device."""
RADIOGRAPH = {"DX", "CR", "DR", None}
PAIR_COLUMNS = ("prior", "current", *(f"{w}_brixia_{z}" for w in ("prior", "current")
                                      for z in BRIXIA_LETTERS))  # fmt: skip
DEFAULT_THRESHOLD = 0.5


class FilmReader(Protocol):
    """What reads one frontal film's lung fields (the lung-fields network's runtime)."""

    def read(self, pixels: npt.NDArray[Any]) -> LungFields: ...


class DraftingModel(Protocol):
    """The drafting model's two readings the bench counts (the built-in model's)."""

    def predict_findings(self, images: Sequence[Image]) -> tuple[Finding, ...]: ...

    def assess_domain(self, images: Sequence[Image]) -> DomainDecision: ...


class MissingLungFieldsError(MissingReferenceModelError):
    """The lung-fields network has not been built in this installation (or the folder)."""


def load_reader(model_dir: Path | None = None) -> FilmReader:
    """The lung-fields network shipped in the package, or the one in ``model_dir``."""
    from radloop.models.reference.lungfields import load_lung_fields

    runtime = load_lung_fields(str(model_dir) if model_dir is not None else None)
    if runtime is None:
        where = str(model_dir) if model_dir is not None else "the package (radloop/data/reference)"
        raise MissingLungFieldsError(
            f"expected the lung-fields network (lungfields.onnx and lungfields.json) in {where}, "
            "found none: build it with `radloop train-lungfields --out DIR` and pass "
            "--model-dir DIR"
        )
    return runtime


@dataclass
class Sim2RealResult:
    """The bench's figures (see the module docstring)."""

    data: str
    reader: str
    threshold: float
    films: int = 0
    frontal: int = 0
    skipped: int = 0
    pairs_unread: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reader_seconds: float = 0.0
    drafting_seconds: float = 0.0
    overlays: list[Any] = field(default_factory=list)
    """Up to ``keep`` films drawn with their readings (:mod:`.sim2real_figure`), outlined
    films first."""

    def to_dict(self) -> dict[str, Any]:
        def per(seconds: float) -> float | None:
            return round(seconds / self.frontal, 4) if self.frontal else None

        change = self.figures.get("change_zone_accuracy")
        if change is not None:
            change = {**change, "pairs_unread": self.pairs_unread}
        return {
            "benchmark": "sim2real",
            "data": self.data,
            "reader": self.reader,
            "films": {"count": self.films, "frontal": self.frontal, "skipped": self.skipped},
            **self.figures,
            "change_zone_accuracy": change,
            "timing": {
                "seconds": round(self.seconds, 2),
                "seconds_per_film": per(self.seconds),
                "reader_seconds_per_film": per(self.reader_seconds),
                "drafting_seconds_per_film": per(self.drafting_seconds),
            },
        }


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _brixia(row: dict[str, str], prefix: str = "brixia_") -> tuple[float, ...] | None:
    scores = [_number(row.get(f"{prefix}{z}")) for z in BRIXIA_LETTERS]
    return None if any(s is None for s in scores) else tuple(float(s or 0.0) for s in scores)


def _mask(path: Path, shape: tuple[int, ...], what: str) -> npt.NDArray[np.bool_]:
    from PIL import Image as PILImage

    with PILImage.open(path) as image:
        mask = np.asarray(image.convert("L")) > 127
    if mask.shape != shape:
        raise InputError(f"{what} at the film's size {shape}", f"{mask.shape}", source=path)
    return mask


def _outline(data: Path, row: dict[str, str], shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The film's annotated lung outline and ignore mask (None where it has none)."""
    name = (row.get("lung_mask") or "").strip()
    if not name:
        return None, None
    outline = _mask(data / name, shape, "a lung outline")
    ignore_path = data / "ignore" / Path(row["image"]).name
    ignore = _mask(ignore_path, shape, "an ignore mask") if ignore_path.is_file() else None
    return outline, ignore


def _overlay(film: Any, pixels: Any, reading: Any, outline: Any) -> Any:
    from radloop.lab.bench.sim2real_figure import overlay

    return overlay(Path(film.image).stem, pixels, reading.right, reading.left, reading.heart,
                   outline, film.dice)  # fmt: skip


def _device_free(data: Path, row: dict[str, str], has_notes: bool) -> bool | None:
    if not has_notes:
        return None
    if (data / "ignore" / Path(row.get("image", "")).name).is_file():
        return False
    return DEVICE_WORDS.search(row.get("clinical_notes") or "") is None


def _device_codes() -> frozenset[str]:
    from radloop.vocabulary import FINDING_CODES

    return frozenset(c for c, entry in FINDING_CODES.items() if entry.device) | {"support_devices"}


def _pair_rows(data: Path) -> list[dict[str, str]]:
    path = data / "pairs.csv"
    return read_rows(path) if path.is_file() else []


def _pairs(
    data: Path,
    scores: dict[str, tuple[float, ...]],
    read: dict[str, tuple[npt.NDArray[Any], Any]],
    reader: Any,
) -> tuple[list[PairScores], int]:
    """The pairs of ``pairs.csv`` whose two films were read, and how many were not; the
    current film's scores on the prior's grey scale where the reader reads pairs (``read``:
    each paired film's pixels and reading alone, so neither film is read again)."""
    from radloop.models.reference.lungfields import ZONE_ORDER

    path = data / "pairs.csv"
    rows = _pair_rows(data)
    missing = [c for c in PAIR_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise InputError(f"columns {', '.join(PAIR_COLUMNS)}", f"none named {missing}",
                         source=path)  # fmt: skip
    out: list[PairScores] = []
    unread = 0
    for row in rows:
        prior, current = _brixia(row, "prior_brixia_"), _brixia(row, "current_brixia_")
        if prior is None or current is None:
            raise InputError("Brixia scores 0–3 in every zone of a pair", repr(row), source=path)
        before, now = row["prior"].strip(), row["current"].strip()
        a, b = scores.get(before), scores.get(now)
        if a is None or b is None:
            unread += 1
            continue
        if hasattr(reader, "on_scale_of") and before in read and now in read:
            zones = reader.on_scale_of(*read[before], *read[now]).zone_scores()
            b = tuple(float(zones[z]) for z in ZONE_ORDER)
        out.append(PairScores(prior, current, a, b))
    return out, unread


def run_sim2real_benchmark(
    data: Path,
    *,
    reader: FilmReader | None = None,
    drafter: DraftingModel | None = None,
    model_dir: Path | None = None,
    limit: int | None = None,
    threshold: float | None = None,
    tolerance: float = CHANGE_TOLERANCE,
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    keep: int = 0,
) -> Sim2RealResult:
    """Run the bench on the folder ``data`` (see the module docstring)."""
    from tqdm import tqdm

    from radloop.evaluate.datasets import open_dataset
    from radloop.models.reference.lungfields import ZONE_ORDER
    from radloop.report import Presence
    from radloop.vocabulary import Side

    if reader is None:
        reader = load_reader(model_dir)
    if drafter is None:
        from radloop.models.builtin import ReferenceModel, shipped_model_dir

        drafter = ReferenceModel(shipped_model_dir())
    sidecar = getattr(reader, "sidecar", None)
    if threshold is None:
        given = sidecar.get("opacity_threshold") if isinstance(sidecar, dict) else None
        threshold = float(given) if given is not None else DEFAULT_THRESHOLD
    started = time.perf_counter()
    rows = read_rows(data) if (data / "metadata.csv").is_file() else []
    header = set(rows[0]) if rows else set()
    # A site's own column for the projection (hannover-dev calls it "projection").
    options = (
        {"view_column": "projection"} if "projection" in header and "view" not in header else {}
    )
    dataset = open_dataset(f"folder:{data}", **options)
    cases = dataset.cases()[:limit] if limit else dataset.cases()
    result = Sim2RealResult(
        str(data), str(getattr(reader, "version", type(reader).__name__)), threshold,
        films=len(cases),
    )  # fmt: skip
    has_notes = "clinical_notes" in header
    devices = _device_codes()
    films: list[FilmReading] = []
    by_image: dict[str, tuple[float, ...]] = {}
    paired = {r.get(k, "").strip() for r in _pair_rows(data) for k in ("prior", "current")}
    pair_films: dict[str, tuple[npt.NDArray[Any], Any]] = {}
    for case in tqdm(cases, desc="sim2real", unit="film", disable=None if progress else True):
        a = case.attributes
        if a.get("view") not in ("PA", "AP") or a.get("modality") not in RADIOGRAPH:
            result.skipped += 1
            continue
        row = rows[int(case.case_id.split("-", 1)[0])]
        study = dataset.load_study(case)
        images = study.images
        pixels = images[0].pixels
        clock = time.perf_counter()
        reading = reader.read(pixels)
        result.reader_seconds += time.perf_counter() - clock
        clock = time.perf_counter()
        ungated = sum(
            f.code in devices and f.presence is Presence.PRESENT
            for f in drafter.predict_findings(images)
        )
        in_domain = drafter.assess_domain(images).in_domain
        claims = ungated if in_domain else 0  # outside its domain the model abstains
        result.drafting_seconds += time.perf_counter() - clock
        zones, sides = reading.zone_scores(), reading.side_scores()
        lungs = np.asarray(reading.lungs, dtype=bool)
        outline, ignore = _outline(data, row, lungs.shape)
        zone_scores = tuple(float(zones[z]) for z in ZONE_ORDER)
        film = FilmReading(
            image=row["image"].strip(),
            zone_scores=zone_scores,
            side_scores=(float(sides[Side.RIGHT]), float(sides[Side.LEFT])),
            ctr=reading.ctr(),
            brixia=_brixia(row),
            dice=None if outline is None else dice(lungs, outline, ignore),
            outline_errors=None if outline is None else outline_errors(lungs, outline, ignore),
            device_free=_device_free(data, row, has_notes),
            device_claims=int(claims),
            device_claims_ungated=int(ungated),
            in_domain=bool(in_domain),
            fields_in_domain=(
                None if getattr(reading, "domain_distance", None) is None else reading.in_domain
            ),
        )
        films.append(film)
        if film.image in paired:
            pair_films[film.image] = (pixels, reading)
        alike = sum((o.dice is None) == (film.dice is None) for o in result.overlays)
        if alike < keep:  # up to ``keep`` films with an outline and as many without
            result.overlays.append(_overlay(film, pixels, reading, outline))
        by_image[film.image] = zone_scores
    result.frontal = len(films)
    pairs = None
    if (data / "pairs.csv").is_file():
        pairs, result.pairs_unread = _pairs(data, by_image, pair_films, reader)
    result.overlays = sorted(result.overlays, key=lambda o: o.dice is None)[:keep]
    result.figures = dict(
        summary(
            films, pairs, threshold=threshold, tolerance=tolerance, resamples=resamples, seed=seed
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def _ci(figure: dict[str, Any]) -> str:
    low, high = figure.get("ci95", [None, None])
    return "—" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _value(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def format_sim2real(result: Sim2RealResult) -> str:
    """The figures as a readable table."""
    d = result.to_dict()
    films, timing = d["films"], d["timing"]
    lines = [
        f"sim2real on {d['data']}: {films['count']} films, {films['frontal']} frontal read, "
        f"{films['skipped']} skipped (view not PA or AP, or not a radiograph); "
        f"reader {d['reader']}",
        f"  {'figure':34s} {'value':>7}  {'95 % interval':16s}  n",
    ]

    def row(name: str, figure: dict[str, Any], n: str) -> None:
        lines.append(f"  {name:34s} {_value(figure.get('value')):>7}  {_ci(figure):16s}  {n}")

    zone = d["zone_auroc"]
    row("zone_auroc (pooled)", zone, f"{zone['n']} zones of {zone.get('films', 0)} films, "
        f"{zone.get('positives', 0)} positive")  # fmt: skip
    for letter, figure in zone.get("per_zone", {}).items():
        row(f"  zone {letter}", figure, f"{figure['n']} films, {figure['positives']} positive")
    side = d["opacity_side_accuracy"]
    row(f"opacity_side_accuracy (≥ {side['threshold']:g})", side,
        f"{side['hits']}/{side['n']} side claims on {side['films']} films")  # fmt: skip
    dice_ = d["lung_dice"]
    row("lung_dice (mean)", dice_, f"{dice_['n']} films with an outline")
    lines.append(f"  {'  median':34s} {_value(dice_['median']):>7}")
    row("  share ≥ 0.90", dice_["at_least_0_90"],
        f"{dice_['at_least_0_90']['hits']}/{dice_['at_least_0_90']['n']}")  # fmt: skip
    for key, share in (dice_.get("errors") or {}).items():
        name = f"  {key.replace('_', ' ')} (of outline)"
        lines.append(f"  {name:34s} {_value(share):>7}")
    ctr = d["ctr"]
    lines.append(
        f"  {'ctr (median, p5–p95)':34s} {_value(ctr['median']):>7}  "
        f"{_value(ctr['p5'])}–{_value(ctr['p95']):10s}  {ctr['n']} films "
        f"({ctr['undefined']} without a ratio)"
    )
    row("  share > 0.5", ctr["above_0_5"], f"{ctr['above_0_5']['hits']}/{ctr['above_0_5']['n']}")
    change = d["change_zone_accuracy"]
    if change is None:
        lines.append(f"  {'change_zone_accuracy':34s}       —  (no pairs.csv)")
    else:
        row("change_zone_accuracy (moved)", change, f"{change['hits']}/{change['n']} zones of "
            f"{change['pairs']} pairs ({change['pairs_unread']} pairs not read)")  # fmt: skip
        sign = change["sign_only"]
        row("  sign only (never stable)", sign, f"{sign['hits']}/{sign['n']} zones")
        stayed = change["stayed"]
        row(f"  stayed (|Δ| < {stayed['tolerance']:g})", stayed,
            f"{stayed['hits']}/{stayed['n']} zones")  # fmt: skip
    device = d["device_claims_per_film"]
    which = "device-free films" if device["device_free_known"] else "films (device-free unknown)"
    row("device_claims_per_film", device, f"{device['claims']} claims on {device['films']} {which}")
    raw = d["device_claims_ungated_per_film"]
    row("  without the domain check", raw, f"{raw['claims']} claims the network would make")
    domain = d["in_domain_share"]
    row("in_domain_share", domain, f"{domain['hits']}/{domain['n']} films")
    if domain.get("lung_fields"):
        own = domain["lung_fields"]
        row("  lung-fields network's own", own, f"{own['hits']}/{own['n']} films")
    lines.append(
        f"  {timing['seconds']} s; per film {timing['seconds_per_film']} s (reader "
        f"{timing['reader_seconds_per_film']} s, drafting model "
        f"{timing['drafting_seconds_per_film']} s)"
    )
    return "\n".join(lines)


@click.command("sim2real")
@FOLDER_OPTION
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Read with the lung-fields network in this folder (radloop train-lungfields --out).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N films.")
@click.option(
    "--opacity-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Side score at which the reading claims opacity (default: the network's, else 0.5).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    default=CHANGE_TOLERANCE,
    show_default=True,
    help="How far a zone score must move between prior and current for compare to state "
    "it increased or decreased (else stable); written into the domain file.",
)
@click.option("--resamples", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Film bootstrap resamples.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--write-domain",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Write DIR/realfilm-domain.json: per finding type, these figures against its bars and "
    "whether it enters the built-in model's real-film domain (DIR: the model's folder).",
)
@click.option(
    "--overlays",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw 12 films (those with an outline first) with their lung fields, heart and "
    "the annotator's outline into this PNG.",
)
def bench_sim2real(
    data: Path,
    model_dir: Path | None,
    limit: int | None,
    opacity_threshold: float | None,
    tolerance: float,
    resamples: int,
    seed: int,
    as_json: bool,
    write_domain: Path | None,
    overlays: Path | None,
) -> None:
    """How the lung-fields network, trained on synthetic films, reads real ones."""
    result = run_sim2real_benchmark(
        data, model_dir=model_dir, limit=limit, threshold=opacity_threshold,
        tolerance=tolerance, resamples=resamples, seed=seed, keep=12 if overlays else 0,
    )  # fmt: skip
    if overlays is not None and result.overlays:
        from radloop.lab.bench.sim2real_figure import write_overlays

        title = f"{result.reader} on {data.name}: lungs (red, green), heart (blue), outline (white)"
        write_overlays(result.overlays, overlays, title=title)
        click.echo(f"wrote {overlays}: {len(result.overlays)} films", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(format_sim2real(result))
    if write_domain is not None:
        from radloop.models.reference.realfilm import REALFILM_DOMAIN, declare_domain

        declared = declare_domain(
            result.to_dict(),
            collection=data.name,
            opacity_threshold=result.threshold,
            change_tolerance=tolerance,
        )
        (write_domain / REALFILM_DOMAIN).write_text(json.dumps(declared, indent=2) + "\n")
        admitted = ", ".join(declared["findings"]) or "no finding type"
        click.echo(f"wrote {write_domain / REALFILM_DOMAIN}: {admitted} in the real-film domain",
                   err=True)  # fmt: skip
