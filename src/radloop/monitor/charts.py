"""Inline SVG charts for the monitoring dashboard: no plotting library, no external assets.

Each function returns one ``<svg>`` element as text, sized by ``viewBox`` so the page scales
it. Text is escaped; numbers are rounded to keep the page small.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Band", "ForestRow", "Series", "forest_plot", "line_chart"]

WIDTH, HEIGHT = 720, 260
MARGIN = {"left": 56, "right": 16, "top": 28, "bottom": 44}
PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207",
           "#4d7c0f", "#be185d", "#334155")  # fmt: skip


@dataclass(frozen=True)
class Series:
    """A line: y per x position (None leaves a gap)."""

    name: str
    values: Sequence[float | None]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded interval around a line (e.g. a 95 % confidence interval)."""

    low: Sequence[float | None]
    high: Sequence[float | None]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    band: Band | None = None,
    y_range: tuple[float, float] | None = None,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    marks: Sequence[bool] | None = None,
    y_label: str = "",
    css_id: str = "",
) -> str:
    """Lines over ordered labels, with an optional band, horizontal threshold and marks
    (red ticks under the x positions where ``marks`` is true, e.g. alarming windows)."""
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    values = [v for s in series for v in s.values if v is not None]
    if band is not None:
        values += [v for v in (*band.low, *band.high) if v is not None]
    if threshold is not None:
        values.append(threshold)
    low, high = y_range or ((min(values), max(values)) if values else (0.0, 1.0))
    if high <= low:
        high = low + 1.0
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return MARGIN["left"] + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        v = min(max(v, low), high)
        return MARGIN["top"] + plot_h * (1 - (v - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" id="{_e(css_id)}" aria-label="{_e(title)}">',
        f'<text x="{MARGIN["left"]}" y="18" class="title">{_e(title)}</text>',
    ]
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(
            f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{_f(y(v))}" '
            f'y2="{_f(y(v))}" class="grid"/><text x="{MARGIN["left"] - 6}" y="{_f(y(v) + 4)}" '
            f'text-anchor="end" class="tick">{v:.3g}</text>'
        )
    if y_label:
        parts.append(
            f'<text transform="translate(14 {MARGIN["top"] + plot_h / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle" class="tick">{_e(y_label)}</text>'
        )
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{_f(x(i))}" y="{HEIGHT - MARGIN["bottom"] + 16}" text-anchor="middle" '
                f'class="tick">{_e(label)}</text>'
            )
    if band is not None:
        parts.extend(_band(band, x, y))
    if threshold is not None:
        parts.append(
            f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{_f(y(threshold))}" '
            f'y2="{_f(y(threshold))}" class="threshold"/><text x="{WIDTH - MARGIN["right"]}" '
            f'y="{_f(y(threshold) - 4)}" text-anchor="end" class="tick">{_e(threshold_label)}'
            "</text>"
        )
    if marks is not None:
        for i, marked in enumerate(marks):
            if marked:
                parts.append(
                    f'<rect x="{_f(x(i) - 2)}" y="{HEIGHT - MARGIN["bottom"] + 2}" width="4" '
                    'height="6" class="mark"/>'
                )
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        parts.extend(_polyline(s, x, y, colour))
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


XMap = Callable[[int], float]
YMap = Callable[[float], float]


def _band(band: Band, x: XMap, y: YMap) -> list[str]:
    points_top, points_bottom = [], []
    for i, (lo, hi) in enumerate(zip(band.low, band.high, strict=True)):
        if lo is None or hi is None:
            continue
        points_top.append(f"{_f(x(i))},{_f(y(hi))}")
        points_bottom.append(f"{_f(x(i))},{_f(y(lo))}")
    if not points_top:
        return []
    points = " ".join(points_top + points_bottom[::-1])
    return [f'<polygon points="{points}" class="band"/>']


def _polyline(s: Series, x: XMap, y: YMap, colour: str) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    for i, v in enumerate([*s.values, None]):
        if v is None:
            if len(run) > 1:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                           f'stroke-width="2"{dash}/>')  # fmt: skip
            run = []
            continue
        px, py = x(i), y(v)
        run.append(f"{_f(px)},{_f(py)}")
        out.append(f'<circle cx="{_f(px)}" cy="{_f(py)}" r="2.5" fill="{colour}">'
                   f"<title>{_e(s.name)}: {v:.3g}</title></circle>")  # fmt: skip
    return out


def _legend(series: Sequence[Series]) -> str:
    items = []
    x = MARGIN["left"]
    for k, s in enumerate(series[:10]):
        colour = PALETTE[k % len(PALETTE)]
        items.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" class="tick">{_e(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return "".join(items)


@dataclass(frozen=True)
class ForestRow:
    """One subgroup level: estimate, interval and size."""

    group: str
    label: str
    value: float
    low: float
    high: float
    n: int


def forest_plot(
    title: str,
    rows: Sequence[ForestRow],
    *,
    reference: float | None = None,
    x_range: tuple[float, float] = (0.0, 1.0),
    css_id: str = "",
) -> str:
    """A forest plot: one row per subgroup level with its interval; a dashed line at the
    overall value."""
    row_h, top, left, right = 18, 30, 230, 70
    height = top + row_h * max(len(rows), 1) + 24
    plot_w = WIDTH - left - right
    lo, hi = x_range

    def x(v: float) -> float:
        return left + plot_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'class="chart forest" id="{_e(css_id)}" aria-label="{_e(title)}">',
        f'<text x="8" y="18" class="title">{_e(title)}</text>',
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(
            f'<line x1="{_f(x(v))}" x2="{_f(x(v))}" y1="{top - 6}" y2="{height - 20}" '
            f'class="grid"/><text x="{_f(x(v))}" y="{height - 6}" text-anchor="middle" '
            f'class="tick">{v:.2g}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line x1="{_f(x(reference))}" x2="{_f(x(reference))}" y1="{top - 6}" '
            f'y2="{height - 20}" class="threshold"/>'
        )
    group = None
    for i, row in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        name = f"{row.group}: {row.label}" if row.group != group else row.label
        group = row.group
        parts.append(
            f'<text x="{left - 8}" y="{_f(cy + 4)}" text-anchor="end" class="tick">{_e(name)}'
            f'</text><line x1="{_f(x(row.low))}" x2="{_f(x(row.high))}" y1="{_f(cy)}" '
            f'y2="{_f(cy)}" stroke="#1f5fa8" stroke-width="2"/><rect x="{_f(x(row.value) - 3)}" '
            f'y="{_f(cy - 3)}" width="6" height="6" fill="#1f5fa8"><title>{_e(name)}: '
            f"{row.value:.3f} [{row.low:.3f}, {row.high:.3f}], n={row.n}</title></rect>"
            f'<text x="{WIDTH - right + 6}" y="{_f(cy + 4)}" class="tick">n={row.n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
