"""What the reference model predicts: finding, zone, regression and view order; input geometry.

This module needs only numpy, so the runtime (onnxruntime) and the trainer (torch) share it.
"""

from __future__ import annotations

from radloop.vocabulary import REFERENCE_FINDINGS, Zone

__all__ = [
    "FIELD_MM",
    "FINDINGS",
    "HEATMAP_SIZE",
    "INPUT_SIZE",
    "REGRESSIONS",
    "VIEWS",
    "ZONED",
    "ZONES",
    "Regression",
]

# One head per finding type of the vocabulary's reference list (the lab inserts the same).
FINDINGS: tuple[str, ...] = REFERENCE_FINDINGS
ZONES: tuple[Zone, ...] = tuple(Zone)
# Findings whose truth lists lung zones (devices and the heart have none).
ZONED: tuple[str, ...] = tuple(
    c for c in FINDINGS if c not in {"cardiomegaly", "endotracheal_tube", "central_venous_catheter"}
)
VIEWS: tuple[str, ...] = ("PA", "AP", "LL")

# Network input, pixels square (a multiple of 32): 224 px is 1.6 mm per pixel over the field.
# A 320 px run (1.125 mm, 14 epochs) raised the benchmark's macro AUROC only from 0.816 to
# 0.830 and doubled latency, so the shipped recipe stays at 224 (docs/benchmarks.md).
INPUT_SIZE = 224
HEATMAP_SIZE = INPUT_SIZE // 8  # heatmap side (the stride-8 grid)
FIELD_MM = 360.0  # the detector field the input covers when pixel spacing is known


class Regression:
    """A regression target: its name, the finding it belongs to (None: always) and scaling.

    The network predicts ``(value - offset) / scale``.
    """

    def __init__(self, name: str, finding: str | None, offset: float, scale: float) -> None:
        self.name, self.finding, self.offset, self.scale = name, finding, offset, scale

    def encode(self, value: float) -> float:
        return (value - self.offset) / self.scale

    def decode(self, value: float) -> float:
        return value * self.scale + self.offset


REGRESSIONS: tuple[Regression, ...] = (
    Regression("ctr", None, 0.5, 0.1),
    Regression("ett_tip_mm", "endotracheal_tube", 40.0, 30.0),
    Regression("cvc_tip_mm", "central_venous_catheter", 0.0, 30.0),
    Regression("nodule_mm", "nodule", 15.0, 8.0),
    Regression("mass_mm", "mass", 43.0, 10.0),
    Regression("pneumothorax_rim_mm", "pneumothorax", 20.0, 10.0),
    Regression("effusion_ml", "pleural_effusion", 600.0, 400.0),
    Regression("consolidation_ml", "consolidation", 300.0, 300.0),
    Regression("edema_hu", "edema", 200.0, 80.0),
)
