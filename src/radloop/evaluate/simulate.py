"""Simulated cases and predictions for timing and testing the scorers without inference.

The cases look like the synthetic lab's (its ten finding types with their prevalences, sides,
zones, sizes, four site profiles, demographics); the predictions like a model's (scores that
separate the classes imperfectly, drafts from thresholded scores with some wrong sides and
sizes, a safety layer that flags a share of the wrong claims). They exercise every scorer;
they say nothing about any real model.
"""

from __future__ import annotations

import numpy as np

from radloop.evaluate.types import Case, Lesion, Prediction
from radloop.report import Finding, Presence, Verdict
from radloop.report.types import Severity
from radloop.stats import sigmoid
from radloop.vocabulary import Side, Zone

__all__ = ["PREVALENCE", "simulate_run"]

PREVALENCE = {
    "nodule": 0.12,
    "mass": 0.04,
    "consolidation": 0.15,
    "pleural_effusion": 0.15,
    "pneumothorax": 0.08,
    "cardiomegaly": 0.12,
    "edema": 0.08,
    "endotracheal_tube": 0.1,
    "central_venous_catheter": 0.1,
    "rib_fracture": 0.03,
}
_ZONED = ("nodule", "mass", "consolidation", "pleural_effusion", "pneumothorax", "rib_fracture")
_RIGHT = (Zone.RIGHT_UPPER, Zone.RIGHT_MIDDLE, Zone.RIGHT_LOWER)
_LEFT = (Zone.LEFT_UPPER, Zone.LEFT_MIDDLE, Zone.LEFT_LOWER)
SITES = ("standard", "portable", "community", "enhanced")


def _truth(rng: np.random.Generator, code: str) -> Finding:
    side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    if code in ("cardiomegaly", "endotracheal_tube", "central_venous_catheter"):
        tip = float(rng.uniform(10, 90)) if code == "endotracheal_tube" else None
        return Finding(code, tip_distance_mm=tip, tip_reference="carina" if tip else None)
    if code == "edema":
        return Finding(code, side=Side.BILATERAL, zones=tuple(Zone))
    zones = _RIGHT if side is Side.RIGHT else _LEFT
    zone = (zones[int(rng.integers(3))],)
    size = {
        "nodule": rng.uniform(6, 26),
        "mass": rng.uniform(32, 55),
        "pneumothorax": rng.uniform(8, 35),
    }.get(code)
    severity = None
    if code == "pleural_effusion":
        severity = Severity.LARGE if rng.random() < 0.2 else Severity.SMALL
    return Finding(
        code,
        side=side,
        zones=zone,
        size_mm=round(float(size), 1) if size else None,
        severity=severity,
    )


def _claim(rng: np.random.Generator, truth: Finding | None, code: str, p: float) -> Finding:
    if truth is None:
        made_up = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
        where = (_RIGHT if made_up is Side.RIGHT else _LEFT)[:1] if code in _ZONED else ()
        return Finding(code, side=made_up if code in _ZONED else None, zones=where, probability=p)
    side: Side | None = truth.side
    zones: tuple[Zone, ...] = truth.zones
    if side in (Side.RIGHT, Side.LEFT) and rng.random() < 0.08:
        side = Side.LEFT if side is Side.RIGHT else Side.RIGHT
        zones = tuple((_LEFT if side is Side.LEFT else _RIGHT)[:1])
    size = truth.size_mm * float(rng.uniform(0.6, 1.6)) if truth.size_mm else None
    return Finding(
        code, side=side, zones=zones, size_mm=round(size, 1) if size else None, probability=p
    )


def simulate_run(n: int, seed: int = 0) -> tuple[list[Case], list[Prediction]]:
    """``n`` simulated cases and predictions (see the module docstring)."""
    rng = np.random.default_rng(seed)
    cases, predictions = [], []
    for i in range(n):
        site = SITES[int(rng.integers(len(SITES)))]
        labels: dict[str, int | None] = {}
        truths: dict[str, Finding] = {}
        for code, prevalence in PREVALENCE.items():
            present = bool(rng.random() < prevalence)
            labels[code] = int(present)
            if present:
                truths[code] = _truth(rng, code)
        lesions = tuple(
            Lesion(c, f.side.value if f.side else None, f.size_mm, float(rng.uniform(0.5, 9)))
            for c, f in truths.items()
            if c in ("nodule", "mass", "pneumothorax")
        )
        zone_labels = {
            code: {z.value: int(code in truths and z in truths[code].zones) for z in Zone}
            for code in (*_ZONED, "edema")
        }
        cases.append(
            Case(
                case_id=f"sim{i:06d}",
                source="simulated",
                labels=labels,
                findings=tuple(truths.values()),
                zone_labels=zone_labels,
                lesions=lesions,
                attributes={
                    "age": float(rng.integers(18, 95)),
                    "sex": "MF"[int(rng.integers(2))],
                    "site": site,
                    "view": "PA" if site != "portable" else "AP",
                },
            )
        )
        shift = 0.6 if site == "enhanced" else 0.0
        scores, draft, checked = {}, [], []
        zone_scores: dict[str, dict[str, float]] = {}
        for code in PREVALENCE:
            logit = rng.normal(2.2 - shift if code in truths else -2.2 + shift, 1.3)
            p = float(sigmoid(logit, limit=None))
            scores[code] = p
            if code in _ZONED or code == "edema":
                zone_scores[code] = {
                    z.value: float(
                        np.clip(
                            p * (0.9 if code in truths and z in truths[code].zones else 0.2)
                            + rng.uniform(0, 0.1),
                            0,
                            1,
                        )
                    )
                    for z in Zone
                }
            if p >= 0.5:
                claim = _claim(rng, truths.get(code), code, round(p, 4))
                draft.append(claim)
                wrong = code not in truths or claim.side != truths[code].side
                flag = rng.random() < (0.7 if wrong else 0.03)
                verdict = Verdict.UNSUPPORTED if flag else Verdict.SUPPORTED
                calibrated = float(np.clip(p + rng.normal(0, 0.05), 0, 1))
                checked.append(claim.with_(probability=round(calibrated, 4), verdict=verdict))
        omissions = tuple(
            Finding(c, presence=Presence.ABSENT, probability=0.6)
            for c in truths
            if scores[c] < 0.5 and rng.random() < 0.4
        )
        refused = rng.random() < 0.01
        predictions.append(
            Prediction(
                case_id=f"sim{i:06d}",
                model="simulated",
                scores=scores,
                draft=tuple(draft),
                checked=tuple(checked),
                omissions=omissions,
                zone_scores=zone_scores,
                scope="refused" if refused else "accepted",
                scope_reasons=("out_of_distribution",)
                if site == "enhanced" and rng.random() < 0.3
                else (),
                ood_score=float(rng.normal(12 if site == "enhanced" else 8, 2)),
                urgent=False,
                latency_s={"model": 0.02, "safety": 0.004},
            )
        )
    return cases, predictions
