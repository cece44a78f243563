"""The context items as prompt lines, each with its provenance and age, within a size budget.

Every line says where the item came from and how long before this film it was observed,
recorded or signed. Items dated after the film are never given (a reader could not have known
them). When the lines would pass ``max_chars``, the least relevant go first: laboratory values
(an older value of a test that has a newer one before the newest of any test, and older before
newer), then conditions, then the prior report, then the history; a long text item that no
longer fits whole is shortened rather than dropped while at least :data:`MIN_SHORTENED` of it
fits. What was left out is counted in a one-line note at the end of the section (on top of
``max_chars``), and every given and dropped item is kept in :meth:`RenderedItems.to_dict`
for the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from radloop.study import ContextItem

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MAX_CHARS",
    "MIN_SHORTENED",
    "Dropped",
    "RenderedItems",
    "age_phrase",
    "render_items",
]

DEFAULT_MAX_CHARS = 2000
"""The default budget of the context items' lines: about 500 tokens."""
CHARS_PER_TOKEN = 4
"""The rough size of a token in English text, to state a budget in tokens."""
MIN_SHORTENED = 200
"""A text item is shortened to fit only while at least this many characters of it remain."""

_RANK = {"history": 0, "prior_report": 1, "condition": 2, "lab": 3}
_NOUN = {
    "history": ("history item", "history items"),
    "prior_report": ("prior report", "prior reports"),
    "condition": ("condition", "conditions"),
    "lab": ("laboratory value", "laboratory values"),
}
_GROUPED = {"condition": "Active conditions", "lab": "Laboratory values"}


def age_phrase(days_before: int | None) -> str:
    """How long before this film: ``same day as this film``, ``3 days before this film``."""
    if days_before is None:
        return "date not given"
    if days_before == 0:
        return "same day as this film"
    if days_before < 0:
        after = -days_before
        return f"{after} day{'s' if after != 1 else ''} after this film"
    return f"{days_before} day{'s' if days_before != 1 else ''} before this film"


@dataclass(frozen=True)
class Dropped:
    """An item not given to the model, and why (``after this film``, ``size limit``)."""

    item: ContextItem
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return self.item.to_dict() | {"reason": self.reason}


@dataclass(frozen=True)
class RenderedItems:
    """The items' lines as they go into the prompt, what was given, and what was left out."""

    lines: tuple[str, ...]
    given: tuple[ContextItem, ...]
    dropped: tuple[Dropped, ...]
    shortened: tuple[ContextItem, ...]
    max_chars: int

    @property
    def chars(self) -> int:
        """The characters the lines take (with their line breaks)."""
        return sum(len(line) + 1 for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_chars": self.max_chars,
            "chars": self.chars,
            "given": [item.to_dict() for item in self.given],
            "shortened": [item.to_dict() for item in self.shortened],
            "dropped": [d.to_dict() for d in self.dropped],
        }


def _provenance(item: ContextItem) -> str:
    parts = [item.source]
    if item.detail:
        parts.append(item.detail)
    if not (item.days_before is None and item.kind == "history"):
        parts.append(age_phrase(item.days_before))  # history without a date is this film's
    return ", ".join(parts)


def _line(item: ContextItem) -> str:
    """One item's line; grouped kinds (conditions, labs) are bullets under their header."""
    if item.kind == "lab":
        flag = f", {item.flag}" if item.flag else ""
        return f"- {item.text}{flag} ({age_phrase(item.days_before)})"
    if item.kind == "condition":
        detail = f"{item.detail}, " if item.detail else ""
        return f"- {item.text} ({detail}{age_phrase(item.days_before)})"
    name = "Prior report" if item.kind == "prior_report" else "History"
    return f"{name} ({_provenance(item)}): {item.text}"


def _header(item: ContextItem) -> str:
    return f"{_GROUPED[item.kind]} ({item.source}):"


def _relevance(items: Sequence[ContextItem]) -> list[int]:
    """Indices of ``items``, most relevant first (see the module docstring)."""
    newest: dict[str, int] = {}
    for item in items:
        if item.kind == "lab" and item.code and item.days_before is not None:
            newest[item.code] = min(newest.get(item.code, item.days_before), item.days_before)

    def key(index: int) -> tuple[int, int, float, int]:
        item = items[index]
        superseded = int(
            item.kind == "lab"
            and item.code is not None
            and item.days_before is not None
            and item.days_before > newest.get(item.code, item.days_before)
        )
        age = float(item.days_before) if item.days_before is not None else float("inf")
        return _RANK.get(item.kind, 9), superseded, age, index

    return sorted(range(len(items)), key=key)


def _shorten(item: ContextItem, room: int) -> ContextItem | None:
    """``item`` with its text cut to make its line ``room`` characters long, or None."""
    if item.kind not in ("history", "prior_report"):
        return None
    over = len(_line(item)) + 1 - room
    keep = len(item.text) - over - len(" […]")
    if keep < MIN_SHORTENED:
        return None
    cut = item.text[:keep].rsplit(" ", 1)[0] if " " in item.text[:keep] else item.text[:keep]
    return ContextItem(
        item.kind, f"{cut} […]", item.source, item.days_before, item.date, item.code,
        item.flag, item.detail,
    )  # fmt: skip


def _note(dropped: Iterable[Dropped], shortened: int, max_chars: int) -> str | None:
    counts: dict[str, int] = {}
    for d in dropped:
        if d.reason == "size limit":
            counts[d.item.kind] = counts.get(d.item.kind, 0) + 1
    parts = [
        f"{n} {_NOUN[kind][n != 1]}"
        for kind, n in sorted(counts.items(), key=lambda kv: _RANK.get(kv[0], 9))
    ]
    if shortened:
        parts.append(f"{shortened} text{'s' if shortened != 1 else ''} shortened")
    if not parts:
        return None
    return f"Left out to keep this context within {max_chars} characters: {', '.join(parts)}."


def _lines(chosen: Sequence[ContextItem]) -> list[str]:
    """The chosen items in reading order: history, prior reports, conditions, labs (grouped by
    source, newest first)."""

    def order(item: ContextItem) -> tuple[int, str, float]:
        age = float(item.days_before) if item.days_before is not None else float("inf")
        return _RANK.get(item.kind, 9), item.source if item.kind in _GROUPED else "", age

    lines: list[str] = []
    last_group: tuple[str, str] | None = None
    for item in sorted(chosen, key=order):
        if item.kind in _GROUPED and (item.kind, item.source) != last_group:
            lines.append(_header(item))
            last_group = (item.kind, item.source)
        lines.append(_line(item))
    return lines


def render_items(
    items: Sequence[ContextItem], *, max_chars: int = DEFAULT_MAX_CHARS
) -> RenderedItems:
    """The lines of ``items`` within ``max_chars`` (see the module docstring)."""
    if max_chars <= 0:
        raise ValueError(f'Argument "max_chars" must be positive, got {max_chars}.')
    dropped: list[Dropped] = []
    candidates: list[ContextItem] = []
    for item in items:
        if item.days_before is not None and item.days_before < 0:
            dropped.append(Dropped(item, "after this film"))
        else:
            candidates.append(item)
    chosen: list[ContextItem] = []
    shortened: list[ContextItem] = []
    full = False
    for index in _relevance(candidates):
        item = candidates[index]
        if full:
            dropped.append(Dropped(item, "size limit"))
            continue
        used = sum(len(line) + 1 for line in _lines(chosen))
        with_it = sum(len(line) + 1 for line in _lines([*chosen, item]))
        if with_it <= max_chars:
            chosen.append(item)
            continue
        short = _shorten(item, max_chars - used)
        if short is not None:
            chosen.append(short)
            shortened.append(item)
            continue
        full = True
        dropped.append(Dropped(item, "size limit"))
    lines = _lines(chosen)
    note = _note(dropped, len(shortened), max_chars)
    if note:
        lines.append(note)
    return RenderedItems(tuple(lines), tuple(chosen), tuple(dropped), tuple(shortened), max_chars)
