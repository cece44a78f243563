"""An automatic caliper: a nodule's diameter measured on the full-resolution image (numpy only).

The network's stride-8 heatmap says roughly where a nodule is (one cell is 11 mm) and its
regression head guesses the size from pooled features (validation MAE 4–5 mm). A radiologist
measures a nodule with calipers on the image instead; this does the same: about the heatmap's
peak, it flattens the background (the window minus its 24 mm box mean), then matches the
projected profile of a sphere, ``sqrt(R² - r²)``, at diameters of 4–32 mm by normalised
cross-correlation (FFT), and returns the diameter and place of the best match. The diameter is
in the image's millimetres (its pixel spacing), so it needs a known spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Caliper", "Measurement"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Measurement:
    """A caliper reading: diameter (mm), where (row, column in pixels), match quality (NCC)."""

    diameter_mm: float
    centre_rc: tuple[int, int]
    ncc: float


def _fast_length(n: int) -> int:
    """The smallest 5-smooth length (2^a 3^b 5^c) ≥ ``n``: FFTs of it are fast, and padding
    to it rather than to a power of two does not change a linear correlation."""
    best = 1 << max(0, (n - 1).bit_length())
    three = 1
    while three < best:
        five = three
        while five < best:
            m = five
            while m < n:
                m *= 2
            best = min(best, m)
            five *= 5
        three *= 3
    return best


def _box_mean(x: F64, k: int) -> F64:
    """Mean over a k × k box (k odd) with reflected edges, by summed-area table."""
    pad = k // 2
    y = np.pad(x, pad, mode="reflect")
    c = np.pad(np.cumsum(np.cumsum(y, 0), 1), ((1, 0), (1, 0)))
    return np.asarray((c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k))


@dataclass(frozen=True)
class Caliper:
    """Sphere-profile matching about a point; sizes and distances in mm."""

    sizes_mm: tuple[float, ...] = tuple(float(d) for d in range(4, 33))
    window_mm: float = 40.0  # half-width of the window read about the point
    search_mm: float = 10.0  # how far from the point the centre may lie
    background_mm: float = 24.0  # box width of the background that is subtracted
    support: float = 1.6  # the template's support, in radii (the ring around the ball)

    def measure(
        self,
        pixels: npt.NDArray[np.floating],
        spacing_mm: tuple[float, float],
        centre_rc: tuple[float, float],
    ) -> Measurement | None:
        """The best-matching diameter near ``centre_rc``; None without room to measure."""
        px = float(np.mean(spacing_mm))
        if px <= 0 or not np.isfinite(px):
            return None
        half = round(self.window_mm / px)
        rows, cols = pixels.shape
        r0, c0 = round(centre_rc[0]), round(centre_rc[1])
        lo_r, hi_r = max(0, r0 - half), min(rows, r0 + half + 1)
        lo_c, hi_c = max(0, c0 - half), min(cols, c0 + half + 1)
        window = np.asarray(pixels[lo_r:hi_r, lo_c:hi_c], dtype=np.float64)
        h, w = window.shape
        box = round(self.background_mm / px) | 1
        if min(h, w) <= box:
            return None
        flat = window - _box_mean(window, box)
        largest = int(np.ceil(self.support * max(self.sizes_mm) / 2 / px))
        shape = tuple(_fast_length(n + 2 * largest + 1) for n in (h, w))
        f1 = np.fft.rfft2(flat, shape)
        f2 = np.fft.rfft2(flat**2, shape)
        reach = round(self.search_mm / px)
        a, b = max(0, r0 - lo_r - reach), min(h, r0 - lo_r + reach + 1)
        c, e = max(0, c0 - lo_c - reach), min(w, c0 - lo_c + reach + 1)
        maps = []
        for diameter in self.sizes_mm:
            radius = diameter / 2 / px
            s = int(np.ceil(self.support * radius))
            yy, xx = np.mgrid[-s : s + 1, -s : s + 1]
            r = np.hypot(yy, xx)
            inside = r <= self.support * radius
            profile = np.sqrt(np.clip(radius * radius - r * r, 0.0, None))
            template = np.where(inside, profile - profile[inside].mean(), 0.0)
            template /= np.sqrt(float((template**2).sum()))
            kernel = np.zeros(shape)
            kernel[: 2 * s + 1, : 2 * s + 1] = template[::-1, ::-1]
            ones = np.zeros(shape)
            ones[: 2 * s + 1, : 2 * s + 1] = inside
            fk, fo = np.fft.rfft2(kernel), np.fft.rfft2(ones)
            part = (slice(s + a, s + b), slice(s + c, s + e))
            corr = np.fft.irfft2(f1 * fk, shape)[part]
            total = np.fft.irfft2(f1 * fo, shape)[part]
            energy = np.fft.irfft2(f2 * fo, shape)[part]
            spread = np.maximum(energy - total**2 / float(inside.sum()), 1e-12)
            maps.append(corr / np.sqrt(spread))
        # The best match over sizes and places. (Choosing the place first, by the mean match
        # over sizes, put 9 of 30 development nodules off by over 3 mm instead of 6.)
        ncc = np.stack(maps)  # (sizes, rows, columns) about the point
        k, i, j = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        return Measurement(
            float(self.sizes_mm[k]), (int(i) + a + lo_r, int(j) + c + lo_c), float(ncc[k, i, j])
        )
