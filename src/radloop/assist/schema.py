"""The JSON the assist prompts ask for, and tolerant decoding of what comes back.

A finding is ``{"code", "presence", "side", "zones", "lobes", "size_mm", "severity",
"change", "tip_distance_mm", "tip_reference"}`` with values from ``radloop.vocabulary`` and
``radloop.report``. Decoding never raises on model output: a reply that is not the JSON gives
``None`` (the caller falls back to the text parser), and a field or finding that breaks the
schema is dropped with a warning.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from radloop.errors import UnknownFindingError
from radloop.report import Change, Finding, Presence, Severity
from radloop.report.measure import TIP_REFERENCES
from radloop.vocabulary import FINDING_CODES, Category, Lobe, Side, Zone, lookup_term

__all__ = [
    "SCHEMA_VERSION",
    "SECTION_NAMES",
    "DecodedFindings",
    "answer_schema",
    "changes_schema",
    "decode_findings",
    "extract_json",
    "finding_from_json",
    "finding_schema",
    "finding_to_json",
    "findings_schema",
    "reply_codes",
]

SCHEMA_VERSION = "radloop-findings/1"

E = TypeVar("E", bound=StrEnum)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def reply_codes() -> list[str]:
    """The finding codes a reply may use, as the prompts list them and the schema enumerates
    them: every vocabulary code but ``no_finding``, which a reply states by stating nothing."""
    return [code for code in FINDING_CODES if code != "no_finding"]


def _nullable_enum(values: list[str]) -> dict[str, Any]:
    return {"type": ["string", "null"], "enum": [*values, None]}


@cache
def _finding_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": reply_codes()},
            "presence": {"type": "string", "enum": [p.value for p in Presence]},
            "side": _nullable_enum([s.value for s in Side]),
            "zones": {
                "type": "array",
                "items": {"type": "string", "enum": [z.value for z in Zone]},
            },
            "lobes": {
                "type": "array",
                "items": {"type": "string", "enum": [b.value for b in Lobe]},
            },
            "size_mm": {"type": ["number", "null"]},
            "severity": _nullable_enum([s.value for s in Severity]),
            "change": _nullable_enum([c.value for c in Change]),
            "tip_distance_mm": {"type": ["number", "null"]},
            "tip_reference": _nullable_enum(sorted(set(TIP_REFERENCES.values()))),
        },
        "required": ["code", "presence"],
        "additionalProperties": False,
    }


def finding_schema() -> dict[str, Any]:
    """JSON Schema of one finding."""
    return copy.deepcopy(_finding_schema())  # a copy callers may change


SECTION_NAMES = tuple(c.value for c in Category if c is not Category.OTHER)
"""Report sections a model may call normal (``normal_sections``); a section it neither calls
normal nor states a finding in is not commented."""


def findings_schema() -> dict[str, Any]:
    """JSON Schema of a drafted report:
    ``{"findings": [...], "normal_sections": [...], "impression": "..."}``."""
    return {
        "title": SCHEMA_VERSION,
        "type": "object",
        "properties": {
            "findings": {"type": "array", "items": finding_schema()},
            "normal_sections": {
                "type": "array",
                "items": {"type": "string", "enum": list(SECTION_NAMES)},
            },
            "impression": {"type": "string"},
        },
        "required": ["findings", "normal_sections", "impression"],
        "additionalProperties": False,
    }


def answer_schema() -> dict[str, Any]:
    """JSON Schema of an answer: yes/no/uncertain, one sentence, the finding it rests on."""
    finding = finding_schema()
    finding["type"] = ["object", "null"]
    return {
        "type": "object",
        "properties": {
            "answer": _nullable_enum(["yes", "no", "uncertain"]),
            "text": {"type": "string"},
            "finding": finding,
        },
        "required": ["answer", "text", "finding"],
        "additionalProperties": False,
    }


def changes_schema() -> dict[str, Any]:
    """JSON Schema of a comparison: one entry per finding that changed (or stayed)."""
    change = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": reply_codes()},
            "direction": {"type": "string", "enum": [c.value for c in Change]},
            "side": _nullable_enum([s.value for s in Side]),
            "details": {"type": "string"},
        },
        "required": ["code", "direction", "details"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"changes": {"type": "array", "items": change}},
        "required": ["changes"],
        "additionalProperties": False,
    }


_SCHEMA_KEYS = (
    "code",
    "presence",
    "side",
    "zones",
    "lobes",
    "size_mm",
    "severity",
    "change",
    "tip_distance_mm",
    "tip_reference",
)


def finding_to_json(found: Finding) -> dict[str, Any]:
    """A finding as the schema's JSON object (empty fields left out)."""
    everything = found.to_dict()
    return {key: everything[key] for key in _SCHEMA_KEYS if key in everything}


def extract_json(text: str) -> Any | None:
    """The JSON value in a reply: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


@dataclass(frozen=True, slots=True)
class DecodedFindings:
    """Findings read from a JSON reply, the impression if given, and what was dropped.

    ``invalid_presence`` lists the positions (in ``findings``) of findings whose presence was
    missing or not one of the schema's values: they are held as uncertain, never present.
    ``normal_sections`` are the sections the model called normal.
    """

    findings: tuple[Finding, ...]
    impression: str | None
    warnings: tuple[str, ...]
    invalid_presence: tuple[int, ...] = ()
    normal_sections: tuple[str, ...] = ()
    presence_given: tuple[object, ...] = ()
    """What arrived as each invalid presence (parallel to ``invalid_presence``)."""


def _presence_valid(item: object) -> bool:
    if not isinstance(item, Mapping):
        return True  # skipped anyway
    value = item.get("presence")
    return isinstance(value, str) and value.strip().lower() in {p.value for p in Presence}


def decode_findings(text: str, *, source: str | None = None) -> DecodedFindings | None:
    """Findings from a reply holding ``{"findings": [...]}``; None if it holds no such JSON."""
    data = extract_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        return None
    findings: list[Finding] = []
    warnings: list[str] = []
    invalid: dict[int, object] = {}
    for index, item in enumerate(data["findings"]):
        found = finding_from_json(item, warnings, where=f"findings[{index}]", source=source)
        if found is None:
            continue
        if found not in findings:
            findings.append(found)
        if not _presence_valid(item):
            invalid.setdefault(findings.index(found), dict(item).get("presence"))
    impression = data.get("impression")
    normal = data.get("normal_sections")
    sections: list[str] = []
    if isinstance(normal, list):
        for name in normal:
            value = str(name).strip().lower().replace(" ", "_") if isinstance(name, str) else ""
            if value in SECTION_NAMES and value not in sections:
                sections.append(value)
            elif value not in SECTION_NAMES:
                warnings.append(
                    f"normal_sections: expected one of {', '.join(SECTION_NAMES)}, got {name!r}; "
                    "left out"
                )
    return DecodedFindings(
        tuple(findings),
        impression if isinstance(impression, str) else None,
        tuple(warnings),
        tuple(sorted(invalid)),
        tuple(sections),
        tuple(invalid[i] for i in sorted(invalid)),
    )


def finding_from_json(
    item: object, warnings: list[str], *, where: str = "finding", source: str | None = None
) -> Finding | None:
    """One finding from its JSON object; None (with a warning) if it has no usable code."""
    if not isinstance(item, Mapping):
        warnings.append(f"{where}: expected an object, got {type(item).__name__}; skipped")
        return None
    code = _code(item.get("code"))
    if code is None:
        warnings.append(
            f"{where}: expected a finding code from radloop.vocabulary, "
            f"got {item.get('code')!r}; skipped"
        )
        return None
    if code == "no_finding":
        return None
    # A missing or invalid presence fails closed: uncertain and flagged, never present.
    presence = _enum(Presence, item.get("presence"), f"{where}.presence", [])
    if presence is None:
        warnings.append(
            f"{where}.presence: expected one of present, absent, uncertain, got "
            f"{item.get('presence')!r}; held as uncertain — the model's output was invalid"
        )
    zones = _enums(Zone, item.get("zones"), f"{where}.zones", warnings)
    lobes = _enums(Lobe, item.get("lobes"), f"{where}.lobes", warnings)
    side = _enum(Side, item.get("side"), f"{where}.side", warnings)
    implied = [z.side for z in zones] + [b.side for b in lobes]
    for place_side in implied:  # the parser's convention: side merged with its zones and lobes
        side = place_side if side is None else side.merge(place_side)
    tip_reference = item.get("tip_reference")
    if tip_reference is not None and not isinstance(tip_reference, str):
        warnings.append(f"{where}.tip_reference: expected a string, got {tip_reference!r}")
        tip_reference = None
    try:
        return Finding(
            code=code,
            presence=presence or Presence.UNCERTAIN,
            side=side,
            zones=zones,
            lobes=lobes,
            size_mm=_positive(item.get("size_mm"), f"{where}.size_mm", warnings),
            severity=_enum(Severity, item.get("severity"), f"{where}.severity", warnings),
            change=_enum(Change, item.get("change"), f"{where}.change", warnings),
            tip_distance_mm=_number(item.get("tip_distance_mm"), f"{where}.tip", warnings),
            tip_reference=TIP_REFERENCES.get(tip_reference.lower(), tip_reference)
            if tip_reference
            else None,
            source=source,
        )
    except (ValueError, UnknownFindingError) as error:
        warnings.append(f"{where}: {error}; skipped")
        return None


def _code(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if value in FINDING_CODES:
        return value
    entry = lookup_term(value.replace("_", " "))  # "Pleural effusion", "pneumothoraces"
    return entry.code if entry is not None else None


def _enum(kind: type[E], value: object, where: str, warnings: list[str]) -> E | None:
    if value is None:
        return None
    try:
        return kind(str(value).strip().lower().replace(" ", "_"))
    except ValueError:
        options = ", ".join(e.value for e in kind)
        warnings.append(f"{where}: expected one of {options}, got {value!r}; left out")
        return None


def _enums(kind: type[E], value: object, where: str, warnings: list[str]) -> tuple[E, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    found = {e for e in (_enum(kind, v, where, warnings) for v in items) if e is not None}
    return tuple(e for e in kind if e in found)  # the enum's order, as the parser gives


def _number(value: object, where: str, warnings: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        warnings.append(f"{where}: expected a number, got {value!r}; left out")
        return None
    return float(value)


def _positive(value: object, where: str, warnings: list[str]) -> float | None:
    number = _number(value, where, warnings)
    if number is not None and number <= 0:
        warnings.append(f"{where}: expected a positive size in mm, got {value!r}; left out")
        return None
    return number
