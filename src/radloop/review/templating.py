"""The workstation's Jinja2 templates and the filters its pages use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from radloop.errors import InputError

__all__ = ["TEMPLATES", "workstation_templates"]

TEMPLATES = Path(__file__).parent / "templates"
"""The page templates shipped with the package."""


def workstation_templates() -> Jinja2Templates:
    """The page templates with the workstation's filters (``certainty``, ``finding_sentence``)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.auto_reload = False  # templates ship with the package; no stat per render
    _fast_dict_attributes(templates.env)
    templates.env.filters["certainty"] = certainty
    templates.env.filters["finding_sentence"] = finding_sentence
    return templates


def certainty(p: float | None) -> str:
    """The certainty phrase of a probability (or "no probability")."""
    from radloop.safety import certainty_phrase

    return certainty_phrase(p).value if p is not None else "no probability"


def finding_sentence(found: dict[str, Any]) -> str:
    """The writer's plain sentence for a stored finding (the draft states it with certainty)."""
    from radloop.report import Finding
    from radloop.report.writer import describe

    try:
        return describe(Finding.from_dict(found))
    except (InputError, ValueError, KeyError):
        return str(found.get("code", "?"))


_DICT_ATTRIBUTES = frozenset(dir(dict))


def _fast_dict_attributes(env: Any) -> None:
    """``{{ row.name }}`` on a plain dict without Jinja's failed-attribute detour.

    Jinja resolves ``row.name`` by trying ``getattr(row, "name")`` first and catching the
    AttributeError, then ``row["name"]``. The pages render read models (plain dicts) with
    hundreds of such lookups a worklist page, and the raised-and-caught exceptions were the
    largest single cost of rendering. A plain dict has no attributes but ``dict``'s own, so
    looking the key up first for any other name gives exactly Jinja's result, faster.
    """
    generic = env.getattr

    def getattr_(obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return generic(obj, attribute)

    env.getattr = getattr_
