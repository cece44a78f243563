"""The reference network: a compact residual CNN with one head per task (plain PyTorch).

Input: one channel, ``INPUT_SIZE`` square, standardised. Outputs, in this order (the ONNX
graph's outputs have the same names):

- ``presence``  (B, findings) logits: each finding's heatmap pooled by log-sum-exp plus a
  global term, so a positive call must point somewhere (class-activation style);
- ``zones``     (B, findings, 6) logits, presence per Brixia zone A–F;
- ``heatmaps``  (B, findings, HEATMAP_SIZE, HEATMAP_SIZE) logits;
- ``regression`` (B, regressions), encoded as in ``spec.REGRESSIONS``;
- ``view``      (B, 3) logits (PA, AP, lateral);
- ``embedding`` (B, width) pooled features, for out-of-distribution scoring.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from radloop.models.reference.spec import FINDINGS, INPUT_SIZE, REGRESSIONS, VIEWS, ZONES

__all__ = ["OUTPUTS", "NetworkConfig", "ReferenceNetwork"]

OUTPUTS: tuple[str, ...] = ("presence", "zones", "heatmaps", "regression", "view", "embedding")


@dataclass(frozen=True)
class NetworkConfig:
    """Widths of the stem and the four stages, blocks per stage, the spatial head's width.

    ``input_size`` (a multiple of 32) fixes the stride-32 grid the spatial head flattens.
    """

    widths: tuple[int, int, int, int, int] = (16, 32, 48, 96, 160)
    blocks: tuple[int, int, int, int] = (1, 2, 2, 1)
    pyramid: int = 64
    head: int = 256
    lse_r: float = 4.0
    input_size: int = INPUT_SIZE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conv(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = _conv(cin, cout, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip: nn.Module = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.b(self.a(x)) + self.skip(x))


class ReferenceNetwork(nn.Module):
    """Residual stages at strides 4, 8, 16 and 32, a small feature pyramid, and the heads."""

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or NetworkConfig()
        w, nb = config.widths, config.blocks
        nf, nz, nr = len(FINDINGS), len(ZONES), len(REGRESSIONS)
        self.stem = _conv(1, w[0], 2)
        stages = []
        cin = w[0]
        for i in range(4):
            layers: list[nn.Module] = [_Block(cin, w[i + 1], 2)]
            layers += [_Block(w[i + 1], w[i + 1], 1) for _ in range(nb[i] - 1)]
            stages.append(nn.Sequential(*layers))
            cin = w[i + 1]
        self.stages = nn.ModuleList(stages)
        p = config.pyramid
        self.lateral = nn.ModuleList(nn.Conv2d(w[i], p, 1) for i in (2, 3, 4))
        self.heat = nn.Sequential(_conv(p, p), nn.Conv2d(p, nf, 1))
        self.reduce = _conv(w[4], 32, k=1)
        grid = config.input_size // 32
        self.spatial = nn.Sequential(nn.Flatten(), nn.Linear(32 * grid * grid, config.head),
                                     nn.ReLU(True), nn.Dropout(0.1))  # fmt: skip
        self.global_presence = nn.Linear(w[4], nf)
        self.zone_head = nn.Linear(config.head, nf * nz)
        self.regression_head = nn.Linear(config.head + w[4], nr)
        self.view_head = nn.Linear(w[4], len(VIEWS))
        self.nf, self.nz = nf, nz

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        s8, s16, s32 = features[1], features[2], features[3]
        top = self.lateral[2](s32)
        mid = self.lateral[1](s16) + functional.interpolate(top, scale_factor=2.0, mode="nearest")
        fine = self.lateral[0](s8) + functional.interpolate(mid, scale_factor=2.0, mode="nearest")
        heatmaps = self.heat(fine)
        r = self.config.lse_r
        flat = heatmaps.flatten(2)
        pooled = (torch.logsumexp(r * flat, dim=2) - math.log(int(flat.shape[2]))) / r
        embedding = s32.mean(dim=(2, 3))
        presence = pooled + self.global_presence(embedding)
        spatial = self.spatial(self.reduce(s32))
        zones = self.zone_head(spatial).view(-1, self.nf, self.nz)
        regression = self.regression_head(torch.cat([spatial, embedding], dim=1))
        view = self.view_head(embedding)
        return presence, zones, heatmaps, regression, view, embedding
