"""``radloop bench sim2real --overlays PNG``: the lung-fields readings drawn over the films.

A grid of frontal films, each with the network's right (red) and left (green) lung fields and
heart (blue) outlined and, where the folder holds one, the annotator's lung outline (white,
dashed) with the film's Dice in the caption. Figures say how well; this shows where, so that
a site can look at its own films before trusting the zones or the CTR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["OVERLAY_SIZE", "Overlay", "overlay", "write_overlays"]

OVERLAY_SIZE = 256
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Overlay:
    """One film at OVERLAY_SIZE² with its reading's masks and, if any, the outline."""

    name: str
    pixels: npt.NDArray[np.float32]
    right: Bool
    left: Bool
    heart: Bool
    outline: Bool | None
    dice: float | None


def _small(array: npt.NDArray[np.generic], order: int) -> npt.NDArray[np.float32]:
    from PIL import Image as PILImage

    image = PILImage.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    resample = PILImage.Resampling.BILINEAR if order else PILImage.Resampling.NEAREST
    return np.asarray(image.resize((OVERLAY_SIZE, OVERLAY_SIZE), resample), dtype=np.float32)


def overlay(
    name: str,
    pixels: npt.NDArray[np.generic],
    right: Bool,
    left: Bool,
    heart: Bool,
    outline: Bool | None = None,
    dice: float | None = None,
) -> Overlay:
    """A film and its masks shrunk for the grid (the masks by nearest neighbour)."""
    return Overlay(
        name=name,
        pixels=_small(np.asarray(pixels), 1),
        right=_small(right, 0) > 0.5,
        left=_small(left, 0) > 0.5,
        heart=_small(heart, 0) > 0.5,
        outline=None if outline is None else _small(outline, 0) > 0.5,
        dice=dice,
    )


def write_overlays(items: list[Overlay], path: Path, *, title: str, columns: int = 4) -> Path:
    """Draw ``items`` as a grid into the PNG ``path`` (written whole, then moved into place)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not items:
        raise ValueError("expected at least one film to draw, got none")
    columns = min(columns, len(items))
    rows = math.ceil(len(items) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.25 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, item in zip(axes.ravel(), items, strict=False):
        ax.imshow(item.pixels, cmap="gray")
        for mask, colour in ((item.right, "#e41a1c"), (item.left, "#4daf4a"),
                             (item.heart, "#377eb8")):  # fmt: skip
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)
        if item.outline is not None and item.outline.any():
            ax.contour(item.outline.astype(float), levels=[0.5], colors=["white"],
                       linewidths=1.0, linestyles="dashed")  # fmt: skip
        caption = item.name if item.dice is None else f"{item.name}  Dice {item.dice:.2f}"
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fig.savefig(partial, format="png", dpi=80)
    plt.close(fig)
    partial.replace(path)
    return path
