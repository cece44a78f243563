"""``SignedCase``: one study after sign-off, the unit everything in ``radloop.monitor`` counts.

The schema is the one ``radloop.review.store.signed_cases`` yields, so the same records come
from the review store, from a JSONL file (one ``to_dict()`` per line) or from the simulator:

``study_id``, ``received_at``, ``signed_at`` (ISO-8601), ``age``, ``sex`` (``M``/``F``),
``site``, ``manufacturer``, ``view``, ``model``, ``draft_findings`` and ``signed_findings``
(``Finding.to_dict()`` lists), ``draft_text``, ``signed_text``, ``flags`` (``code``,
``reason``, ``decision``: ``kept``/``rejected``/``edited``), ``ood_score`` and
``image_stats`` (``mean``, ``std``, ``p05``, ``p95`` of the frontal image scaled 0..1) and
``draft_state``: ``drafted``, ``failed`` (the model gave no usable reply), ``abstained`` (the
model declined a film outside its validated domain) or ``none`` (no draft: the study was
outside radloop's intended use); absent in older records: ``drafted``.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.errors import InputError, RadloopError
from radloop.report.types import Finding

__all__ = [
    "DECISIONS",
    "DRAFT_STATES",
    "SEXES",
    "FlagOutcome",
    "ImageStats",
    "SignedCase",
    "image_stats",
    "read_cases",
    "write_cases",
]

DECISIONS = ("kept", "rejected", "edited")
SEXES = ("M", "F")
DRAFT_STATES = ("drafted", "failed", "abstained", "none")
_KEYS = (
    "study_id", "received_at", "signed_at", "age", "sex", "site", "manufacturer", "view",
    "model", "draft_findings", "signed_findings", "draft_text", "signed_text", "flags",
    "ood_score", "image_stats", "draft_state",
)  # fmt: skip
_STATS = ("mean", "std", "p05", "p95")


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    """A claim the safety layer flagged, and what the reader did with it.

    ``kept``: the claim was signed as drafted (the flag was a false alarm); ``rejected``: the
    claim was removed; ``edited``: it was signed changed.
    """

    code: str
    reason: str
    decision: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason, "decision": self.decision}


@dataclass(frozen=True, slots=True)
class ImageStats:
    """Grey-level statistics of the frontal image scaled to 0..1: cheap input-drift signals."""

    mean: float
    std: float
    p05: float
    p95: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "p05": self.p05, "p95": self.p95}


def image_stats(pixels: npt.ArrayLike) -> ImageStats:
    """The statistics of an image scaled 0..1.

    Pixels already in 0..1 (``radloop.study.Image.pixels``: display-ready, after the VOI LUT
    and MONOCHROME1 inversion) are taken as they are, so exposure and processing changes show;
    any other range (raw stored values) is min–max scaled first.
    """
    x = np.asarray(pixels, dtype=np.float64)
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        scaled = x
    else:
        scaled = (x - low) / (high - low) if high > low else np.zeros_like(x)
    p05, p95 = np.percentile(scaled, [5, 95])
    return ImageStats(float(scaled.mean()), float(scaled.std()), float(p05), float(p95))


@dataclass(frozen=True, slots=True)
class SignedCase:
    """One signed study: the draft, what the reader signed, the flags and the input signals."""

    study_id: str
    received_at: datetime.datetime
    signed_at: datetime.datetime
    age: int | None
    sex: str | None
    site: str | None
    manufacturer: str | None
    view: str | None
    model: str
    draft_findings: tuple[Finding, ...]
    signed_findings: tuple[Finding, ...]
    draft_text: str
    signed_text: str
    flags: tuple[FlagOutcome, ...] = ()
    ood_score: float | None = None
    image_stats: ImageStats | None = None
    draft_state: str = "drafted"
    """What became of the draft (``DRAFT_STATES``)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> SignedCase:
        """A case from the review store's schema; a bad record raises ``InputError`` naming the
        field, what it should be and what it was."""
        if not isinstance(data, Mapping):
            raise InputError("a signed-case object", type(data).__name__, source=source)
        missing = [k for k in ("study_id", "signed_at", "model") if data.get(k) in (None, "")]
        if missing:
            raise InputError(
                f"a signed case with {', '.join(missing)}",
                f"a record with keys {sorted(data)[:20]}",
                source=source,
            )
        study_id = str(data["study_id"])
        where = f"{source or 'case'} {study_id}"
        signed_at = _timestamp(data["signed_at"], "signed_at", where)
        received = data.get("received_at")
        return cls(
            study_id=study_id,
            received_at=signed_at if received in (None, "") else
            _timestamp(received, "received_at", where),
            signed_at=signed_at,
            age=_age(data.get("age"), where),
            sex=_sex(data.get("sex"), where),
            site=_optional_text(data.get("site")),
            manufacturer=_optional_text(data.get("manufacturer")),
            view=_optional_text(data.get("view")),
            model=str(data["model"]),
            draft_findings=_findings(data.get("draft_findings"), "draft_findings", where),
            signed_findings=_findings(data.get("signed_findings"), "signed_findings", where),
            draft_text=str(data.get("draft_text") or ""),
            signed_text=str(data.get("signed_text") or ""),
            flags=tuple(_flag(f, where) for f in _list(data.get("flags"), "flags", where)),
            ood_score=_optional_float(data.get("ood_score"), "ood_score", where),
            image_stats=_stats(data.get("image_stats"), where),
            draft_state=_draft_state(data.get("draft_state"), where),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The review store's schema, JSON-ready (timestamps as ISO-8601 text)."""
        return {
            "study_id": self.study_id,
            "received_at": self.received_at.isoformat(),
            "signed_at": self.signed_at.isoformat(),
            "age": self.age,
            "sex": self.sex,
            "site": self.site,
            "manufacturer": self.manufacturer,
            "view": self.view,
            "model": self.model,
            "draft_findings": [f.to_dict() for f in self.draft_findings],
            "signed_findings": [f.to_dict() for f in self.signed_findings],
            "draft_text": self.draft_text,
            "signed_text": self.signed_text,
            "flags": [f.to_dict() for f in self.flags],
            "ood_score": self.ood_score,
            "image_stats": None if self.image_stats is None else self.image_stats.to_dict(),
            "draft_state": self.draft_state,
        }


def _timestamp(value: object, name: str, where: str) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        try:
            parsed = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            raise InputError(f"{name} as ISO-8601 date-time", repr(value), source=where) from None
    # Naive times are taken as UTC so that windows never mix aware and naive values.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _age(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 130:
        raise InputError("age as whole years 0–130 or null", repr(value), source=where)
    return int(value)


def _sex(value: object, where: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in SEXES:
        raise InputError("sex 'M', 'F' or null", repr(value), source=where)
    return str(value)


def _draft_state(value: object, where: str) -> str:
    if value in (None, ""):
        return "drafted"
    if value not in DRAFT_STATES:
        raise InputError(f"draft_state one of {', '.join(DRAFT_STATES)}", repr(value),
                         source=where)  # fmt: skip
    return str(value)


def _optional_text(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def _optional_float(value: object, name: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} as a number or null", repr(value), source=where) from None
    if not math.isfinite(number):
        raise InputError(f"{name} as a finite number or null", repr(value), source=where)
    return number


def _list(value: object, name: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InputError(f"{name} as a list", type(value).__name__, source=where)
    return list(value)


# Findings repeat across cases ("no pneumothorax", "mild cardiomegaly"): parsing each distinct
# one once makes reading 10,000 cases several times faster. Findings are immutable, so sharing
# them is safe; the memo is emptied when it grows past its bound.
_FINDING_MEMO: dict[str, Finding] = {}
_FINDING_MEMO_MAX = 50_000


def _finding(item: object) -> Finding:
    key = repr(item)
    found = _FINDING_MEMO.get(key)
    if found is None:
        if not isinstance(item, Mapping):
            raise TypeError(f"a finding object, got {type(item).__name__}")
        found = Finding.from_dict(item)
        if len(_FINDING_MEMO) >= _FINDING_MEMO_MAX:
            _FINDING_MEMO.clear()
        _FINDING_MEMO[key] = found
    return found


def _findings(value: object, name: str, where: str) -> tuple[Finding, ...]:
    items = _list(value, name, where)
    try:
        return tuple(_finding(item) for item in items)
    except (RadloopError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{name} as Finding.to_dict() objects", f"{error}", source=where) from None


def _flag(value: object, where: str) -> FlagOutcome:
    if not isinstance(value, Mapping) or "code" not in value:
        raise InputError("a flag object with code, reason and decision", repr(value)[:200],
                         source=where)  # fmt: skip
    decision = value.get("decision")
    if decision not in DECISIONS:
        raise InputError(f"flag decision one of {', '.join(DECISIONS)}", repr(decision),
                         source=where)  # fmt: skip
    return FlagOutcome(str(value["code"]), str(value.get("reason") or ""), str(decision))


def _stats(value: object, where: str) -> ImageStats | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or any(k not in value for k in _STATS):
        raise InputError("image_stats with mean, std, p05 and p95", repr(value)[:200],
                         source=where)  # fmt: skip
    numbers = [_optional_float(value[k], f"image_stats.{k}", where) for k in _STATS]
    return ImageStats(*(float(n) for n in numbers if n is not None))


def read_cases(path: Path) -> Iterator[SignedCase]:
    """Signed cases from a JSONL file, one object per line; blank lines are skipped.

    The whole file is validated before the first case is yielded, so a bad line stops the
    reader before any figure is computed from a partial file.
    """
    if not path.is_file():
        raise InputError("a JSONL file of signed cases", f"no file at {path}", source=path)
    cases: list[SignedCase] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError("one JSON object per line", f"{error.msg} at line {number}",
                                 source=path) from None  # fmt: skip
            cases.append(SignedCase.from_dict(record, source=f"{path}:{number}"))
    yield from cases


def write_cases(cases: Iterable[SignedCase], path: Path) -> int:
    """Write cases as JSONL (written to a temporary file, then moved into place)."""
    tmp = path.with_name(path.name + ".part")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(json.dumps(case.to_dict(), separators=(",", ":")) + "\n")
            count += 1
    tmp.replace(path)
    return count


def field_names() -> tuple[str, ...]:
    """The keys of the signed-case schema, in order."""
    return _KEYS
