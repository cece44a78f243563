"""torchxrayvision's DenseNet-121 in plain torch, with its layer names, for conversion to ONNX.

torchxrayvision (Cohen et al., "TorchXRayVision: A library of chest X-ray datasets and
models", MIDL 2022; Apache-2.0) trains DenseNet-121 classifiers (Huang et al., CVPR 2017) on
public real chest X-ray collections. Its model code is a variant of torchvision's DenseNet with
one input channel, 18 outputs and an optional operating-point normalisation (``op_threshs``).
This module writes the same architecture with the same parameter and buffer names, so that a
state dict saved from ``xrv.models.DenseNet`` loads here unchanged, without torchvision or
torchxrayvision installed. It needs the ``train`` extra's torch.

Only the inference path is kept: the network up to the classifier's logits. The sigmoid and the
operating-point normalisation are applied by radloop's ONNX verifier from the sidecar, so the
exported graph is the plain network.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "XRV_ALL_PATHOLOGIES",
    "XRV_RANGE",
    "XRV_SIZE",
    "XrvDenseNet",
]

XRV_ALL_PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)  # fmt: skip
"""The outputs of torchxrayvision's ``densenet121-res224-all`` (its ``default_pathologies``)."""
XRV_SIZE = 224
"""Its input: one channel, 224 x 224 pixels (a centre crop of the film, resized)."""
XRV_RANGE = (-1024.0, 1024.0)
"""Its intensity scale: the image's 0..max mapped linearly onto -1024..1024
(``xrv.datasets.normalize``)."""


class _DenseLayer(nn.Sequential):
    def __init__(self, n_in: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(n_in))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module(
            "conv1", nn.Conv2d(n_in, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        )
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth_rate))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module(
            "conv2",
            nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = x
        for module in self:
            new = module(new)
        return torch.cat([x, new], 1)


class _DenseBlock(nn.Sequential):
    def __init__(self, n_layers: int, n_in: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(n_in + i * growth_rate, growth_rate, bn_size)
            )


class _Transition(nn.Sequential):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(n_in))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(n_in, n_out, kernel_size=1, stride=1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class XrvDenseNet(nn.Module):
    """DenseNet-121 as ``xrv.models.DenseNet`` builds it (growth 32, blocks 6-12-24-16, 64
    initial features, one input channel); ``forward`` returns the classifier's logits."""

    def __init__(
        self,
        num_classes: int = len(XRV_ALL_PATHOLOGIES),
        *,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    (
                        "conv0",
                        nn.Conv2d(
                            in_channels,
                            num_init_features,
                            kernel_size=7,
                            stride=2,
                            padding=3,
                            bias=False,
                        ),
                    ),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        n = num_init_features
        for i, n_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}", _DenseBlock(n_layers, n, bn_size, growth_rate)
            )
            n += n_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(n, n // 2))
                n //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(n))
        self.classifier = nn.Linear(n, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.Linear):
                nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.features(x))
        pooled = F.adaptive_avg_pool2d(features, (1, 1)).flatten(1)
        logits: torch.Tensor = self.classifier(pooled)
        return logits
