"""How well probabilities are calibrated: a reliability diagram, drawn with Pillow so that no
plotting package is needed.

The figures it shows — ECE over 15 equal-width bins (Guo et al., ICML 2017, as the benchmark
protocols in docs/benchmarks.md) and the Brier score — live in :mod:`radloop.stats`; they are
re-exported here for one version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from radloop.stats import (
    ECE_BINS,
    FloatArray,
    ReliabilityBin,
    brier_score,
    expected_calibration_error,
    reliability_bins,
)

__all__ = [
    "ECE_BINS",
    "ReliabilityBin",
    "brier_score",
    "expected_calibration_error",
    "reliability_bins",
    "save_reliability_diagram",
]

_SIZE = 520
_MARGIN = 60


def save_reliability_diagram(
    path: str | Path,
    curves: Sequence[tuple[str, Sequence[float] | FloatArray, Sequence[int] | FloatArray]],
    *,
    title: str = "Reliability diagram",
) -> Path:
    """A PNG with one reliability curve per (name, probabilities, labels) and the diagonal.

    Each bin with data is a marker sized by its count; the legend gives each curve's ECE.
    """
    colours = [(200, 40, 40), (30, 90, 200), (20, 150, 60), (150, 60, 170)]
    image = Image.new("RGB", (_SIZE, _SIZE), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    side = _SIZE - 2 * _MARGIN

    def xy(x: float, y: float) -> tuple[float, float]:
        return _MARGIN + x * side, _SIZE - _MARGIN - y * side

    draw.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    for tick in range(6):
        t = tick / 5
        draw.line([xy(t, 0), (xy(t, 0)[0], xy(t, 0)[1] + 5)], fill="black")
        draw.text((xy(t, 0)[0] - 8, xy(t, 0)[1] + 8), f"{t:.1f}", fill="black", font=font)
        draw.line([xy(0, t), (xy(0, t)[0] - 5, xy(0, t)[1])], fill="black")
        draw.text((xy(0, t)[0] - 32, xy(0, t)[1] - 6), f"{t:.1f}", fill="black", font=font)
    draw.line([xy(0, 0), xy(1, 1)], fill=(160, 160, 160), width=1)
    draw.text((_MARGIN, 20), title, fill="black", font=font)
    draw.text((_SIZE // 2 - 60, _SIZE - 25), "predicted probability", fill="black", font=font)
    draw.text((8, _MARGIN - 30), "observed frequency", fill="black", font=font)
    for k, (name, probabilities, labels) in enumerate(curves):
        colour = colours[k % len(colours)]
        found = [b for b in reliability_bins(probabilities, labels) if b.count]
        total = max(sum(b.count for b in found), 1)
        points = [xy(b.confidence, b.frequency) for b in found]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for b, (x, y) in zip(found, points, strict=True):
            r = 3 + 9 * (b.count / total) ** 0.5
            draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=2)
        ece = expected_calibration_error(probabilities, labels)
        draw.text(
            (_MARGIN + 10, _MARGIN + 10 + 16 * k), f"{name}: ECE {ece:.3f}", fill=colour, font=font
        )
    path = Path(path)
    image.save(path, format="PNG")
    return path
