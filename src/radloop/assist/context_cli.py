"""``radloop context from-csv`` and ``radloop context show``; the context options of ``radloop
draft`` (:func:`context_for_path`).

``from-csv`` turns a CSV of per-film laboratory values in the hannover-dev layout into one FHIR
Bundle per film (Observations with LOINC codes, dated relative to the film: see
:mod:`radloop.context.labcsv`). ``show`` prints the clinical context section a model would be
given for a study, with its Bundles, so a reader can see it before drafting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from radloop.study import ContextItem, Study

__all__ = ["context", "context_for_path", "row_for_image"]


def row_for_image(rows: Sequence[dict[str, str]], root: Path, image: Path) -> dict[str, str] | None:
    """The CSV row of ``image``: its ``image`` column names it (relative to ``root``, the
    CSV's folder), or its ``image_id`` is the file's stem."""
    target = image.resolve()
    for row in rows:
        named = (row.get("image") or "").strip()
        if named and (root / named).resolve() == target:
            return row
    return next((r for r in rows if (r.get("image_id") or "").strip() == image.stem), None)


def context_for_path(
    study: Study,
    path: Path,
    *,
    bundles: Sequence[Path] = (),
    context_csv: Path | None = None,
) -> tuple[Study, tuple[str, ...]]:
    """``study`` (read from ``path``) with its clinical context, and notes on what could not
    be used: the FHIR Bundles given (and those lying beside ``path``), and its row of
    ``context_csv`` (the hannover-dev layout). A Bundle given by name that cannot be read is an
    error; one found beside is a note."""
    from radloop.context.fhir import read_bundle
    from radloop.context.gather import bundles_beside, gather_context, with_items
    from radloop.context.labcsv import items_for_row, read_rows
    from radloop.errors import InputError

    film = study.metadata.study_date
    items: list[ContextItem] = []
    for bundle in bundles:
        items += read_bundle(bundle, film_date=film, study_uid=study.study_instance_uid).items
    given = {p.resolve() for p in bundles}
    folder = path if path.is_dir() else path.parent
    beside = bundles_beside([folder / "study"])
    found = [(n, d) for n, d in beside if (folder / n).resolve() not in given]
    gathered = gather_context(with_items(study, items), bundles=found)
    if context_csv is not None:
        rows = read_rows(context_csv)
        root = context_csv if context_csv.is_dir() else context_csv.parent
        image = path if path.is_file() else next(iter(sorted(path.glob("*.png"))), path)
        row = row_for_image(rows, root, image)
        if row is None:
            raise InputError(
                f"a row for {image.name} in {context_csv}",
                "none",
                source=context_csv,
                fix="Name the film by its image column or its image_id.",
            )
        csv_name = context_csv.name if context_csv.is_file() else f"{context_csv.name}/metadata.csv"
        return with_items(gathered.study, items_for_row(row, source=csv_name)), gathered.notes
    return gathered.study, gathered.notes


@click.group()
def context() -> None:
    """Clinical context for the model: lab values as FHIR, and what a prompt is given."""


@context.command("from-csv")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one Bundle per film, <image_id>.json, into this folder.",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="ID",
    help="Only these films (image_id or image path), repeatable.",
)
@click.option(
    "--no-condition",
    is_flag=True,
    help="Leave out the COVID-19 Condition the collection implies for every patient.",
)
def from_csv(source: Path, out: Path | None, images: tuple[str, ...], no_condition: bool) -> None:
    """Turn per-film lab values (the hannover-dev layout: a metadata.csv, or the folder
    holding it) into FHIR R4 Bundles: Observations with LOINC codes and UCUM units, dated
    relative to each film. Without --out, one film's Bundle is printed."""
    from radloop.context.labcsv import bundle_for_row, has_lab_columns, read_rows
    from radloop.errors import InputError

    rows = read_rows(source)
    if not rows or not has_lab_columns(rows[0]):
        raise InputError(
            "a CSV with <test>_val and <test>_offset columns (hannover-dev)",
            "none of them",
            source=source,
        )
    wanted = set(images)
    chosen = [
        r
        for r in rows
        if not wanted or (r.get("image_id") or "") in wanted or (r.get("image") or "") in wanted
    ]
    if not chosen:
        raise InputError(f"rows for {', '.join(sorted(wanted))}", "none", source=source)
    bundles = [bundle_for_row(r, condition=not no_condition) for r in chosen]
    if out is None:
        if len(bundles) != 1:
            raise click.UsageError("Give --out DIR, or one --image to print its Bundle.")
        click.echo(json.dumps(bundles[0], indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for row, bundle in zip(chosen, bundles, strict=True):
        name = (row.get("image_id") or Path(row.get("image") or "film").stem).strip()
        (out / f"{name}.json").write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    click.echo(f"Wrote {len(bundles)} FHIR Bundles to {out}.")


@context.command("show")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--context",
    "bundles",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A FHIR Bundle (JSON) of the patient's lab values and conditions, repeatable.",
)
@click.option(
    "--context-csv",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Per-film lab values in the hannover-dev layout (metadata.csv or its folder).",
)
@click.option("--history", default=None, help="Clinical history given with the request.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=100),
    default=None,
    help="The characters the context items may take (default 2000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show(
    path: Path,
    bundles: tuple[Path, ...],
    context_csv: Path | None,
    history: str | None,
    max_chars: int | None,
    as_json: bool,
) -> None:
    """Print the clinical context a drafting model would be given for the study at PATH."""
    from radloop.assist.prompts import DEFAULT_MAX_CHARS, context_section
    from radloop.study import load_study

    study, notes = context_for_path(
        load_study(path), path, bundles=bundles, context_csv=context_csv
    )
    section = context_section(study, history=history, max_chars=max_chars or DEFAULT_MAX_CHARS)
    if as_json:
        click.echo(json.dumps(section.record() | {"notes": list(notes)}))
        return
    click.echo(section.text.rstrip() or "(no clinical context)")
    for dropped in section.items.dropped:
        click.secho(f"not given: {dropped.item.text[:80]} ({dropped.reason})", fg="yellow")
    for note in notes:
        click.secho(f"note: {note}", fg="yellow")
