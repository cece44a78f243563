"""The figures of ``radloop bench sim2real``, computed from per-film readings.

Each function takes the films' readings (:class:`FilmReading`) and returns one figure as a
dict with ``value``, ``n`` and ``ci95`` (a 95 % interval: the film bootstrap of
:mod:`radloop.stats` for means and AUROCs, Wilson for shares). Definitions are in the
docstring of :mod:`radloop.lab.bench.sim2real`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.stats import (
    FloatArray,
    bootstrap_interval,
    bootstrap_weights,
    counted_share,
    weighted_auroc,
)

__all__ = [
    "BRIXIA_LETTERS",
    "FilmReading",
    "PairScores",
    "change_zone_accuracy",
    "ctr_distribution",
    "device_claims",
    "dice",
    "in_domain_share",
    "lung_dice",
    "opacity_side_accuracy",
    "outline_errors",
    "summary",
    "zone_auroc",
]

BRIXIA_LETTERS = ("A", "B", "C", "D", "E", "F")
"""Brixia zones in ``ZONE_ORDER``: A–C the right lung upper to lower, D–F the left."""
_RIGHT, _LEFT = slice(0, 3), slice(3, 6)


@dataclass(frozen=True)
class FilmReading:
    """What the bench keeps of one frontal film.

    ``zone_scores``: the reading's six zone scores in ``ZONE_ORDER`` (NaN for an empty zone);
    ``side_scores``: (right, left); ``brixia``: the six Brixia scores, or None when the film
    carries none; ``dice``: against the annotators' outline, or None without one, and
    ``outline_errors`` where they differ (:func:`outline_errors`);
    ``device_free``: the film's notes and masks show no device (None: cannot be told);
    ``device_claims``: devices the drafting model stated present; ``in_domain``: its domain
    check's answer.
    """

    image: str
    zone_scores: tuple[float, ...]
    side_scores: tuple[float, float]
    ctr: float | None
    brixia: tuple[float, ...] | None = None
    dice: float | None = None
    outline_errors: dict[str, float] | None = None
    device_free: bool | None = None
    device_claims: int = 0
    device_claims_ungated: int = 0
    in_domain: bool = False
    fields_in_domain: bool | None = None


@dataclass(frozen=True)
class PairScores:
    """One prior/current pair's Brixia scores and the readings' zone scores (ZONE_ORDER)."""

    prior_brixia: tuple[float, ...]
    current_brixia: tuple[float, ...]
    prior_scores: tuple[float, ...]
    current_scores: tuple[float, ...]


def _r(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _boot(values: FloatArray, n: int) -> dict[str, Any]:
    """A bootstrap row vector as ``value``, ``ci95`` and ``n``."""
    figure = bootstrap_interval(values)
    return {
        "value": _r(figure["value"]),
        "ci95": [_r(figure["low"]), _r(figure["high"])],
        "n": n,
    }


def _share(hits: int, n: int) -> dict[str, Any]:
    counted = counted_share(hits, n)
    ci = [None if math.isnan(v) else v for v in counted["ci95"]]
    return {**counted, "ci95": ci, "value": round(hits / n, 4) if n else None}


def _mean_boot(values: Sequence[float], resamples: int, seed: int) -> dict[str, Any]:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    weights = bootstrap_weights(x.size, resamples, seed)
    return _boot(weights @ x / weights.sum(axis=1), int(x.size))


def zone_auroc(
    films: Sequence[FilmReading], *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Pooled AUROC over (film, zone) pairs of films with Brixia scores (label: score > 0),
    resampling films; and the AUROC of each zone A–F. An empty zone scores 0."""
    scored = [f for f in films if f.brixia is not None]
    n = len(scored)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0, "films": 0, "positives": 0,
                "per_zone": {}}  # fmt: skip
    labels = np.array([[b > 0 for b in f.brixia or ()] for f in scored], dtype=bool)
    scores = np.nan_to_num(np.array([f.zone_scores for f in scored], dtype=np.float64), nan=0.0)
    weights = bootstrap_weights(n, resamples, seed)
    pooled = weighted_auroc(np.repeat(weights, 6, axis=1), labels.ravel(), scores.ravel())
    out = _boot(pooled, labels.size)
    out.update(films=n, positives=int(labels.sum()), empty_zones=int(
        np.isnan(np.array([f.zone_scores for f in scored], dtype=np.float64)).sum()))  # fmt: skip
    per_zone: dict[str, Any] = {}
    for k, letter in enumerate(BRIXIA_LETTERS):
        figure = _boot(weighted_auroc(weights, labels[:, k], scores[:, k]), n)
        per_zone[letter] = {**figure, "positives": int(labels[:, k].sum())}
    out["per_zone"] = per_zone
    return out


def opacity_side_accuracy(films: Sequence[FilmReading], threshold: float) -> dict[str, Any]:
    """Side claims (side score ≥ threshold) on films with at least one Brixia zone > 0; a
    claim is a hit when that side has a zone > 0."""
    hits = claims = considered = 0
    for film in films:
        if film.brixia is None or not any(b > 0 for b in film.brixia):
            continue
        considered += 1
        for score, zones in zip(film.side_scores, (_RIGHT, _LEFT), strict=True):
            if not math.isnan(score) and score >= threshold:
                claims += 1
                hits += any(b > 0 for b in film.brixia[zones])
    return {**_share(hits, claims), "films": considered, "threshold": threshold}


def dice(
    predicted: npt.NDArray[np.bool_],
    outline: npt.NDArray[np.bool_],
    ignore: npt.NDArray[np.bool_] | None = None,
) -> float:
    """Dice of two masks over the pixels not under ``ignore`` (1.0 when both are empty)."""
    keep = ~ignore if ignore is not None else np.ones(predicted.shape, dtype=bool)
    a, b = predicted & keep, outline & keep
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


OUTLINE_ERRORS = ("missed", "drawn_between", "drawn_beside", "drawn_above", "drawn_below")


def outline_errors(
    predicted: npt.NDArray[np.bool_],
    outline: npt.NDArray[np.bool_],
    ignore: npt.NDArray[np.bool_] | None = None,
) -> dict[str, float]:
    """Where a reading's lung fields differ from an outline, each as a share of the outline's
    area (pixels under ``ignore`` left out): ``missed``, outlined and not drawn; and drawn
    where not outlined, ``drawn_between`` the outline's leftmost and rightmost pixel of the
    same row (the mediastinum, the gap between the lungs), ``drawn_beside`` outside them,
    ``drawn_above`` and ``drawn_below`` the outline's first and last row."""
    keep = ~ignore if ignore is not None else np.ones(predicted.shape, dtype=bool)
    a, b = predicted & keep, outline & keep
    area = int(b.sum())
    if area == 0:
        return dict.fromkeys(OUTLINE_ERRORS, float("nan"))
    extra = a & ~b
    rows = np.flatnonzero(b.any(axis=1))
    columns = np.arange(b.shape[1])
    first = np.where(b.any(axis=1), b.argmax(axis=1), b.shape[1])
    last = np.where(b.any(axis=1), b.shape[1] - 1 - b[:, ::-1].argmax(axis=1), -1)
    span = (columns[None, :] >= first[:, None]) & (columns[None, :] <= last[:, None])
    within = np.zeros(b.shape[0], dtype=bool)
    within[rows[0] : rows[-1] + 1] = True
    return {
        "missed": float((b & ~a).sum()) / area,
        "drawn_between": float((extra & span).sum()) / area,
        "drawn_beside": float((extra & ~span & within[:, None]).sum()) / area,
        "drawn_above": float(extra[: rows[0]].sum()) / area,
        "drawn_below": float(extra[rows[-1] + 1 :].sum()) / area,
    }


def lung_dice(
    films: Sequence[FilmReading], *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean Dice over films with an outline (film bootstrap), the median and share ≥ 0.90,
    and ``errors``: the mean of each film's :func:`outline_errors`."""
    values = [f.dice for f in films if f.dice is not None]
    out = _mean_boot(values, resamples, seed)
    out["median"] = _r(float(np.median(values))) if values else None
    out["at_least_0_90"] = _share(sum(v >= 0.90 for v in values), len(values))
    errors = [f.outline_errors for f in films if f.outline_errors is not None]
    out["errors"] = {
        key: _r(float(np.nanmean([e[key] for e in errors]))) if errors else None
        for key in OUTLINE_ERRORS
    }
    return out


def ctr_distribution(films: Sequence[FilmReading]) -> dict[str, Any]:
    """The readings' cardiothoracic ratios: n, median, p5, p95 and the share above 0.5."""
    values = np.array([f.ctr for f in films if f.ctr is not None], dtype=np.float64)
    if values.size == 0:
        return {"n": 0, "undefined": len(films), "median": None, "p5": None, "p95": None,
                "above_0_5": _share(0, 0)}  # fmt: skip
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {
        "n": int(values.size),
        "undefined": len(films) - int(values.size),
        "median": _r(median),
        "p5": _r(p5),
        "p95": _r(p95),
        "above_0_5": _share(int((values > 0.5).sum()), int(values.size)),
    }


def change_zone_accuracy(pairs: Sequence[PairScores], tolerance: float) -> dict[str, Any]:
    """What ``compare`` states per zone (:func:`~radloop.models.reference.realfilm.zone_direction`:
    increased or decreased past ``tolerance``, else stable) against the Brixia score's change.

    On zones whose score moved, a hit when the stated direction is the score's (a zone stated
    stable is a miss); on zones that stayed, a hit when it is stated stable. ``sign_only``:
    the sign of the zone score's change on moved zones with no tolerance (what a reader that
    never says stable would get).
    """
    from radloop.models.reference.realfilm import zone_direction
    from radloop.report import Change

    moved_hits = moved = stayed_hits = stayed = sign_hits = 0
    for pair in pairs:
        for k in range(6):
            truth = pair.current_brixia[k] - pair.prior_brixia[k]
            before, now = pair.prior_scores[k], pair.current_scores[k]
            read = not (math.isnan(before) or math.isnan(now))  # no reading: a miss
            stated = zone_direction(before, now, tolerance) if read else None
            if truth != 0:
                moved += 1
                wanted = Change.INCREASED if truth > 0 else Change.DECREASED
                moved_hits += stated is wanted
                sign_hits += bool(read and np.sign(now - before) == np.sign(truth))
            else:
                stayed += 1
                stayed_hits += stated is Change.STABLE
    return {
        **_share(moved_hits, moved),
        "pairs": len(pairs),
        "tolerance": tolerance,
        "sign_only": _share(sign_hits, moved),
        "stayed": {**_share(stayed_hits, stayed), "tolerance": tolerance},
    }


def device_claims(
    films: Sequence[FilmReading], *, resamples: int = 1000, seed: int = 0, gated: bool = True
) -> dict[str, Any]:
    """Device findings stated present per device-free film (film bootstrap).

    ``gated``: what the model states (nothing on a film outside its domain, where it
    abstains); else what its network would call with no domain check.
    Where no film's device status can be told (no notes), every film is counted and the
    figure says so (``device_free_known`` false).
    """
    known = any(f.device_free is not None for f in films)
    counted = [f for f in films if f.device_free] if known else list(films)
    claims = [f.device_claims if gated else f.device_claims_ungated for f in counted]
    out = _mean_boot([float(c) for c in claims], resamples, seed)
    out.update(claims=int(sum(claims)), films=len(counted), device_free_known=known)
    if not known:
        out["note"] = (
            "the films carry no clinical notes, so the device-free films cannot be told: "
            "all films are counted"
        )
    return out


def in_domain_share(films: Sequence[FilmReading]) -> dict[str, Any]:
    """The share of films the drafting model's domain check places in its domain, and the
    share the lung-fields network's own reference does (where the reader has one)."""
    out = _share(sum(f.in_domain for f in films), len(films))
    known = [f for f in films if f.fields_in_domain is not None]
    out["lung_fields"] = (
        _share(sum(bool(f.fields_in_domain) for f in known), len(known)) if known else None
    )
    return out


def summary(
    films: Sequence[FilmReading],
    pairs: Sequence[PairScores] | None,
    *,
    threshold: float,
    tolerance: float,
    resamples: int,
    seed: int,
) -> Mapping[str, Any]:
    """Every figure of the bench, keyed as in its JSON."""
    return {
        "zone_auroc": zone_auroc(films, resamples=resamples, seed=seed),
        "opacity_side_accuracy": opacity_side_accuracy(films, threshold),
        "lung_dice": lung_dice(films, resamples=resamples, seed=seed),
        "ctr": ctr_distribution(films),
        "change_zone_accuracy": None if pairs is None else change_zone_accuracy(pairs, tolerance),
        "device_claims_per_film": device_claims(films, resamples=resamples, seed=seed),
        "device_claims_ungated_per_film": device_claims(
            films, resamples=resamples, seed=seed, gated=False
        ),
        "in_domain_share": in_domain_share(films),
    }
