"""Verify every claim of a draft against an independent verifier, whatever backend wrote it.

A :class:`Verifier` looks at a study and returns a :class:`VerifierOutput`: the probability of
each finding, per lung zone, a heatmap per finding in image coordinates and measurements
(nodule size, cardiothoracic ratio, tube-tip-to-carina distance), plus the view and an
embedding for the scope guard. This is what radloop's reference model outputs; a hospital's own
classifier provides the parts it has, and a claim the verifier cannot judge is
``unverifiable`` rather than guessed.

:func:`verify_claims` gives each finding of a draft a verdict with the numbers behind it:

- ``contradicted``: the verifier sees the finding elsewhere (other side, other zone, heatmap on
  the other side), measures a different size or tip position, the report contradicts itself,
  or a negative claim is contradicted by a confident verifier (a possible omission);
- ``unsupported``: the verifier sees no evidence for a positive claim, or too few sampled
  drafts repeat it (possible hallucination);
- ``unverifiable``: the verifier looked but is undecided (a negative claim between its
  thresholds);
- ``not_checked``: no evidence valid for this film speaks about the finding (the verifier does
  not assess it, or is outside its validated domain: see ``radloop.safety.check``);
- ``supported``: none of the above.

The error types follow ReXErr (Rao et al., "ReXErr: synthesizing clinically meaningful errors
in diagnostic radiology reports", PSB 2025): false finding, wrong side, wrong location, wrong
size, false negation, omission.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from radloop.report import Change, Finding, Presence, Verdict
from radloop.report.measure import EXTENT_MIN_RATIO, HEART_MIN_RATIO, extent_change
from radloop.safety.agreement import sample_agreement
from radloop.safety.contradictions import Contradiction, claim_zones, find_contradictions
from radloop.safety.readings import claim_readings
from radloop.study import Study
from radloop.vocabulary import Criticality, Side, Zone, ancestors, finding

__all__ = [
    "ClaimCheck",
    "ClaimNumbers",
    "Thresholds",
    "Verifier",
    "VerifierOutput",
    "heatmap_side_mass",
    "verify_claims",
]

Heatmap = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VerifierOutput:
    """What an independent verifier says about one study.

    ``presence`` maps finding codes to the probability the finding is present; a code that is
    missing is not assessed. ``zones`` maps codes to per-zone probabilities. ``heatmaps`` are
    H x W, non-negative, in the coordinates of the study's first image (the patient's right is
    on the image's left). ``sizes_mm`` is the largest lesion of a code (nodule, mass) in mm;
    ``tube_tip_to_carina_mm`` is positive above the carina. ``view`` maps view labels
    (``PA``, ``AP``, ``LATERAL``, ...) to probabilities; ``embedding`` feeds the scope guard's
    out-of-distribution score. ``extents`` measure each finding's amount on a continuous scale
    (a volume, a rim width, a ratio: only the ratio between two studies is read), so that a
    claimed change against the prior study can be checked.
    """

    verifier: str
    presence: Mapping[str, float] = field(default_factory=dict)
    zones: Mapping[str, Mapping[Zone, float]] = field(default_factory=dict)
    heatmaps: Mapping[str, Heatmap] = field(default_factory=dict)
    sizes_mm: Mapping[str, float] = field(default_factory=dict)
    cardiothoracic_ratio: float | None = None
    tube_tip_to_carina_mm: float | None = None
    view: Mapping[str, float] = field(default_factory=dict)
    embedding: npt.NDArray[np.float32] | None = None
    latency_s: float = 0.0
    extents: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for code, p in self.presence.items():
            finding(code)
            _check_probability(f"presence[{code!r}]", p)
        for code, by_zone in self.zones.items():
            finding(code)
            for zone, p in by_zone.items():
                _check_probability(f"zones[{code!r}][{zone!r}]", p)
        for code, size in self.sizes_mm.items():
            if size <= 0:
                raise ValueError(f"expected a positive size in mm for {code!r}, got {size}")
        for code, extent in self.extents.items():
            if not extent > 0:
                raise ValueError(f"expected a positive extent for {code!r}, got {extent}")

    def restricted_to(self, codes: frozenset[str] | set[str]) -> VerifierOutput:
        """This output with only the evidence about ``codes``: what a verifier may say where
        it was validated for those finding types alone (none: it says nothing)."""
        keep = frozenset(codes)
        return replace(
            self,
            presence={c: p for c, p in self.presence.items() if c in keep},
            zones={c: z for c, z in self.zones.items() if c in keep},
            heatmaps={c: h for c, h in self.heatmaps.items() if c in keep},
            sizes_mm={c: s for c, s in self.sizes_mm.items() if c in keep},
            cardiothoracic_ratio=self.cardiothoracic_ratio if "cardiomegaly" in keep else None,
            tube_tip_to_carina_mm=(
                self.tube_tip_to_carina_mm if "endotracheal_tube" in keep else None
            ),
            extents={c: e for c, e in self.extents.items() if c in keep},
        )

    def code_for(self, code: str) -> str | None:
        """The code the verifier assesses for a claim: the code itself or its nearest broader
        code (a claimed "consolidation" is checked against "lung_opacity")."""
        for candidate in (code, *ancestors(code)):
            if candidate in self.presence:
                return candidate
        return None


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f'Argument "{name}" must be a probability in [0, 1], got {p}.')


@runtime_checkable
class Verifier(Protocol):
    """An independent model that assesses a study (radloop's reference model by default)."""

    @property
    def verifier_id(self) -> str: ...

    def verify(self, study: Study) -> VerifierOutput: ...


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of claim verification, in one place (defaults in docs/safety.md)."""

    supported_at: float = 0.5
    """A positive claim with verifier probability below this is unsupported."""
    elsewhere_at: float = 0.5
    """The verifier sees the finding at another side or zone at or above this probability..."""
    absent_below: float = 0.2
    """...while it gives the claimed side or zone less than this: wrong side, wrong zone."""
    heatmap_side_mass_min: float = 0.25
    """A lateral claim whose side holds less of the heatmap's mass than this is contradicted."""
    size_ratio_max: float = 1.5
    """Claimed size over measured size outside [1/max, max] is contradicted."""
    tip_tolerance_mm: float = 15.0
    """A claimed tube-tip distance further than this from the measured one is contradicted."""
    sample_agreement_min: float = 0.5
    """A claim repeated by fewer sampled drafts than this share is unsupported..."""
    sample_override_at: float = 0.9
    """...unless the verifier gives it at least this probability."""
    omission_at: float = 0.8
    """A negative claim (or a finding not mentioned) the verifier sees at or above this
    probability is a possible omission..."""
    critical_omission_at: float = 0.5
    """...and at or above this one for a critical finding (pneumothorax, a large effusion, a
    tube: missing one costs more than a second look, so the bar to ask for that look is lower)."""
    negative_supported_below: float = 0.5
    """A negative claim the verifier gives less than this is supported."""
    change_ratio: float = EXTENT_MIN_RATIO
    """Extents on the two studies differing by this factor are a change (else stable); a
    claimed direction the verifier's two measurements contradict is flagged."""
    heart_change_ratio: float = HEART_MIN_RATIO
    """The same for the cardiothoracic ratio (cardiomegaly), which is measured more precisely."""
    omission_by_code: Mapping[str, float] = field(default_factory=dict)
    """Per-finding possible-omission thresholds that replace the two above, e.g. fitted by
    ``radloop calibrate`` at a fixed false-alarm rate on labelled absent findings."""

    def __post_init__(self) -> None:
        for code, value in self.omission_by_code.items():
            finding(code)
            _check_probability(f"omission_by_code[{code!r}]", value)
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "omission_by_code":
                continue
            if name in ("size_ratio_max", "change_ratio", "heart_change_ratio"):
                if value <= 1:
                    raise ValueError(f'Argument "{name}" must be greater than 1, got {value}.')
            elif name == "tip_tolerance_mm":
                if value <= 0:
                    raise ValueError(f'Argument "{name}" must be positive, got {value}.')
            else:
                _check_probability(name, value)

    def with_omissions(self, by_code: Mapping[str, float]) -> Thresholds:
        """These thresholds with ``by_code`` (e.g. a calibrator's fitted omission thresholds)
        for the codes this object does not already set itself."""
        if not by_code:
            return self
        return replace(self, omission_by_code={**by_code, **self.omission_by_code})

    def omission_for(self, code: str) -> float:
        """The probability at which an unmentioned or denied ``code`` is a possible omission."""
        if code in self.omission_by_code:
            return self.omission_by_code[code]
        critical = finding(code).critical is not Criticality.NEVER
        return min(self.omission_at, self.critical_omission_at) if critical else self.omission_at


@dataclass(frozen=True)
class ClaimNumbers:
    """The numbers behind a verdict; None where the verifier or the draft gave nothing."""

    verifier_code: str | None = None
    p_claim: float | None = None
    p_side: float | None = None
    p_other_side: float | None = None
    p_zone: float | None = None
    best_zone: Zone | None = None
    p_best_zone: float | None = None
    heatmap_side_mass: float | None = None
    size_claimed_mm: float | None = None
    size_measured_mm: float | None = None
    size_ratio: float | None = None
    tip_claimed_mm: float | None = None
    tip_measured_mm: float | None = None
    sample_agreement: float | None = None
    n_samples: int = 0
    p_ask_yes: float | None = None
    """Ask-back: the drafting (or another) model's P(yes) to a closed question on the finding."""
    p_ask_side: float | None = None
    """Ask-back: that model's P(the claimed side) to a closed question on the side."""
    token_probability: float | None = None
    """The drafting model's own token probability of the claim, where the server returns one."""
    p_second_opinion: float | None = None
    """A second classifier's probability of the finding (e.g. one trained on real films)."""
    p_prior: float | None = None
    extent_prior: float | None = None
    extent_current: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None or (name == "n_samples" and value == 0):
                continue
            if isinstance(value, float):
                value = round(value, 4)
            elif isinstance(value, Zone):
                value = value.value
            out[name] = value
        return out


@dataclass(frozen=True)
class ClaimCheck:
    """One claim of a draft with its verdict, the reasons and the numbers behind them.

    ``index`` is the finding's position in the draft, or None for a finding the draft does not
    mention at all but the verifier sees (``possible_omission`` then holds). ``invalid_output``
    marks a claim the model stated invalidly (its presence was not one of the schema's values):
    it is held as uncertain and always shown to the reader.
    """

    finding: Finding
    verdict: Verdict
    reasons: tuple[str, ...]
    numbers: ClaimNumbers
    index: int | None
    possible_omission: bool = False
    invalid_output: bool = False

    @property
    def flagged(self) -> bool:
        """A claim a reviewer must look at: unsupported, contradicted or invalidly stated."""
        return self.verdict in (Verdict.UNSUPPORTED, Verdict.CONTRADICTED) or self.invalid_output

    @property
    def checked(self) -> bool:
        """Some evidence valid for the film spoke about the claim."""
        return self.verdict is not Verdict.NOT_CHECKED

    @property
    def mentioned(self) -> bool:
        return self.index is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding.to_dict(),
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "numbers": self.numbers.to_dict(),
            "readings": claim_readings(self.numbers, self.finding),
            "index": self.index,
            "possible_omission": self.possible_omission,
            "invalid_output": self.invalid_output,
        }


def heatmap_side_mass(heatmap: Heatmap, side: Side) -> float:
    """The share of a heatmap's mass on the patient's ``side`` (right = image left half).

    For ``bilateral`` it is the smaller of the two sides' shares, so 0.5 means evenly spread.
    The midline is the image's central column: a rotated or off-centre patient moves it, which
    is one reason this check has a generous threshold.
    """
    mass = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    total = float(mass.sum())
    if total <= 0.0:
        return 0.0
    half = mass.shape[1] / 2.0
    columns = mass.sum(axis=0)
    centres = np.arange(columns.size) + 0.5
    right = float(columns[centres < half].sum() + 0.5 * columns[centres == half].sum()) / total
    if side is Side.RIGHT:
        return right
    if side is Side.LEFT:
        return 1.0 - right
    return min(right, 1.0 - right)


def _by_side(by_zone: Mapping[Zone, float]) -> dict[Side, float]:
    sides: dict[Side, float] = {}
    for zone, p in by_zone.items():
        sides[zone.side] = max(sides.get(zone.side, 0.0), p)
    return sides


@dataclass
class _Findings:
    """Reasons gathered for one claim, by the verdict they argue for."""

    contradicted: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> tuple[Verdict, tuple[str, ...]]:
        for verdict, reasons in (
            (Verdict.CONTRADICTED, self.contradicted),
            (Verdict.UNSUPPORTED, self.unsupported),
            (Verdict.UNVERIFIABLE, self.unverifiable),
            (Verdict.NOT_CHECKED, self.not_checked),
        ):
            if reasons:
                others = [r for r in self.all() if r not in reasons]
                return verdict, (*reasons, *others)
        return Verdict.SUPPORTED, tuple(self.notes)

    def all(self) -> list[str]:
        return [
            *self.contradicted, *self.unsupported, *self.unverifiable, *self.not_checked,
            *self.notes,
        ]  # fmt: skip


def _check_location(
    found: Finding, out: VerifierOutput, code: str, th: Thresholds, why: _Findings
) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    by_zone = out.zones.get(code, {})
    if by_zone:
        sides = _by_side(by_zone)
        right, left = sides.get(Side.RIGHT, 0.0), sides.get(Side.LEFT, 0.0)
        if found.side in (Side.RIGHT, Side.LEFT):
            claimed, other = (right, left) if found.side is Side.RIGHT else (left, right)
            numbers.update(p_side=claimed, p_other_side=other)
            if claimed < th.absent_below and other >= th.elsewhere_at:
                why.contradicted.append(
                    f"wrong side: the verifier gives the {found.side.value} side "
                    f"{claimed:.2f} and the other side {other:.2f}"
                )
        elif found.side is Side.BILATERAL:
            numbers.update(p_side=min(right, left), p_other_side=max(right, left))
            if min(right, left) < th.absent_below and max(right, left) >= th.elsewhere_at:
                seen = "right" if right > left else "left"
                why.contradicted.append(
                    f"called bilateral but the verifier sees it on the {seen} side only "
                    f"(right {right:.2f}, left {left:.2f})"
                )
        zones = claim_zones(found)
        if zones:
            p_zone = max(by_zone.get(z, 0.0) for z in zones)
            best = max(by_zone, key=lambda z: by_zone[z])
            numbers.update(p_zone=p_zone, best_zone=best, p_best_zone=by_zone[best])
            if (
                p_zone < th.absent_below
                and by_zone[best] >= th.elsewhere_at
                and not any("side" in r for r in why.contradicted)
            ):
                why.contradicted.append(
                    f"wrong location: the verifier gives the claimed zones {p_zone:.2f} and "
                    f"the {best.label} {by_zone[best]:.2f}"
                )
    heatmap = out.heatmaps.get(code)
    if heatmap is not None and found.side is not None:
        mass = heatmap_side_mass(heatmap, found.side)
        numbers["heatmap_side_mass"] = mass
        if mass < th.heatmap_side_mass_min:
            why.contradicted.append(
                f"the verifier's heatmap puts {mass:.0%} of its mass on the claimed "
                f"{found.side.value} side (minimum {th.heatmap_side_mass_min:.0%})"
            )
    return numbers


def _check_measurements(
    found: Finding, out: VerifierOutput, code: str, th: Thresholds, why: _Findings
) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    measured = out.sizes_mm.get(found.code, out.sizes_mm.get(code))
    if found.size_mm is not None and measured is not None:
        ratio = found.size_mm / measured
        numbers.update(size_claimed_mm=found.size_mm, size_measured_mm=measured, size_ratio=ratio)
        if not 1 / th.size_ratio_max <= ratio <= th.size_ratio_max:
            why.contradicted.append(
                f"size: claimed {found.size_mm:g} mm, the verifier measures {measured:.0f} mm "
                f"(ratio {ratio:.2f}, allowed {1 / th.size_ratio_max:.2f}–{th.size_ratio_max:g})"
            )
    tip = out.tube_tip_to_carina_mm
    if (
        found.code == "endotracheal_tube"
        and found.tip_distance_mm is not None
        and found.tip_reference == "carina"
        and tip is not None
    ):
        numbers.update(tip_claimed_mm=found.tip_distance_mm, tip_measured_mm=tip)
        if abs(found.tip_distance_mm - tip) > th.tip_tolerance_mm:
            why.contradicted.append(
                f"tube tip: claimed {found.tip_distance_mm:g} mm from the carina, the "
                f"verifier measures {tip:.0f} mm (tolerance {th.tip_tolerance_mm:g} mm)"
            )
    return numbers


def _check_change(
    found: Finding, out: VerifierOutput, prior: VerifierOutput, code: str, th: Thresholds,
    why: _Findings,
) -> dict[str, Any]:  # fmt: skip
    """A claimed change against the prior study, from the verifier's reading of both."""
    numbers: dict[str, Any] = {}
    change = found.change
    p_prior = prior.presence.get(code)
    if change is None or p_prior is None:
        return numbers
    numbers["p_prior"] = p_prior
    if change is Change.NEW and p_prior >= th.omission_at:
        why.contradicted.append(
            f"change: claimed new, but the verifier gives {found.name} {p_prior:.2f} on the prior"
        )
    if change is Change.RESOLVED and out.presence.get(code, 0.0) >= th.omission_at:
        why.contradicted.append(
            f"change: claimed resolved, but the verifier gives {found.name} "
            f"{out.presence[code]:.2f} on the current study"
        )
    before, now = prior.extents.get(code), out.extents.get(code)
    if change in (Change.INCREASED, Change.DECREASED, Change.STABLE):
        if p_prior < th.absent_below:
            why.contradicted.append(
                f"change: claimed {change.value}, but the verifier gives {found.name} only "
                f"{p_prior:.2f} on the prior (new?)"
            )
        elif before is not None and now is not None:
            numbers.update(extent_prior=before, extent_current=now)
            ratio = th.heart_change_ratio if code == "cardiomegaly" else th.change_ratio
            measured = extent_change(before, now, min_ratio=ratio)
            if measured != change.value:
                why.contradicted.append(
                    f"change: claimed {change.value}, the verifier measures {measured} "
                    f"(extent ×{now / before:.2f}; a change is ×{ratio:g} either way)"
                )
    return numbers


def _check_claim(
    index: int,
    found: Finding,
    out: VerifierOutput,
    samples: Sequence[Sequence[Finding]] | None,
    contradictions: Sequence[Contradiction],
    th: Thresholds,
    prior: VerifierOutput | None = None,
    silent: Mapping[str, str] | None = None,
) -> ClaimCheck:
    silent = silent or {}
    why = _Findings()
    numbers: dict[str, Any] = {}
    for contradiction in contradictions:
        if contradiction.involves(index):
            why.contradicted.append(f"internal contradiction: {contradiction.reason}")
    code = out.code_for(found.code)
    p: float | None = None
    if code is None:
        why.not_checked.append(
            silent.get(found.code)
            or f"not checked: the verifier {out.verifier!r} does not assess {found.name}"
        )
    else:
        p = out.presence[code]
        numbers.update(verifier_code=code, p_claim=p)
    if samples:
        agreement = sample_agreement(found, samples)
        numbers.update(sample_agreement=agreement, n_samples=len(samples))
        if found.is_positive and agreement < th.sample_agreement_min:
            text = f"only {agreement:.0%} of {len(samples)} sampled drafts state it"
            if p is not None and p >= th.sample_override_at:
                why.notes.append(f"{text}, but the verifier gives {p:.2f}")
            else:
                why.unsupported.append(text)
    possible_omission = False
    if code is not None and p is not None:
        if prior is not None:
            numbers.update(_check_change(found, out, prior, code, th, why))
        if found.is_positive:
            numbers.update(_check_location(found, out, code, th, why))
            numbers.update(_check_measurements(found, out, code, th, why))
            if p < th.supported_at and not why.contradicted:
                why.unsupported.append(
                    f"the verifier gives {found.name} {p:.2f} (below {th.supported_at:.2f}): "
                    "possible hallucination"
                )
        elif p >= th.omission_for(code):
            possible_omission = True
            why.contradicted.append(
                f"possible omission: the report says no {found.name}, the verifier gives {p:.2f}"
            )
        elif p >= th.negative_supported_below:
            why.unverifiable.append(
                f"the verifier is undecided about the absence of {found.name} ({p:.2f})"
            )
    verdict, reasons = why.verdict()
    return ClaimCheck(
        finding=found,
        verdict=verdict,
        reasons=reasons,
        numbers=ClaimNumbers(**numbers),
        index=index,
        possible_omission=possible_omission,
    )


def _unmentioned(
    findings: Sequence[Finding], out: VerifierOutput, th: Thresholds
) -> list[ClaimCheck]:
    mentioned: set[str] = set()
    for found in findings:
        mentioned.update((found.code, *ancestors(found.code)))
    checks = []
    for code, p in sorted(out.presence.items()):
        if code in mentioned or code == "no_finding" or p < th.omission_for(code):
            continue
        if any(c in mentioned for c in ancestors(code)):
            continue  # a broader statement ("opacity") covers a narrower code
        entry = finding(code)
        critical = " (a critical finding)" if entry.critical is not Criticality.NEVER else ""
        checks.append(
            ClaimCheck(
                finding=Finding(code, presence=Presence.ABSENT, source=out.verifier),
                verdict=Verdict.CONTRADICTED,
                reasons=(
                    f"possible omission: the report does not mention {entry.name}{critical}, "
                    f"the verifier gives {p:.2f}",
                ),
                numbers=ClaimNumbers(verifier_code=code, p_claim=p),
                index=None,
                possible_omission=True,
            )
        )
    return checks


def verify_claims(
    findings: Sequence[Finding],
    verifier_output: VerifierOutput,
    samples: Sequence[Sequence[Finding]] | None = None,
    thresholds: Thresholds | None = None,
    prior_output: VerifierOutput | None = None,
    silent: Mapping[str, str] | None = None,
) -> list[ClaimCheck]:
    """A check per finding of a draft, in order, then one per finding the draft omits.

    ``silent`` gives, per finding code, why the verifier may not speak about it (outside its
    validated domain): a claim of such a code is ``not_checked`` with that reason.

    ``samples`` are the findings of k drafts sampled from the same backend (temperature > 0),
    when it sampled; agreement is the share of them that state the same finding at an
    overlapping side and zone (:func:`radloop.safety.agreement.sample_agreement`).
    ``prior_output`` is the verifier's reading of the prior study: with it,
    each claimed change (new, increased, decreased, stable, resolved) is checked too.
    """
    th = thresholds or Thresholds()
    contradictions = find_contradictions(findings)
    checks = [
        _check_claim(i, found, verifier_output, samples, contradictions, th, prior_output, silent)
        for i, found in enumerate(findings)
    ]
    return [*checks, *_unmentioned(findings, verifier_output, th)]
