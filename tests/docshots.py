"""Screenshots for the docs: a browser test's PNG reduced to 256 colours (the same pixels,
an adaptive palette), which keeps a 1500 x 900 page of the workstation under 300 KB."""

from __future__ import annotations

from pathlib import Path

DOCS_LIMIT = 300_000
"""The most bytes a screenshot in docs/images/ may take."""


def docs_copy(shot: Path, target: Path) -> Path:
    """``shot`` as an optimised 256-colour PNG at ``target``; refuses one over DOCS_LIMIT."""
    from PIL import Image

    with Image.open(shot) as image:
        image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(
            target, optimize=True
        )
    size = target.stat().st_size
    if size >= DOCS_LIMIT:
        raise ValueError(f"{target}: expected a PNG under {DOCS_LIMIT} bytes, got {size}")
    return target
