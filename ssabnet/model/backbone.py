"""CSP backbone (YOLOv8 family) returning the C2..C5 feature maps at strides 4, 8, 16, 32."""

from __future__ import annotations

import torch
from torch import nn

from ssabnet.model.blocks import SPPF, C2f, ConvBNAct, scale_channels, scale_depth

# Reference (width = depth = 1) channels of the stem and of C2..C5, and C2f repeats of C2..C5.
_BASE_CHANNELS = (64, 128, 256, 512, 1024)
_BASE_REPEATS = (3, 6, 6, 3)


class CSPBackbone(nn.Module):
    """Stem (stride 2) then four stages ``strided ConvBNAct -> C2f`` and SPPF on the last.

    Args:
        width: channel multiplier (YOLOv8: n 0.25, s 0.5, m 0.75).
        depth: C2f repeat multiplier (n/s 0.33, m 0.67).
        max_channels: cap applied before the width multiplier (n/s 1024, m 768).

    ``forward(images: Tensor[B, 3, H, W]) -> list[Tensor]`` of four maps C2..C5 with
    ``self.out_channels[i]`` channels and spatial size ``H / self.strides[i]``.
    """

    strides = (4, 8, 16, 32)

    def __init__(self, width: float, depth: float, max_channels: int) -> None:
        super().__init__()
        channels = [scale_channels(c, width, max_channels) for c in _BASE_CHANNELS]
        self.out_channels = tuple(channels[1:])
        self.stem = ConvBNAct(3, channels[0], 3, stride=2)
        self.stages = nn.ModuleList()
        for i, repeats in enumerate(_BASE_REPEATS):
            layers = [
                ConvBNAct(channels[i], channels[i + 1], 3, stride=2),
                C2f(channels[i + 1], channels[i + 1], scale_depth(repeats, depth), shortcut=True),
            ]
            if i == len(_BASE_REPEATS) - 1:
                layers.append(SPPF(channels[i + 1], channels[i + 1]))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
