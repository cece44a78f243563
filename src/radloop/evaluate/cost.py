"""The cost section of an evaluation: what the model work cost per study, by part.

Each prediction holds its draft's cost by part (``draft``, ``samples``, ``ask_back``) and in
total: requests, prompt and completion tokens, and wall seconds. The section gives, per part,
the mean per study and the sum over the run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from radloop.evaluate.types import Prediction

__all__ = ["cost_html", "cost_section"]

_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "seconds")


def cost_section(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Per part: mean per study and sum over the studies that drafted with a model."""
    costed = [p.cost for p in predictions if p.error is None and p.cost]
    parts = sorted({part for cost in costed for part in cost})
    out: dict[str, Any] = {"studies": len(costed), "per_study": {}, "sum": {}}
    for part in parts:
        sums = {f: sum(float(c.get(part, {}).get(f, 0.0)) for c in costed) for f in _FIELDS}
        out["sum"][part] = sums
        out["per_study"][part] = {f: v / len(costed) for f, v in sums.items()}
    return out


def cost_html(section: Mapping[str, Any] | None) -> str:
    """The section as an HTML table (nothing when no study was drafted by a model)."""
    if not section or not section.get("studies"):
        return ""
    rows = "".join(
        "<tr><td>" + html.escape(part) + "</td>"
        + "".join(f"<td>{values[f]:.{3 if f == 'seconds' else 1}f}</td>" for f in _FIELDS)
        + "</tr>"
        for part, values in section["per_study"].items()
    )  # fmt: skip
    header = "".join(f"<th>{f.replace('_', ' ')}</th>" for f in ("part", *_FIELDS))
    return (
        "<h2>Cost per study</h2>"
        f"<p class=muted>Mean over {section['studies']} drafted studies: requests to the "
        "model, prompt and completion tokens as the server counts them, and wall seconds "
        "(the draft, its sampled drafts and the ask-back questions).</p>"
        f"<table><tr>{header}</tr>{rows}</table>"
    )
