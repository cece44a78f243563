"""From case and prediction records to the arrays the metrics are computed on.

Everything here is per case (rows) so that the case bootstrap (:mod:`.bootstrap`) is a
matrix product. Definitions (docs/evaluate.md has the full text):

- A model's finding ``c`` counts for a labelled code ``T`` when ``c == T`` or ``T`` is one of
  ``c``'s broader codes (a claimed consolidation is a claimed opacity).
- Draft decisions: a positive (present or uncertain) claim. With the safety layer: a claim the
  safety layer did not flag (unsupported, contradicted, or stated invalidly by the model), or a
  finding the verifier flags as a possible omission; cases the scope guard refuses get no
  assistant output and leave the "with safety" figures.
- Verdicts: each claim of the draft is counted under its verdict (``VERDICTS``). A claim no
  evidence valid for the film spoke about is ``not_checked``: it stays in the draft as the
  model wrote it (so it counts as claimed with safety too), and it is never counted as
  supported. Without the safety layer every claim is ``not_checked``.
- A draft that failed (degenerate output) or on which the model abstained states nothing: it
  is never read as normal, so its absent findings are left out of specificity, while its
  present findings count as missed.
- Hallucination error types of a positive claim (after ReXErr, Rao et al., PSB 2025):
  ``false_finding`` (the code is absent in the truth), ``wrong_side`` (no truth finding of the
  code on an overlapping side: right and bilateral overlap), ``wrong_zone`` (side right, zone
  sets disjoint), ``inflated_size`` (|size error| > max(5 mm, 30 % of truth)).
- Critical findings: present findings the vocabulary marks critical (always; if large when the
  truth says large; an endotracheal tube when its tip lies outside 30–70 mm above the carina).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from radloop.evaluate.types import Case, Prediction
from radloop.report import Finding, Verdict
from radloop.vocabulary import Criticality, Side, Zone, ancestors, finding

__all__ = [
    "ERROR_TYPES",
    "VERDICTS",
    "EvalArrays",
    "age_band",
    "build_arrays",
    "counts_for",
]

ERROR_TYPES = ("false_finding", "wrong_side", "wrong_zone", "inflated_size")
ZONES = tuple(z.value for z in Zone)
ETT_TIP_RANGE_MM = (30.0, 70.0)  # as radloop.assist.ask: 5 ± 2 cm above the carina
_FLAGGED = (Verdict.UNSUPPORTED, Verdict.CONTRADICTED)
VERDICTS = tuple(v.value for v in Verdict)  # supported ... not_checked
F64 = npt.NDArray[np.float64]
B8 = npt.NDArray[np.bool_]


def age_band(age: object) -> str:
    """Age bands used for subgroups: <40, 40–59, 60–79, 80+."""
    if not isinstance(age, int | float) or np.isnan(age):
        return "unknown"
    return "<40" if age < 40 else "40-59" if age < 60 else "60-79" if age < 80 else "80+"


def counts_for(code: str, target: str) -> bool:
    """Whether a finding of ``code`` counts as a finding of the labelled ``target``."""
    return code == target or target in ancestors(code)


@dataclass
class EvalArrays:
    """Per-case arrays of one run (n cases, K labelled codes)."""

    codes: tuple[str, ...]
    case_ids: list[str]
    y: F64  # n x K: 1, 0, NaN unknown
    score: F64  # n x K: the model's score
    score_safe: F64  # n x K: calibrated probability of the checked claim, else the score
    claimed: B8  # n x K: positive draft claim
    claimed_safe: B8  # n x K: the decision after the safety layer
    scored: B8  # K: the model scores the code at all
    valid: B8  # n: prediction without error
    in_scope: B8  # n: the scope guard did not refuse
    attributes: dict[str, list[str]]  # sex, age_band, site, view → per-case group label
    ood: F64  # n: OOD score or NaN
    ood_flagged: B8  # n: the scope guard flagged the image as out of distribution
    scope: list[str]
    expected_scope: list[str | None]
    scope_problems: list[str | None]  # why the scope guard did not run, per case
    error_messages: list[str | None]  # why inference failed, per case
    claims: F64  # n: positive claims whose truth is known
    errors: F64  # n x E: claims with each error type (ERROR_TYPES)
    errors_unflagged: F64  # n x E: the same, not flagged by the safety layer
    critical: F64  # n: critical findings present
    critical_missed: F64  # n
    critical_missed_safe: F64  # n
    verdicts: F64 = field(default_factory=lambda: np.zeros((0, len(VERDICTS))))
    """n x V: the draft's claims (positive and negative) under each verdict (``VERDICTS``)."""
    verdicts_positive: F64 = field(default_factory=lambda: np.zeros((0, len(VERDICTS))))
    """n x V: the same for the positive claims only."""
    flagged_positive: F64 = field(default_factory=lambda: np.zeros(0))
    """n: positive claims the safety layer flags (unsupported, contradicted, invalid output)."""
    invalid_claims: F64 = field(default_factory=lambda: np.zeros(0))
    """n: claims the model stated invalidly (held as uncertain, flagged)."""
    errors_not_checked: F64 = field(default_factory=lambda: np.zeros((0, len(ERROR_TYPES))))
    """n x E: the hallucinations of claims that were not checked (part of errors_unflagged)."""
    failed: B8 = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """n: the draft failed (degenerate output): it states nothing."""
    abstained: B8 = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """n: the model abstained (the film is outside its validated domain): it states nothing."""
    verifier_out_of_domain: B8 = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """n: the verifier was outside its validated domain for the film (silent)."""
    spatial: dict[str, F64] = field(default_factory=dict)  # name → n (sums per case)
    zone: dict[str, tuple[F64, F64]] = field(default_factory=dict)  # code → (n x 6 y, score)
    lesions: dict[str, F64 | list[str]] = field(default_factory=dict)
    latency: dict[str, F64] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.case_ids)

    @property
    def stated(self) -> B8:
        """n: the draft states something (it neither failed nor abstained)."""
        if self.failed.size != self.n or self.abstained.size != self.n:
            return np.ones(self.n, dtype=bool)
        return ~(self.failed | self.abstained)


@dataclass(frozen=True)
class _Claim:
    """One claim of a draft: as drafted, as the safety layer hands it on (None without one),
    its verdict and whether the safety layer flags it."""

    drafted: Finding
    checked: Finding | None
    verdict: str
    flagged: bool

    @property
    def shown(self) -> Finding:
        return self.checked if self.checked is not None else self.drafted


def _claims(pred: Prediction) -> list[_Claim]:
    """Every claim of the draft in order, with the safety layer's verdict.

    ``pred.checked`` holds the draft's findings in the same order; a record that holds only
    the checked positive claims is paired with the draft's positive claims in order. A claim
    without a verdict (no safety layer) is not checked.
    """
    draft = list(pred.draft)
    checked: list[Finding | None]
    if not pred.checked:
        checked = [None] * len(draft)
    elif len(pred.checked) == len(draft):
        checked = list(pred.checked)
    else:
        rest = iter([f for f in pred.checked if f.is_positive])
        checked = [next(rest, None) if f.is_positive else None for f in draft]
    invalid = set(pred.invalid_output)
    out = []
    for index, (drafted, mine) in enumerate(zip(draft, checked, strict=True)):
        verdict = mine.verdict if mine is not None else None
        flagged = mine is not None and (verdict in _FLAGGED or index in invalid)
        value = verdict.value if verdict is not None else Verdict.NOT_CHECKED.value
        out.append(_Claim(drafted, mine, value, flagged))
    return out


def _map_scores(
    scores: Mapping[str, float], codes: Sequence[str]
) -> tuple[list[float], list[bool]]:
    values, present = [], []
    for target in codes:
        found = [p for c, p in scores.items() if counts_for(c, target)]
        values.append(max(found) if found else 0.0)
        present.append(bool(found))
    return values, present


def _truth_of(case: Case, code: str) -> list[Finding]:
    return [f for f in case.findings if counts_for(f.code, code) or f.code == code]


def _is_critical(found: Finding) -> bool:
    rule = finding(found.code).critical
    if rule is Criticality.ALWAYS:
        return True
    if rule is Criticality.IF_LARGE:
        return found.severity is not None and found.severity.value == "large"
    if rule is Criticality.IF_MALPOSITIONED and found.code == "endotracheal_tube":
        tip = found.tip_distance_mm
        return tip is not None and not ETT_TIP_RANGE_MM[0] <= tip <= ETT_TIP_RANGE_MM[1]
    return False


def _sides_overlap(a: Side | None, b: Side | None) -> bool:
    """A claim on the right of a bilateral finding names a side it has: not a wrong side."""
    if a is None or b is None:
        return True
    both = {Side.RIGHT, Side.LEFT}
    sa = both if a is Side.BILATERAL else {a}
    sb = both if b is Side.BILATERAL else {b}
    return bool(sa & sb)


def _error_types(claim: Finding, truth: list[Finding]) -> list[str]:
    """Which hallucination types a claim of a code present in the truth still commits."""
    if not truth:
        return ["false_finding"]
    same_side = [t for t in truth if _sides_overlap(claim.side, t.side)]
    if not same_side:
        return ["wrong_side"]
    out = []
    claimed_zones = set(claim.zones)
    truth_zones = {z for t in same_side for z in t.zones}
    if claimed_zones and truth_zones and not claimed_zones & truth_zones:
        out.append("wrong_zone")
    sizes = [t.size_mm for t in same_side if t.size_mm]
    if claim.size_mm and sizes:
        true = min(sizes, key=lambda s: abs(s - (claim.size_mm or 0.0)))
        if abs(claim.size_mm - true) > max(5.0, 0.3 * true):
            out.append("inflated_size")
    return out


def _spatial(claim: Finding, truth: list[Finding], stats: dict[str, float]) -> None:
    """Side, zone, lobe, level and size agreement of one true-positive claim."""
    if not truth:
        return
    match = next((t for t in truth if claim.side is not None and t.side == claim.side), truth[0])
    if claim.side is not None and match.side is not None:
        stats["side_n"] += 1
        stats["side_ok"] += float(claim.side == match.side)
    truth_zones = {z for t in truth for z in t.zones}
    if claim.zones and truth_zones:
        got = set(claim.zones)
        stats["zone_n"] += 1
        stats["zone_ok"] += float(got == truth_zones)
        stats["zone_jaccard"] += len(got & truth_zones) / len(got | truth_zones)
    if claim.lobes and match.lobes:
        stats["lobe_n"] += 1
        stats["lobe_ok"] += float(set(claim.lobes) == set(match.lobes))
    if claim.vertebral_level is not None and match.vertebral_level is not None:
        a = _level_index(claim.vertebral_level.value)
        b = _level_index(match.vertebral_level.value)
        stats["level_n"] += 1
        stats["level_ok"] += float(a == b)
        stats["level_within1"] += float(abs(a - b) <= 1)
    if claim.size_mm and match.size_mm:
        stats["size_n"] += 1
        stats["size_abs_error_mm"] += abs(claim.size_mm - match.size_mm)


def _level_index(value: str) -> int:
    digits = "".join(ch for ch in value if ch.isdigit())
    return int(digits) if digits else 0


SPATIAL_KEYS = (
    "side_n",
    "side_ok",
    "zone_n",
    "zone_ok",
    "zone_jaccard",
    "lobe_n",
    "lobe_ok",
    "level_n",
    "level_ok",
    "level_within1",
    "size_n",
    "size_abs_error_mm",
)


def _lesion_detected(claims: Sequence[Finding], code: str, side: str | None) -> bool:
    for claim in claims:
        if not claim.is_positive or not counts_for(claim.code, code):
            continue
        if side is None or claim.side is None or claim.side.value in (side, Side.BILATERAL.value):
            return True
    return False


def build_arrays(
    cases: Sequence[Case], predictions: Sequence[Prediction], codes: Sequence[str]
) -> EvalArrays:
    """The arrays of a run (cases and predictions in the same order)."""
    n, k = len(cases), len(codes)
    y = np.full((n, k), np.nan)
    score = np.zeros((n, k))
    score_safe = np.zeros((n, k))
    claimed = np.zeros((n, k), dtype=bool)
    claimed_safe = np.zeros((n, k), dtype=bool)
    scored = np.zeros(k, dtype=bool)
    valid = np.ones(n, dtype=bool)
    in_scope = np.ones(n, dtype=bool)
    errors = np.zeros((n, len(ERROR_TYPES)))
    unflagged = np.zeros((n, len(ERROR_TYPES)))
    claims = np.zeros(n)
    critical = np.zeros(n)
    missed = np.zeros(n)
    missed_safe = np.zeros(n)
    ood = np.full(n, np.nan)
    ood_flagged = np.zeros(n, dtype=bool)
    verdicts = np.zeros((n, len(VERDICTS)))
    verdicts_positive = np.zeros((n, len(VERDICTS)))
    flagged_positive = np.zeros(n)
    invalid_claims = np.zeros(n)
    not_checked_errors = np.zeros((n, len(ERROR_TYPES)))
    failed = np.zeros(n, dtype=bool)
    abstained = np.zeros(n, dtype=bool)
    out_of_domain = np.zeros(n, dtype=bool)
    spatial = {key: np.zeros(n) for key in SPATIAL_KEYS}
    zone_codes = sorted({c for case in cases for c in case.zone_labels if c in codes})
    zone = {c: (np.full((n, 6), np.nan), np.zeros((n, 6))) for c in zone_codes}
    lesion_rows: list[tuple[int, str, float, float, bool, bool]] = []
    attributes: dict[str, list[str]] = {"sex": [], "age_band": [], "site": [], "view": []}
    latency = {"model": np.full(n, np.nan), "safety": np.full(n, np.nan)}
    scope: list[str] = []
    expected: list[str | None] = []
    problems: list[str | None] = []
    messages: list[str | None] = []
    for i, (case, pred) in enumerate(zip(cases, predictions, strict=True)):
        a = case.attributes
        attributes["sex"].append(str(a.get("sex") or "unknown"))
        attributes["age_band"].append(age_band(a.get("age")))
        attributes["site"].append(str(a.get("site") or "unknown"))
        attributes["view"].append(str(a.get("view") or "unknown"))
        scope.append(pred.scope or "unknown")
        exp = a.get("expected_scope")
        expected.append(str(exp) if exp else None)
        messages.append(pred.error)
        problems.append(
            next((r for r in pred.scope_reasons if r.startswith("scope guard unavailable")), None)
        )
        if pred.error is not None:
            valid[i] = False
            continue
        in_scope[i] = pred.scope != "refused"
        if pred.ood_score is not None:
            ood[i] = pred.ood_score
        ood_flagged[i] = bool(pred.ood_flagged) or "out_of_distribution" in pred.scope_reasons
        for key in latency:
            if key in pred.latency_s:
                latency[key][i] = pred.latency_s[key]
        for j, code in enumerate(codes):
            label = case.labels.get(code)
            if label is not None:
                y[i, j] = float(label)
        values, present = _map_scores(pred.scores, codes)
        score[i] = values
        scored |= np.asarray(present, dtype=bool)  # an empty list would be float64
        score_safe[i] = values
        failed[i] = pred.failure is not None
        abstained[i] = pred.abstained is not None
        out_of_domain[i] = pred.domain is not None and not pred.domain.get("in_domain")
        every = _claims(pred)
        mine_all = [c for c in every if c.drafted.is_positive]
        positives = [c.drafted for c in mine_all]
        for c in every:
            verdicts[i, VERDICTS.index(c.verdict)] += 1
            if c.drafted.is_positive:
                verdicts_positive[i, VERDICTS.index(c.verdict)] += 1
                flagged_positive[i] += float(c.flagged)
        invalid_claims[i] = float(len(set(pred.invalid_output)))
        for j, code in enumerate(codes):
            mine = [c for c in mine_all if counts_for(c.drafted.code, code)]
            claimed[i, j] = bool(mine)
            # A probability with safety comes from a claim some valid evidence spoke about,
            # or, without the safety layer, from the draft itself; never from an unchecked one.
            probs = [
                c.shown.probability
                for c in mine
                if c.shown.probability is not None
                and (c.checked is None or c.verdict != Verdict.NOT_CHECKED.value)
            ]
            if probs:
                score_safe[i, j] = max(probs)
            kept = [c for c in mine if not c.flagged]  # a not-checked claim stays as written
            omitted = any(counts_for(f.code, code) for f in pred.omissions)
            claimed_safe[i, j] = bool(kept) or omitted
        _claim_errors(
            case, codes, mine_all, i, claims, errors, unflagged, not_checked_errors, spatial
        )
        for truth in case.findings:
            if truth.code not in codes and not any(counts_for(truth.code, c) for c in codes):
                continue
            if not _is_critical(truth):
                continue
            critical[i] += 1
            hit = any(counts_for(f.code, truth.code) for f in positives)
            caught = hit or any(counts_for(f.code, truth.code) for f in pred.omissions)
            missed[i] += float(not hit)
            missed_safe[i] += float(not caught)
        for code, (zy, zs) in zone.items():
            labels = case.zone_labels.get(code)
            if labels is None:
                continue
            zy[i] = [labels.get(z, np.nan) for z in ZONES]
            zs[i] = _zone_scores(pred, code)
        for lesion in case.lesions:
            size = lesion.size_mm if lesion.size_mm is not None else np.nan
            contrast = lesion.contrast if lesion.contrast is not None else np.nan
            kept_safe = [c.shown for c in mine_all if not c.flagged]
            found = _lesion_detected(positives, lesion.code, lesion.side)
            found_safe = _lesion_detected(kept_safe, lesion.code, lesion.side) or any(
                counts_for(f.code, lesion.code) for f in pred.omissions
            )
            lesion_rows.append((i, lesion.code, size, contrast, found, found_safe))
    lesions: dict[str, F64 | list[str]] = {
        "case": np.asarray([r[0] for r in lesion_rows], dtype=np.int64).astype(np.float64),
        "code": [r[1] for r in lesion_rows],
        "size_mm": np.asarray([r[2] for r in lesion_rows], dtype=np.float64),
        "contrast": np.asarray([r[3] for r in lesion_rows], dtype=np.float64),
        "detected": np.asarray([r[4] for r in lesion_rows], dtype=np.float64),
        "detected_safe": np.asarray([r[5] for r in lesion_rows], dtype=np.float64),
    }
    return EvalArrays(
        codes=tuple(codes),
        case_ids=[c.case_id for c in cases],
        y=y,
        score=score,
        score_safe=score_safe,
        claimed=claimed,
        claimed_safe=claimed_safe,
        scored=scored,
        valid=valid,
        in_scope=in_scope,
        attributes=attributes,
        ood=ood,
        ood_flagged=ood_flagged,
        scope=scope,
        scope_problems=problems,
        error_messages=messages,
        expected_scope=expected,
        claims=claims,
        errors=errors,
        errors_unflagged=unflagged,
        critical=critical,
        critical_missed=missed,
        critical_missed_safe=missed_safe,
        verdicts=verdicts,
        verdicts_positive=verdicts_positive,
        flagged_positive=flagged_positive,
        invalid_claims=invalid_claims,
        errors_not_checked=not_checked_errors,
        failed=failed,
        abstained=abstained,
        verifier_out_of_domain=out_of_domain,
        spatial=spatial,
        zone=zone,
        lesions=lesions,
        latency=latency,
    )


def _claim_errors(
    case: Case,
    codes: Sequence[str],
    positives: Sequence[_Claim],
    i: int,
    claims: F64,
    errors: F64,
    unflagged: F64,
    not_checked: F64,
    spatial: dict[str, F64],
) -> None:
    stats = dict.fromkeys(SPATIAL_KEYS, 0.0)
    seen: set[str] = set()
    for entry in positives:
        claim = entry.drafted
        target = next((c for c in codes if counts_for(claim.code, c)), None)
        if target is None or case.labels.get(target) is None:
            continue  # the truth does not say: not assessable
        claims[i] += 1
        truth = _truth_of(case, target) if case.labels[target] == 1 else []
        if case.labels[target] == 1 and not truth:
            truth = [Finding(target)]  # present without location details
        for kind in _error_types(claim, truth):
            e = ERROR_TYPES.index(kind)
            errors[i, e] += 1
            unflagged[i, e] += float(not entry.flagged)
            unchecked = not entry.flagged and entry.verdict == Verdict.NOT_CHECKED.value
            not_checked[i, e] += float(unchecked)
        if truth and target not in seen:
            seen.add(target)
            _spatial(claim, truth, stats)
    for key, value in stats.items():
        spatial[key][i] = value


def _zone_scores(pred: Prediction, code: str) -> list[float]:
    """Per-zone scores of ``code``: the model's zone probabilities where it has them, else
    each claim's probability on the zones it names (0 elsewhere)."""
    mapped = [zs for c, zs in pred.zone_scores.items() if counts_for(c, code)]
    if mapped:
        return [max(zs.get(z, 0.0) for zs in mapped) for z in ZONES]
    out = [0.0] * 6
    for claim in pred.draft:
        if not claim.is_positive or not counts_for(claim.code, code):
            continue
        p = claim.probability if claim.probability is not None else 1.0
        for zone in claim.zones:
            k = ZONES.index(zone.value)
            out[k] = max(out[k], p)
    return out
