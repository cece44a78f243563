"""Agreement of one draft with the report the radiologist signed, both as structured findings.

Positive findings (present or uncertain) are matched by finding code, and within a code by side,
so "right effusion" → "left effusion" is one changed finding, not one removed and one added.
A matched pair whose clinically meaningful attributes differ (presence, side, zones, lobes,
severity, change, size beyond a tolerance, device tip position) is *changed*. Unmatched draft
findings were *removed* by the reader, unmatched signed findings *added*.

Precision, recall and F1 count matched codes (changed ones included: the reader kept the
finding and amended it), the way report-level labels are scored (CheXpert labeller, Irvin et
al. 2019). F1 is ``2 TP / (2 TP + FP + FN)``, so a normal draft signed normal scores 1.

A case is *significantly revised* when a critical finding (ACR practice parameter, as in
``radloop.safety.critical_reason``) was added, removed or changed, or when F1 falls below a
threshold. Text edit distance is the word-level Levenshtein distance (Myers' bit-parallel
algorithm, 1999), normalised by the longer text's word count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from radloop.monitor.cases import SignedCase
from radloop.report.types import Finding
from radloop.safety.triage import critical_reason

__all__ = [
    "DEFAULT_F1_THRESHOLD",
    "Agreement",
    "FindingChange",
    "agreement",
    "match_findings",
    "word_edit_distance",
]

DEFAULT_F1_THRESHOLD = 0.7
SIZE_TOLERANCE_MM = 2.0
TIP_TOLERANCE_MM = 10.0
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class FindingChange:
    """A finding the reader kept but amended: what it was, what was signed, which fields."""

    code: str
    fields: tuple[str, ...]
    draft: Finding
    signed: Finding

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "fields": list(self.fields),
            "draft": self.draft.to_dict(),
            "signed": self.signed.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Agreement:
    """How one signed report compares with its draft."""

    study_id: str
    added: tuple[Finding, ...]
    removed: tuple[Finding, ...]
    changed: tuple[FindingChange, ...]
    true_positives: int
    precision: float
    recall: float
    f1: float
    edit_distance: int
    edit_rate: float
    critical_changed: bool
    significantly_revised: bool
    flags_kept: int
    flags_rejected: int
    flags_edited: int

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, object]:
        return {
            "study_id": self.study_id,
            "added": [f.to_dict() for f in self.added],
            "removed": [f.to_dict() for f in self.removed],
            "changed": [c.to_dict() for c in self.changed],
            "true_positives": self.true_positives,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
            "edit_distance": self.edit_distance,
            "edit_rate": round(self.edit_rate, 6),
            "critical_changed": self.critical_changed,
            "significantly_revised": self.significantly_revised,
            "flags": {
                "kept": self.flags_kept,
                "rejected": self.flags_rejected,
                "edited": self.flags_edited,
            },
        }


def _changed_fields(a: Finding, b: Finding) -> tuple[str, ...]:
    fields = [
        name
        for name in ("presence", "side", "severity", "change", "vertebral_level")
        if getattr(a, name) != getattr(b, name)
    ]
    if set(a.zones) != set(b.zones):
        fields.append("zones")
    if set(a.lobes) != set(b.lobes):
        fields.append("lobes")
    if _differs(a.size_mm, b.size_mm, SIZE_TOLERANCE_MM):
        fields.append("size_mm")
    if (
        _differs(a.tip_distance_mm, b.tip_distance_mm, TIP_TOLERANCE_MM)
        or (a.tip_reference or "").lower() != (b.tip_reference or "").lower()
    ):
        fields.append("tip")
    return tuple(fields)


def _differs(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > tolerance


def match_findings(
    draft: Sequence[Finding], signed: Sequence[Finding]
) -> tuple[list[tuple[Finding, Finding]], list[Finding], list[Finding]]:
    """Pairs (draft, signed) of positive findings of one code, then removed and added ones.

    Within a code, pairs with the same side are made first, then any remaining ones in order.
    """
    left = [f for f in draft if f.is_positive]
    right = [f for f in signed if f.is_positive]
    pairs: list[tuple[Finding, Finding]] = []
    for same_side in (True, False):
        for a in list(left):
            for b in right:
                if a.code == b.code and (not same_side or a.side == b.side):
                    pairs.append((a, b))
                    left.remove(a)
                    right.remove(b)
                    break
    return pairs, left, right


@functools.lru_cache(maxsize=8192)
def _is_critical(found: Finding) -> bool:
    return critical_reason(found) is not None


def agreement(case: SignedCase, *, f1_threshold: float = DEFAULT_F1_THRESHOLD) -> Agreement:
    """The agreement of a signed case's draft with its signed report; see the module doc."""
    pairs, removed, added = match_findings(case.draft_findings, case.signed_findings)
    changed = []
    for a, b in pairs:
        fields = _changed_fields(a, b)
        if fields:
            changed.append(FindingChange(a.code, fields, a, b))
    tp, fp, fn = len(pairs), len(removed), len(added)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    critical = any(_is_critical(f) for f in (*removed, *added)) or any(
        _is_critical(c.draft) or _is_critical(c.signed) for c in changed
    )
    draft_words, signed_words = _words(case.draft_text), _words(case.signed_text)
    distance = word_edit_distance(draft_words, signed_words)
    longest = max(len(draft_words), len(signed_words))
    decisions = [flag.decision for flag in case.flags]
    return Agreement(
        study_id=case.study_id,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        true_positives=tp,
        precision=precision,
        recall=recall,
        f1=f1,
        edit_distance=distance,
        edit_rate=distance / longest if longest else 0.0,
        critical_changed=critical,
        significantly_revised=critical or f1 < f1_threshold,
        flags_kept=decisions.count("kept"),
        flags_rejected=decisions.count("rejected"),
        flags_edited=decisions.count("edited"),
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (insert, delete, substitute: 1 each).

    Myers' bit-parallel algorithm (J. ACM 46(3), 1999) in Hyyrö's formulation for edit
    distance: one pass over ``b`` with ``a`` held as bit vectors in Python integers, so a
    500-word report costs a few hundred integer operations instead of a 500 x 500 table.
    """
    a, b = list(a), list(b)
    if a == b:
        return 0
    # A common prefix and suffix never change the distance; reports share most of theirs
    # (section headings, "Unremarkable."), so trimming them leaves little to compare.
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(a) - start and end < len(b) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    m = len(a)
    if m == 0:
        return len(b)
    if not b:
        return m
    peq: dict[str, int] = {}
    for i, word in enumerate(a):
        peq[word] = peq.get(word, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for word in b:
        eq = peq.get(word, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score
