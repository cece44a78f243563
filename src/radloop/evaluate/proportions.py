"""Confidence intervals for proportions: the benchmarks' shares of n images or changes."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["counted_share", "wilson_interval"]


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``hits / n`` (95 % by default; Wilson 1927,
    the interval Brown, Cai & DasGupta 2001 recommend for small n). ``(nan, nan)`` for n = 0."""
    if not 0 <= hits <= n:
        raise ValueError(f"expected 0 <= hits <= n, got hits={hits}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact at the ends (0 of n includes 0, n of n includes 1), where rounding would not be.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    return low, 1.0 if hits == n else min(1.0, centre + half)


def counted_share(hits: int, n: int) -> dict[str, Any]:
    """How a benchmark reports a share: the count, the total and the 95 % Wilson interval."""
    low, high = wilson_interval(hits, n)
    return {"hits": hits, "n": n, "ci95": [round(low, 4), round(high, 4)]}
