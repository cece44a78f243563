"""Draw a study's image with its truth outlined, so a person can check where findings are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from radloop.errors import InputError

__all__ = ["draw_truth", "outline"]

_COLOURS = [
    (255, 80, 80), (80, 200, 255), (255, 200, 40), (120, 255, 120), (255, 120, 255),
    (255, 150, 60), (160, 160, 255), (60, 255, 200), (255, 255, 255), (200, 120, 80),
]  # fmt: skip


def outline(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels of a mask with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _label(finding: dict[str, Any], image: dict[str, Any]) -> str:
    parts = [finding["code"].replace("_", " ")]
    if finding.get("side"):
        parts.append(finding["side"])
    if finding.get("size_mm"):
        parts.append(f"{finding['size_mm']:g} mm")
    if finding.get("tip_distance_mm") is not None:
        parts.append(f"tip {finding['tip_distance_mm']:+g} mm")
    if finding["code"] == "cardiomegaly" and "ctr" in image:
        parts.append(f"CTR {image['ctr']:.2f}")
    if finding.get("change"):
        parts.append(finding["change"])
    return ", ".join(parts)


def draw_truth(study: Path, out: Path, view: str | None = None) -> Path:
    """Write a PNG of the study's first (or named) image with masks, boxes and labels."""
    truth_path = study / "truth.json"
    if not truth_path.is_file():
        raise InputError("a synthetic study folder with truth.json", f"{study}", source=study)
    truth = json.loads(truth_path.read_text())
    images = [i for i in truth["images"] if view is None or i["view"] == view]
    if not images:
        raise InputError(f"an image of view {view}", "none in truth.json", source=truth_path)
    image = images[0]
    grey = np.asarray(Image.open(study / image["preview"]).convert("L"))
    rgb = np.repeat(grey[:, :, None], 3, axis=2).copy()
    by_id = {f["id"]: f for f in truth["findings"]}
    legend = []
    for k, entry in enumerate(image["findings"]):
        if not entry.get("mask"):
            continue
        colour = _COLOURS[k % len(_COLOURS)]
        mask = np.asarray(Image.open(study / entry["mask"])) > 0
        rgb[outline(mask)] = colour
        legend.append((colour, entry, by_id.get(entry["id"], entry)))
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    size = max(10, canvas.height // 40)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        font = ImageFont.load_default()
    for i, (colour, entry, finding) in enumerate(legend):
        c0, r0, c1, r1 = entry["box"]
        draw.rectangle((c0, r0, c1 - 1, r1 - 1), outline=colour)
        draw.text((4, canvas.height - (len(legend) - i) * (size + 3) - 4),
                  f"{entry['id']}: {_label(finding, image)}", fill=colour, font=font)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
