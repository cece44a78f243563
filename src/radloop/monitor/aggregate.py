"""Agreement aggregated over time windows and patient subgroups, with confidence intervals.

Cases become one column-oriented table (numpy arrays), so every grouping is a ``bincount``
and 10,000 cases aggregate in well under a second. Intervals:

- the mean per-case F1: a Student-t interval (cases are independent; F1 is bounded, so the
  interval is clipped to [0, 1]);
- rates (significantly revised; the guard's precision, a flag counting as correct when the
  reader rejected or edited the claim): Wilson score intervals (Wilson 1927; Brown, Cai and
  DasGupta 2001 recommend it over the Wald interval for small n);
- Cohen's kappa per finding (draft vs signed positive), with a percentile bootstrap of the
  2 x 2 table (multinomial resampling of its cells, 1,000 draws, fixed seed).

Each claim of a draft (every stated finding, present, uncertain or absent) is counted under the
verdict the safety layer stored with it (``CLAIM_VERDICTS``). ``not_checked`` is a category of
its own: no evidence valid for the film spoke about the claim, so it reached the reader as the
model wrote it; it is never counted as supported. A claim stored without a verdict is
``unrecorded``. The not-checked share of the claims has a Wilson interval.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.monitor.agreement import DEFAULT_F1_THRESHOLD, Agreement, agreement
from radloop.monitor.cases import SignedCase
from radloop.report.types import Finding, Verdict
from radloop.stats import Z95 as Z95
from radloop.stats import wilson_intervals

__all__ = [
    "AGE_BANDS",
    "CLAIM_VERDICTS",
    "SUBGROUPS",
    "CaseTable",
    "FindingKappa",
    "GroupMetrics",
    "MonitorSummary",
    "age_band",
    "cohen_kappa",
    "summarise",
    "wilson_interval",
]

F64 = npt.NDArray[np.float64]
AGE_BANDS = ((18, "18-39"), (40, "40-59"), (60, "60-79"), (80, "80+"))
SUBGROUPS = ("age_band", "sex", "site", "manufacturer", "view")
UNKNOWN = "unknown"
BOOTSTRAP_DRAWS = 1000
CLAIM_VERDICTS = (*(v.value for v in Verdict), "unrecorded")
"""The verdict of each stored draft claim: the safety layer's verdicts, then no verdict."""
_NOT_CHECKED = CLAIM_VERDICTS.index(Verdict.NOT_CHECKED.value)


def claim_verdicts(findings: Sequence[Finding]) -> list[int]:
    """How many of a draft's claims carry each verdict, in ``CLAIM_VERDICTS`` order."""
    counts = [0] * len(CLAIM_VERDICTS)
    for found in findings:
        verdict = found.verdict.value if found.verdict is not None else "unrecorded"
        counts[CLAIM_VERDICTS.index(verdict)] += 1
    return counts


def age_band(age: int | None) -> str:
    """The age band of an age in years (``unknown`` when missing, ``<18`` for children)."""
    if age is None:
        return UNKNOWN
    label = "<18"
    for low, name in AGE_BANDS:
        if age >= low:
            label = name
    return label


wilson_interval = wilson_intervals
"""The Wilson score 95 % interval of each proportion: :func:`radloop.stats.wilson_intervals`
(kept here for one version)."""


def _t_quantile(dof: F64) -> F64:
    from scipy import stats

    out: F64 = np.asarray(stats.t.ppf(0.975, np.maximum(dof, 1)), dtype=np.float64)
    return out


@dataclass
class CaseTable:
    """Signed cases and their agreement as columns; ``codes`` index the finding matrices."""

    study_id: npt.NDArray[np.str_]
    signed_at: npt.NDArray[np.datetime64]
    received_at: npt.NDArray[np.datetime64]
    groups: dict[str, npt.NDArray[np.str_]]
    f1: F64
    precision: F64
    recall: F64
    tp: npt.NDArray[np.int64]
    fp: npt.NDArray[np.int64]
    fn: npt.NDArray[np.int64]
    changed: npt.NDArray[np.int64]
    edit_rate: F64
    revised: npt.NDArray[np.bool_]
    critical: npt.NDArray[np.bool_]
    flags_kept: npt.NDArray[np.int64]
    flags_rejected: npt.NDArray[np.int64]
    flags_edited: npt.NDArray[np.int64]
    ood: F64
    image: F64  # n x 4: mean, std, p05, p95 (NaN where missing)
    codes: tuple[str, ...]
    draft_positive: npt.NDArray[np.bool_]  # n x len(codes)
    signed_positive: npt.NDArray[np.bool_]
    f1_threshold: float = DEFAULT_F1_THRESHOLD
    verdicts: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros((0, len(CLAIM_VERDICTS)), dtype=np.int64)
    )
    """n x len(CLAIM_VERDICTS): the draft's claims under each stored verdict."""
    failed: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """The draft failed (the model gave no usable reply)."""
    abstained: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """The model declined the film (outside its validated domain)."""

    def __len__(self) -> int:
        return int(self.f1.size)

    @classmethod
    def build(
        cls,
        cases: Iterable[SignedCase],
        *,
        f1_threshold: float = DEFAULT_F1_THRESHOLD,
        agreements: Sequence[Agreement] | None = None,
    ) -> CaseTable:
        """The table of ``cases``, ordered by the time each study was received."""
        items = sorted(cases, key=lambda c: (c.received_at, c.study_id))
        if agreements is None:
            rows = [agreement(c, f1_threshold=f1_threshold) for c in items]
        else:
            by_id = {a.study_id: a for a in agreements}
            rows = [by_id[c.study_id] for c in items]
        codes = sorted(
            {f.code for c in items for f in (*c.draft_findings, *c.signed_findings)
             if f.is_positive}
        )  # fmt: skip
        index = {code: i for i, code in enumerate(codes)}
        draft = np.zeros((len(items), len(codes)), dtype=bool)
        signed = np.zeros_like(draft)
        for i, case in enumerate(items):
            for f in case.draft_findings:
                if f.is_positive:
                    draft[i, index[f.code]] = True
            for f in case.signed_findings:
                if f.is_positive:
                    signed[i, index[f.code]] = True
        nan = float("nan")
        return cls(
            study_id=np.array([c.study_id for c in items], dtype=str),
            signed_at=_times([c.signed_at for c in items]),
            received_at=_times([c.received_at for c in items]),
            groups={
                "age_band": np.array([age_band(c.age) for c in items], dtype=str),
                "sex": np.array([c.sex or UNKNOWN for c in items], dtype=str),
                "site": np.array([c.site or UNKNOWN for c in items], dtype=str),
                "manufacturer": np.array([c.manufacturer or UNKNOWN for c in items], dtype=str),
                "view": np.array([c.view or UNKNOWN for c in items], dtype=str),
            },
            f1=np.array([a.f1 for a in rows], dtype=np.float64),
            precision=np.array([a.precision for a in rows], dtype=np.float64),
            recall=np.array([a.recall for a in rows], dtype=np.float64),
            tp=np.array([a.true_positives for a in rows], dtype=np.int64),
            fp=np.array([len(a.removed) for a in rows], dtype=np.int64),
            fn=np.array([len(a.added) for a in rows], dtype=np.int64),
            changed=np.array([len(a.changed) for a in rows], dtype=np.int64),
            edit_rate=np.array([a.edit_rate for a in rows], dtype=np.float64),
            revised=np.array([a.significantly_revised for a in rows], dtype=bool),
            critical=np.array([a.critical_changed for a in rows], dtype=bool),
            flags_kept=np.array([a.flags_kept for a in rows], dtype=np.int64),
            flags_rejected=np.array([a.flags_rejected for a in rows], dtype=np.int64),
            flags_edited=np.array([a.flags_edited for a in rows], dtype=np.int64),
            ood=np.array([nan if c.ood_score is None else c.ood_score for c in items]),
            image=np.array(
                [
                    [nan] * 4
                    if c.image_stats is None
                    else [
                        c.image_stats.mean,
                        c.image_stats.std,
                        c.image_stats.p05,
                        c.image_stats.p95,
                    ]
                    for c in items
                ],
                dtype=np.float64,
            ).reshape(len(items), 4),
            codes=tuple(codes),
            draft_positive=draft,
            signed_positive=signed,
            f1_threshold=f1_threshold,
            verdicts=np.array(
                [claim_verdicts(c.draft_findings) for c in items], dtype=np.int64
            ).reshape(len(items), len(CLAIM_VERDICTS)),
            failed=np.array([c.draft_state == "failed" for c in items], dtype=bool),
            abstained=np.array([c.draft_state == "abstained" for c in items], dtype=bool),
        )


def _times(values: Sequence[datetime.datetime]) -> npt.NDArray[np.datetime64]:
    # UTC seconds: numpy's datetime64 has no time zone.
    return np.array([int(v.timestamp()) for v in values], dtype="datetime64[s]")


@dataclass(frozen=True)
class GroupMetrics:
    """Agreement figures of one group of cases (a time window or a subgroup level)."""

    label: str
    n: int
    f1: float
    f1_ci: tuple[float, float]
    precision: float
    recall: float
    revised_rate: float
    revised_ci: tuple[float, float]
    critical_changes: int
    edit_rate: float
    unchanged_rate: float
    flags: int
    guard_precision: float | None
    guard_ci: tuple[float | None, float | None]
    claims: dict[str, int] = field(default_factory=dict)
    """The drafts' claims under each stored verdict (``CLAIM_VERDICTS``)."""
    not_checked_rate: float | None = None
    not_checked_ci: tuple[float | None, float | None] = (None, None)
    failed_drafts: int = 0
    """Cases whose draft failed (the reader wrote the report without one)."""
    abstained_drafts: int = 0
    """Cases whose model declined the film (outside its validated domain)."""

    @property
    def n_claims(self) -> int:
        return sum(self.claims.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n": self.n,
            "f1": _r(self.f1),
            "f1_ci": [_r(v) for v in self.f1_ci],
            "precision": _r(self.precision),
            "recall": _r(self.recall),
            "revised_rate": _r(self.revised_rate),
            "revised_ci": [_r(v) for v in self.revised_ci],
            "critical_changes": self.critical_changes,
            "edit_rate": _r(self.edit_rate),
            "unchanged_rate": _r(self.unchanged_rate),
            "flags": self.flags,
            "guard_precision": _r(self.guard_precision),
            "guard_ci": [_r(v) for v in self.guard_ci],
            "claims": self.n_claims,
            **{f"claims_{v}": self.claims.get(v, 0) for v in CLAIM_VERDICTS},
            "not_checked_rate": _r(self.not_checked_rate),
            "not_checked_ci": [_r(v) for v in self.not_checked_ci],
            "failed_drafts": self.failed_drafts,
            "abstained_drafts": self.abstained_drafts,
        }


def _r(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


def _none_if_nan(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def group_metrics(table: CaseTable, keys: npt.NDArray[Any], labels: Sequence[str]
                  ) -> list[GroupMetrics]:  # fmt: skip
    """Metrics of each group ``g`` of ``keys`` (integers 0..len(labels)-1), vectorised."""
    m = len(labels)

    def total(values: npt.ArrayLike | None = None) -> F64:
        out: F64 = np.bincount(keys, weights=values, minlength=m).astype(np.float64)
        return out

    n = total()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = total(table.f1) / n
        var = np.maximum(total(table.f1**2) / n - f1**2, 0.0) * n / np.maximum(n - 1, 1)
        half = _t_quantile(n - 1) * np.sqrt(var / n)
        tp, fp, fn = total(table.tp), total(table.fp), total(table.fn)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 1.0)
        revised = total(table.revised)
        edit = total(table.edit_rate) / n
        unchanged = total((table.fp + table.fn + table.changed) == 0) / n
        flags = total(table.flags_kept + table.flags_rejected + table.flags_edited)
        caught = total(table.flags_rejected + table.flags_edited)
    rev_low, rev_high = wilson_intervals(revised, n)
    guard_low, guard_high = wilson_intervals(caught, flags)
    verdicts = table.verdicts if table.verdicts.shape[0] == len(table) else None
    by_verdict = (
        np.stack([total(verdicts[:, v]) for v in range(len(CLAIM_VERDICTS))], axis=1)
        if verdicts is not None
        else np.zeros((m, len(CLAIM_VERDICTS)))
    )
    claims = by_verdict.sum(axis=1)
    unchecked = by_verdict[:, _NOT_CHECKED]
    nc_low, nc_high = wilson_intervals(unchecked, claims)
    failed = total(table.failed) if table.failed.shape == (len(table),) else np.zeros(m)
    declined = total(table.abstained) if table.abstained.shape == (len(table),) else np.zeros(m)
    out = []
    for g, label in enumerate(labels):
        if n[g] == 0:
            continue
        guard = caught[g] / flags[g] if flags[g] else None
        out.append(
            GroupMetrics(
                label=label,
                n=int(n[g]),
                f1=float(f1[g]),
                f1_ci=(float(max(f1[g] - half[g], 0.0)), float(min(f1[g] + half[g], 1.0))),
                precision=float(precision[g]),
                recall=float(recall[g]),
                revised_rate=float(revised[g] / n[g]),
                revised_ci=(float(rev_low[g]), float(rev_high[g])),
                critical_changes=int(total(table.critical)[g]),
                edit_rate=float(edit[g]),
                unchanged_rate=float(unchanged[g]),
                flags=int(flags[g]),
                guard_precision=None if guard is None else float(guard),
                guard_ci=(_none_if_nan(guard_low[g]), _none_if_nan(guard_high[g])),
                claims={v: int(by_verdict[g, k]) for k, v in enumerate(CLAIM_VERDICTS)},
                not_checked_rate=float(unchecked[g] / claims[g]) if claims[g] else None,
                not_checked_ci=(_none_if_nan(nc_low[g]), _none_if_nan(nc_high[g])),
                failed_drafts=int(failed[g]),
                abstained_drafts=int(declined[g]),
            )
        )
    return out


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cohen's kappa of two binary ratings of the same items (NaN when chance agreement is 1,
    i.e. both raters gave one class to every item)."""
    x = np.asarray(a, dtype=bool)
    y = np.asarray(b, dtype=bool)
    cells = np.array([np.sum(x & y), np.sum(x & ~y), np.sum(~x & y), np.sum(~x & ~y)])
    return float(_kappa_from_cells(cells[None, :].astype(np.float64))[0])


def _kappa_from_cells(cells: F64) -> F64:
    """Kappa of 2 x 2 tables given as rows (both+, draft only, signed only, both-)."""
    a, b, c, d = cells.T
    n = a + b + c + d
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (a + d) / n
        expected = ((a + b) * (a + c) + (c + d) * (b + d)) / n**2
        kappa: F64 = np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)
    return kappa


@dataclass(frozen=True)
class FindingKappa:
    """Agreement on one finding between draft and signed report over a set of cases."""

    code: str
    n: int
    draft_positive: int
    signed_positive: int
    both_positive: int
    kappa: float | None
    kappa_ci: tuple[float | None, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "n": self.n,
            "draft_positive": self.draft_positive,
            "signed_positive": self.signed_positive,
            "both_positive": self.both_positive,
            "kappa": _r(self.kappa),
            "kappa_ci": [_r(v) for v in self.kappa_ci],
        }


def finding_kappas(table: CaseTable, *, seed: int = 0) -> list[FindingKappa]:
    """Cohen's kappa per finding code, draft vs signed, with a bootstrap 95 % interval."""
    x, y = table.draft_positive, table.signed_positive
    cells = np.stack(
        [np.sum(x & y, 0), np.sum(x & ~y, 0), np.sum(~x & y, 0), np.sum(~x & ~y, 0)], axis=1
    ).astype(np.float64)
    kappas = _kappa_from_cells(cells) if len(table.codes) else np.zeros(0)
    rng = np.random.default_rng(seed)
    out = []
    n = len(table)
    for i, code in enumerate(table.codes):
        low = high = float("nan")
        if n and np.isfinite(kappas[i]):
            draws = rng.multinomial(n, cells[i] / n, size=BOOTSTRAP_DRAWS).astype(np.float64)
            boot = _kappa_from_cells(draws)
            boot = boot[np.isfinite(boot)]
            if boot.size:
                low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
        out.append(
            FindingKappa(
                code=code,
                n=n,
                draft_positive=int(cells[i, 0] + cells[i, 1]),
                signed_positive=int(cells[i, 0] + cells[i, 2]),
                both_positive=int(cells[i, 0]),
                kappa=_none_if_nan(kappas[i]),
                kappa_ci=(_none_if_nan(low), _none_if_nan(high)),
            )
        )
    return out


def window_keys(times: npt.NDArray[np.datetime64], days: int) -> tuple[npt.NDArray[Any], list[str]]:
    """Calendar windows of ``days`` days (aligned on the first case's day): keys and labels
    (each window's first day, ISO)."""
    if times.size == 0:
        return np.zeros(0, dtype=np.int64), []
    day = times.astype("datetime64[D]")
    origin = day.min()
    keys = ((day - origin).astype(np.int64) // days).astype(np.int64)
    labels = [str(origin + np.timedelta64(int(k) * days, "D")) for k in range(int(keys.max()) + 1)]
    return keys, labels


@dataclass(frozen=True)
class MonitorSummary:
    """Everything the dashboard and ``radloop monitor report`` show about agreement."""

    n: int
    first: str | None
    last: str | None
    f1_threshold: float
    window_days: int
    overall: GroupMetrics | None
    windows: list[GroupMetrics]
    subgroups: dict[str, list[GroupMetrics]]
    kappas: list[FindingKappa]
    models: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "first_signed": self.first,
            "last_signed": self.last,
            "f1_threshold": self.f1_threshold,
            "window_days": self.window_days,
            "models": self.models,
            "overall": None if self.overall is None else self.overall.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "subgroups": {k: [g.to_dict() for g in v] for k, v in self.subgroups.items()},
            "kappa": [k.to_dict() for k in self.kappas],
        }


def summarise(
    table: CaseTable, *, window_days: int = 7, models: dict[str, int] | None = None
) -> MonitorSummary:
    """Overall, per-window and per-subgroup agreement, and kappa per finding."""
    if window_days < 1:
        raise ValueError(f'Argument "window_days" must be at least 1, got {window_days}.')
    n = len(table)
    everyone = group_metrics(table, np.zeros(n, dtype=np.int64), ["all"])
    keys, labels = window_keys(table.signed_at, window_days)
    subgroups = {}
    for name in SUBGROUPS:
        levels, inverse = np.unique(table.groups[name], return_inverse=True)
        subgroups[name] = group_metrics(table, inverse.astype(np.int64), [str(v) for v in levels])
    return MonitorSummary(
        n=n,
        first=str(table.signed_at.min()) if n else None,
        last=str(table.signed_at.max()) if n else None,
        f1_threshold=table.f1_threshold,
        window_days=window_days,
        overall=everyone[0] if everyone else None,
        windows=group_metrics(table, keys, labels),
        subgroups=subgroups,
        kappas=finding_kappas(table),
        models=models or {},
    )
