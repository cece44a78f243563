"""``compare(current, prior)``: what changed between two studies.

An MLLM sees both studies' images in one request and says what changed; the reply is read as
the requested JSON or, failing that, by the report parser (which reads "new", "increased",
"resolved" ...). A ``FindingsPredictor`` (the reference model) is run on each study and its two
structured outputs are compared by presence, size and extent (:func:`diff_findings`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from radloop.assist.domain import abstention
from radloop.assist.prompts import COMPARE_VERSION, SYSTEM, compare_prompt
from radloop.assist.schema import changes_schema, extract_json
from radloop.assist.types import Change, Comparison, OutputMode
from radloop.models import (
    ExtentPredictor,
    FindingsPredictor,
    LocalPredictor,
    VisionLanguageModel,
    ZoneChange,
    ZoneChangePredictor,
)
from radloop.report import Change as Direction
from radloop.report import Finding, parse
from radloop.report.measure import extent_change, extent_min_ratio, format_mm
from radloop.study import Study
from radloop.vocabulary import Side, lookup_term, sized_codes

__all__ = [
    "GROWTH_MIN_MM",
    "GROWTH_MIN_RATIO",
    "LOOK_BACK_MIN",
    "compare",
    "diff_findings",
    "predicted_changes",
    "zone_change",
]

# Two sizes differ when they differ by both 2 mm (the smallest change the Fleischner Society
# 2017 guideline treats as real growth) and 20 % (measurement variability on radiographs).
GROWTH_MIN_MM = 2.0
GROWTH_MIN_RATIO = 0.2

# Look-back: a finding reported on one study only is read as grown from (or shrunk to) a
# smaller one when the other study shows it at the same place at this share of the strength
# at which the model reports it (``LocalPredictor``); within one cell of the field's grid.
LOOK_BACK_MIN = 0.5
_LOOK_BACK_CELLS = 1
# What grows and shrinks (the vocabulary's sized findings); devices are placed or removed and
# fractures come or go.
_LOOK_BACK_CODES = sized_codes()


def compare(
    current: Study,
    prior: Study,
    model: VisionLanguageModel | FindingsPredictor,
    *,
    history: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 768,
    output: str = "auto",
) -> Comparison:
    """The changes from ``prior`` to ``current``, one per finding that changed or stayed."""
    if isinstance(model, FindingsPredictor):
        start = time.perf_counter()
        outside = abstention(model, current.images) or abstention(model, prior.images)
        # Outside its validated domain the model abstains: no change is stated.
        stated = () if outside else tuple(predicted_changes(model, current, prior))
        return Comparison(
            changes=stated,
            current_uid=current.study_instance_uid,
            prior_uid=prior.study_instance_uid,
            generations=(),
            prompt="",
            prompt_version=COMPARE_VERSION,
            model_id=model.model_id,
            latency_s=time.perf_counter() - start,
            output_mode=OutputMode.STRUCTURED,
            warnings=(f"the model abstains: {outside.reason}",) if outside else (),
        )
    structured = output == "json" or (output == "auto" and model.supports_json_schema)
    prompt = compare_prompt(current, prior, history=history, structured=structured)

    generations = model.generate(
        [*current.images, *prior.images],
        prompt,
        temperature=temperature,
        max_tokens=max_tokens,
        system=SYSTEM,
        json_schema=changes_schema() if structured else None,
    )
    reply = generations[0].text if generations else ""
    warnings: list[str] = []
    changes = _changes_from_json(reply, warnings)
    mode = OutputMode.JSON
    if changes is None:
        if structured:
            warnings.append("the reply was not the requested JSON; read it as free text")
        changes = _changes_from_text(reply)
        mode = OutputMode.TEXT
    return Comparison(
        changes=tuple(changes),
        current_uid=current.study_instance_uid,
        prior_uid=prior.study_instance_uid,
        generations=tuple(generations),
        prompt=prompt,
        prompt_version=COMPARE_VERSION,
        model_id=model.model_id,
        latency_s=max((g.latency_s for g in generations), default=0.0),
        output_mode=mode,
        warnings=tuple(warnings),
    )


def predicted_changes(
    model: FindingsPredictor,
    current: Study,
    prior: Study,
    *,
    now: Iterable[Finding] | None = None,
) -> list[Change]:
    """:func:`diff_findings` of ``model``'s readings of both studies (``now``: its findings
    on ``current`` when already at hand), with its extents (``ExtentPredictor``) and where
    each finding shows (``LocalPredictor``) when it has them. ``compare`` and ``draft`` with a
    prior both use it, so a draft states the changes ``compare`` reports."""

    def read(study: Study, given: Iterable[Finding] | None = None) -> tuple[Any, ...]:
        # One study at a time: a model that caches its last reading reads each image once.
        found = tuple(model.predict_findings(study.images) if given is None else given)
        extent = model.predict_extents(study.images) if isinstance(model, ExtentPredictor) else None
        where = model.predict_local(study.images) if isinstance(model, LocalPredictor) else None
        return found, extent, where

    found_now, extent_now, local_now = read(current, now)
    found_before, extent_before, local_before = read(prior)
    extents = None if extent_now is None or extent_before is None else (extent_now, extent_before)
    local = None if local_now is None or local_before is None else (local_now, local_before)
    changes = diff_findings(found_now, found_before, extents=extents, local=local)
    zones = (
        model.predict_zone_changes(current.images, prior.images)
        if isinstance(model, ZoneChangePredictor)
        else None
    )
    if zones is None:
        return changes
    # What the model reads zone by zone is stated per zone, not per finding.
    by_zone = {z.code for z in zones}
    return [c for c in changes if c.code not in by_zone] + [zone_change(z) for z in zones]


def zone_change(change: ZoneChange) -> Change:
    """One zone's change as a :class:`Change` (the zone and both scores in its details)."""
    zone = change.zone
    return Change(
        change.code,
        change.direction,
        f"{zone.label} (Brixia {zone.brixia}): opacity score {change.prior:.2f} on the prior, "
        f"{change.current:.2f} now",
        zone.side,
    )


def _changes_from_json(reply: str, warnings: list[str]) -> list[Change] | None:
    data = extract_json(reply)
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        return None
    changes = []
    for index, item in enumerate(data["changes"]):
        where = f"changes[{index}]"
        if not isinstance(item, dict):
            warnings.append(f"{where}: expected an object, got {type(item).__name__}; skipped")
            continue
        code = item.get("code")
        entry = lookup_term(str(code).replace("_", " ")) if isinstance(code, str) else None
        try:
            direction = Direction(str(item.get("direction", "")).strip().lower())
        except ValueError:
            direction = None
        if entry is None or direction is None:
            warnings.append(
                f"{where}: expected a vocabulary code and a direction (new, increased, "
                f"decreased, stable, resolved), got {code!r} and {item.get('direction')!r}; "
                "skipped"
            )
            continue
        side_value = item.get("side")
        side = Side(side_value) if side_value in {s.value for s in Side} else None
        details = item.get("details")
        changes.append(
            Change(entry.code, direction, details if isinstance(details, str) else "", side)
        )
    return changes


def _changes_from_text(reply: str) -> list[Change]:
    return [
        Change(
            found.code,
            found.change,
            found.evidence.text if found.evidence else "",
            found.side,
            current=found if found.is_positive else None,
        )
        for found in parse(reply)
        if found.change is not None
    ]


def _key(found: Finding) -> tuple[str, Side | None]:
    return found.code, found.side


# A nodule and a mass are one lesion at two sizes (a mass is a nodule larger than 3 cm): a
# nodule on the prior that is a mass now has grown, and the change is named after the mass.
_LESION_FAMILY = {"nodule": "lesion", "mass": "lesion"}


def _family(code: str) -> str:
    return _LESION_FAMILY.get(code, code)


def _same_place(a: Finding, b: Finding) -> bool:
    """Whether two findings may be one: they share a lung zone, or either has none."""
    return not a.zones or not b.zones or bool(set(a.zones) & set(b.zones))


def diff_findings(
    current: Iterable[Finding],
    prior: Iterable[Finding],
    *,
    extents: tuple[Mapping[str, float], Mapping[str, float]] | None = None,
    local: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> list[Change]:
    """Changes between two structured outputs, by finding code and side.

    Findings are paired by code and side, then (what is left) by code where the two share a
    lung zone or either has none (the side read wrong), then nodule with mass where they share
    a zone (one lesion that crossed 3 cm; the change is named ``mass``). A fracture in the left
    lower zone before and one in the right lower zone now are two fractures, one resolved and
    one new, not one that stayed. Present now but not before is new; present before but not
    now is resolved. Paired findings: when the model measured the extent on both studies
    (``extents``: current, prior; see ``ExtentPredictor``), the ratio decides
    (``report.measure.extent_change``); otherwise increased or decreased when the size (see
    ``GROWTH_MIN_MM``), the severity or the number of lung zones changed, else stable. With
    ``local`` (current, prior; see
    ``LocalPredictor``), a finding that grows and shrinks and is reported on one study only
    is looked for on the other where it peaks: at ``LOOK_BACK_MIN`` of its reporting
    strength or more, it is increased (decreased) rather than new (resolved).
    """
    now = [f for f in current if f.is_positive]
    before = [f for f in prior if f.is_positive]
    pairs: list[tuple[Finding, Finding]] = []
    rules: tuple[Callable[[Finding, Finding], bool], ...] = (
        lambda a, b: _key(a) == _key(b),
        lambda a, b: a.code == b.code and _same_place(a, b),
        lambda a, b: _family(a.code) == _family(b.code) and _same_place(a, b),
    )
    for same in rules:
        for found in list(now):
            old = next((o for o in before if same(found, o)), None)
            if old is not None:
                pairs.append((found, old))
                now.remove(found)
                before.remove(old)
    changes = []
    for found, old in pairs:
        code = found.code if found.code == old.code else "mass"
        measured = _measured(found.code, extents) if found.code == old.code else None
        direction, details = (
            _direction(found, old)
            if measured is None
            else _extent_direction(*measured, extent_min_ratio(found.code))
        )
        if found.code != old.code and direction is Direction.STABLE:
            # The size crossed 3 cm even where the two measurements are close.
            direction = Direction.INCREASED if found.code == "mass" else Direction.DECREASED
        changes.append(Change(code, direction, details, found.side, found, old))
    for found in now:
        seen = _look_back(found.code, local, where=0)
        if seen is None:
            changes.append(
                Change(found.code, Direction.NEW, "not on the prior study", found.side, found)
            )
        else:
            details = f"smaller on the prior: {seen:.2f} of the reporting strength at its place"
            changes.append(Change(found.code, Direction.INCREASED, details, found.side, found))
    for old in before:
        seen = _look_back(old.code, local, where=1)
        if seen is None:
            details = "not on the current study"
            changes.append(Change(old.code, Direction.RESOLVED, details, old.side, None, old))
        else:
            details = f"smaller now: {seen:.2f} of the reporting strength at its place"
            changes.append(Change(old.code, Direction.DECREASED, details, old.side, None, old))
    return changes


def _look_back(
    code: str, local: tuple[Mapping[str, Any], Mapping[str, Any]] | None, *, where: int
) -> float | None:
    """The other study's strength (1.0 = reportable) within one cell of where ``code`` peaks
    on study ``where`` (0 current, 1 prior), which reports it, when at least
    ``LOOK_BACK_MIN``; else None."""
    if local is None or code not in _LOOK_BACK_CODES:
        return None
    here, there = local[where].get(code), local[1 - where].get(code)
    if here is None or there is None or np.shape(here) != np.shape(there):
        return None
    here, there = np.asarray(here), np.asarray(there)
    row, col = np.unravel_index(int(np.argmax(here)), here.shape)
    k = _LOOK_BACK_CELLS
    seen = float(there[max(0, row - k) : row + k + 1, max(0, col - k) : col + k + 1].max())
    return seen if seen >= LOOK_BACK_MIN else None


def _measured(
    code: str, extents: tuple[Mapping[str, float], Mapping[str, float]] | None
) -> tuple[float, float] | None:
    if extents is None or code not in extents[0] or code not in extents[1]:
        return None
    return extents[0][code], extents[1][code]


def _extent_direction(now: float, before: float, min_ratio: float) -> tuple[Direction, str]:
    details = f"extent {before:.3g} → {now:.3g} (×{now / before:.2f})"
    return Direction(extent_change(before, now, min_ratio=min_ratio)), details


def _direction(now: Finding, before: Finding) -> tuple[Direction, str]:
    if now.size_mm is not None and before.size_mm is not None:
        delta = now.size_mm - before.size_mm
        details = f"{format_mm(before.size_mm)} → {format_mm(now.size_mm)} mm"
        if abs(delta) >= GROWTH_MIN_MM and abs(delta) >= GROWTH_MIN_RATIO * before.size_mm:
            return (Direction.INCREASED if delta > 0 else Direction.DECREASED), details
        return Direction.STABLE, details
    if now.severity is not None and before.severity is not None and now.severity != before.severity:
        order = list(type(now.severity))
        grew = order.index(now.severity) > order.index(before.severity)
        details = f"{before.severity.value} → {now.severity.value}"
        return (Direction.INCREASED if grew else Direction.DECREASED), details
    if now.zones and before.zones and len(now.zones) != len(before.zones):
        details = f"{len(before.zones)} → {len(now.zones)} lung zones"
        grew = len(now.zones) > len(before.zones)
        return (Direction.INCREASED if grew else Direction.DECREASED), details
    return Direction.STABLE, ""
