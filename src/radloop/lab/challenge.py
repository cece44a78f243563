"""Error injection for the safety challenge (``radloop bench safety``).

A draft that starts from the truth findings of a synthetic study is correct claim by claim;
:func:`inject` changes it in exactly one way, of a known kind, so that every claim's
correctness is known afterwards. The kinds follow ReXErr (Rao et al., "ReXErr: synthesizing
clinically meaningful errors in diagnostic radiology reports", PSB 2025):

- ``false_finding``: a finding type absent from the truth is added (in place of the draft's
  denial of it, when it has one);
- ``wrong_side``: a sided finding is moved to the other side (zones and lobes mirrored);
- ``wrong_location``: a zoned finding is moved to other zones of the same lung;
- ``inflated_size``: a nodule's or mass's size is doubled;
- ``false_negation``: a true present finding is stated absent;
- ``omitted_critical``: a true critical finding is removed from the draft;
- ``wrong_change``: a finding's change against the prior is given another direction (a
  resolved finding, stated absent, is stated present and stable).

Everything is deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from radloop.lab.synth.findings import FINDING_TYPES
from radloop.report import Finding, Presence
from radloop.report.types import Change
from radloop.safety.triage import critical_reason
from radloop.study import Study
from radloop.vocabulary import Lobe, Side, Zone, ancestors

__all__ = [
    "DEFAULT_FALSE_FINDINGS",
    "PERTINENT_NEGATIVES",
    "Challenge",
    "ErrorKind",
    "InjectedError",
    "applicable_kinds",
    "challenge_draft",
    "inject",
    "inject_error",
    "perfect_draft",
]

# Finding types a false finding is drawn from (those the synthetic lab inserts).
DEFAULT_FALSE_FINDINGS: tuple[str, ...] = FINDING_TYPES
_SIDED = {"nodule", "mass", "consolidation", "pleural_effusion", "pneumothorax", "rib_fracture"}
_SIZED = {"nodule": 12.0, "mass": 45.0}
_LOBE_MIRROR = {
    Lobe.RIGHT_UPPER: Lobe.LEFT_UPPER,
    Lobe.RIGHT_MIDDLE: Lobe.LINGULA,
    Lobe.RIGHT_LOWER: Lobe.LEFT_LOWER,
    Lobe.LEFT_UPPER: Lobe.RIGHT_UPPER,
    Lobe.LINGULA: Lobe.RIGHT_MIDDLE,
    Lobe.LEFT_LOWER: Lobe.RIGHT_LOWER,
}
_ZONE_LOBE = {
    Zone.RIGHT_UPPER: Lobe.RIGHT_UPPER,
    Zone.RIGHT_MIDDLE: Lobe.RIGHT_MIDDLE,
    Zone.RIGHT_LOWER: Lobe.RIGHT_LOWER,
    Zone.LEFT_UPPER: Lobe.LEFT_UPPER,
    Zone.LEFT_MIDDLE: Lobe.LINGULA,
    Zone.LEFT_LOWER: Lobe.LEFT_LOWER,
}
_WRONG_CHANGE = {
    Change.NEW: Change.STABLE,
    Change.INCREASED: Change.DECREASED,
    Change.DECREASED: Change.INCREASED,
    Change.STABLE: Change.NEW,
}


class ErrorKind(StrEnum):
    """The kinds of injected error (after ReXErr)."""

    FALSE_FINDING = "false_finding"
    WRONG_SIDE = "wrong_side"
    WRONG_LOCATION = "wrong_location"
    INFLATED_SIZE = "inflated_size"
    FALSE_NEGATION = "false_negation"
    OMITTED_CRITICAL = "omitted_critical"
    WRONG_CHANGE = "wrong_change"


@dataclass(frozen=True)
class InjectedError:
    """One injected error: its kind, the affected finding as the draft now states it (for an
    omission: the true finding that was removed), the true finding it replaced (for a false
    finding: the denial it replaced, or None) and its position in the draft (None for an
    omission)."""

    kind: ErrorKind
    finding: Finding
    original: Finding | None
    index: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "finding": self.finding.to_dict(),
            "original": self.original.to_dict() if self.original is not None else None,
            "index": self.index,
        }


@dataclass(frozen=True)
class Challenge:
    """A draft's findings after injection; every finding but ``error.index`` is correct."""

    findings: tuple[Finding, ...]
    error: InjectedError

    def correct(self, index: int) -> bool:
        """Whether the draft's finding at ``index`` is a correct claim."""
        return index != self.error.index


def _mirror(zone: Zone) -> Zone:
    value = zone.value
    other = (
        value.replace("right", "left")
        if value.startswith("right")
        else value.replace("left", "right")
    )
    return Zone(other)


def _other_zones(found: Finding) -> list[Zone]:
    if found.side not in (Side.RIGHT, Side.LEFT) or not found.zones:
        return []
    return [z for z in Zone if z.side is found.side and z not in found.zones]


def _applicable(kind: ErrorKind, found: Finding) -> bool:
    if kind is ErrorKind.WRONG_CHANGE:
        return found.change is not None
    if not found.is_positive:
        return False
    if kind is ErrorKind.WRONG_SIDE:
        return found.side in (Side.RIGHT, Side.LEFT)
    if kind is ErrorKind.WRONG_LOCATION:
        return bool(_other_zones(found))
    if kind is ErrorKind.INFLATED_SIZE:
        return found.code in _SIZED and found.size_mm is not None
    if kind is ErrorKind.FALSE_NEGATION:
        return True
    if kind is ErrorKind.OMITTED_CRITICAL:
        return critical_reason(found) is not None
    return False


def _absent_codes(findings: Sequence[Finding], pool: Sequence[str]) -> list[str]:
    present = {f.code for f in findings if f.is_positive}
    return [c for c in pool if c not in present]


def applicable_kinds(
    findings: Sequence[Finding], pool: Sequence[str] = DEFAULT_FALSE_FINDINGS
) -> list[ErrorKind]:
    """The kinds of error that can be injected into these findings."""
    kinds: list[ErrorKind] = []
    for kind in ErrorKind:
        if kind is ErrorKind.FALSE_FINDING:
            if _absent_codes(findings, pool):
                kinds.append(kind)
        elif any(_applicable(kind, f) for f in findings):
            kinds.append(kind)
    return kinds


def _false_finding(code: str, rng: np.random.Generator) -> Finding:
    side: Side | None = None
    zones: tuple[Zone, ...] = ()
    if code in _SIDED:
        side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
        on_side = [z for z in Zone if z.side is side]
        zones = (on_side[int(rng.integers(len(on_side)))],)
    extra: dict[str, Any] = {}
    if code in _SIZED:
        extra["size_mm"] = _SIZED[code]
    if code == "endotracheal_tube":
        extra.update(tip_distance_mm=45.0, tip_reference="carina")
    return Finding(code, side=side, zones=zones, source="radloop.lab.challenge", **extra)


def _changed(kind: ErrorKind, found: Finding, rng: np.random.Generator) -> Finding:
    if kind is ErrorKind.WRONG_SIDE:
        other = Side.LEFT if found.side is Side.RIGHT else Side.RIGHT
        return found.with_(
            side=other,
            zones=tuple(_mirror(z) for z in found.zones),
            lobes=tuple(_LOBE_MIRROR[lobe] for lobe in found.lobes),
        )
    if kind is ErrorKind.WRONG_LOCATION:
        options = _other_zones(found)
        zone = options[int(rng.integers(len(options)))]
        return found.with_(zones=(zone,), lobes=(_ZONE_LOBE[zone],) if found.lobes else ())
    if kind is ErrorKind.INFLATED_SIZE:
        assert found.size_mm is not None
        return found.with_(
            size_mm=found.size_mm * 2.0, dimensions_mm=tuple(d * 2.0 for d in found.dimensions_mm)
        )
    if kind is ErrorKind.FALSE_NEGATION:
        return found.with_(
            presence=Presence.ABSENT, size_mm=None, dimensions_mm=(), severity=None, change=None
        )
    if kind is ErrorKind.WRONG_CHANGE:
        assert found.change is not None
        if not found.is_positive:  # "resolved" stated as persisting
            return found.with_(presence=Presence.PRESENT, change=Change.STABLE)
        return found.with_(change=_WRONG_CHANGE.get(found.change, Change.NEW))
    raise ValueError(f"no single-finding change for {kind.value}")


def inject(
    findings: Sequence[Finding],
    kind: ErrorKind | str,
    seed: int | Sequence[int],
    *,
    pool: Sequence[str] = DEFAULT_FALSE_FINDINGS,
) -> Challenge | None:
    """``findings`` (taken as correct) with one error of ``kind``; None when none applies.

    The affected finding (and, for a false finding, its type, side and zone) is drawn with
    ``seed``; a false finding replaces the draft's denial of that finding, or is appended at
    the end of the draft when there is none.
    """
    kind = ErrorKind(kind)
    rng = np.random.default_rng(seed)
    findings = tuple(findings)
    if kind is ErrorKind.FALSE_FINDING:
        codes = _absent_codes(findings, pool)
        if not codes:
            return None
        added = _false_finding(codes[int(rng.integers(len(codes)))], rng)
        denied = [
            i for i, f in enumerate(findings)
            if not f.is_positive and (f.code == added.code or f.code in ancestors(added.code))
        ]  # fmt: skip
        if denied:
            # The hallucination takes the place of the denial it contradicts: a draft that
            # invents a pneumothorax does not also say "no pneumothorax" (that would be an
            # internal contradiction, caught without any verifier, and would flag the
            # correct denial with it).
            out = list(findings)
            out[denied[0]] = added
            return Challenge(tuple(out), InjectedError(kind, added, findings[denied[0]], denied[0]))
        error = InjectedError(kind, added, None, len(findings))
        return Challenge((*findings, added), error)
    candidates = [i for i, f in enumerate(findings) if _applicable(kind, f)]
    if not candidates:
        return None
    index = candidates[int(rng.integers(len(candidates)))]
    original = findings[index]
    if kind is ErrorKind.OMITTED_CRITICAL:
        rest = findings[:index] + findings[index + 1 :]
        return Challenge(rest, InjectedError(kind, original, original, None))
    changed = _changed(kind, original, rng)
    out = list(findings)
    out[index] = changed
    return Challenge(tuple(out), InjectedError(kind, changed, original, index))


def inject_error(
    findings: Sequence[Finding],
    seed: int | Sequence[int],
    *,
    kinds: Sequence[ErrorKind] | None = None,
    pool: Sequence[str] = DEFAULT_FALSE_FINDINGS,
) -> Challenge | None:
    """One error of a kind drawn with ``seed`` among ``kinds`` (default all) that apply."""
    allowed = [k for k in applicable_kinds(findings, pool) if kinds is None or k in kinds]
    if not allowed:
        return None
    rng = np.random.default_rng(seed)
    kind = allowed[int(rng.integers(len(allowed)))]
    return inject(findings, kind, [*np.atleast_1d(seed).tolist(), 1], pool=pool)


PERTINENT_NEGATIVES = ("pneumothorax", "pleural_effusion", "consolidation")
"""Negatives a radiologist states on every chest film, added to each perfect draft."""


def perfect_draft(truth: dict[str, Any]) -> tuple[Finding, ...]:
    """The truth's present findings (with change, on a pair; resolved ones stated absent) and
    the pertinent negatives."""
    from radloop.lab.synth.truth import truth_findings

    found = truth_findings(truth)
    resolved = tuple(
        Finding(
            item["code"],
            presence=Presence.ABSENT,
            side=Side(item["side"]) if item.get("side") else None,
            change=Change.RESOLVED,
            source="radloop.lab.synth truth",
        )
        for item in truth.get("findings", [])
        if item.get("presence") == "absent" and item.get("change") == Change.RESOLVED.value
    )
    stated = {f.code for f in (*found, *resolved)}
    negatives = tuple(
        Finding(code, presence=Presence.ABSENT, source="radloop.lab.synth truth")
        for code in PERTINENT_NEGATIVES
        if code not in stated
    )
    return (*found, *resolved, *negatives)


def challenge_draft(findings: Sequence[Finding], study: Study, model_id: str) -> Any:
    """The challenge's findings as a structured draft of ``study`` by ``model_id``."""
    from radloop.assist.types import DraftReport, OutputMode
    from radloop.report import Report, write

    return DraftReport(
        report=Report(
            findings=tuple(findings),
            text=write(tuple(findings)),
            study_instance_uid=study.study_instance_uid,
            source_model=model_id,
        ),
        generations=(),
        prompt="",
        prompt_version="challenge",
        model_id=model_id,
        latency_s=0.0,
        output_mode=OutputMode.STRUCTURED,
    )
