"""Generic convolutional building blocks of the YOLOv8-family backbone and neck.

Conv-BN-SiLU (:class:`ConvBNAct`), the residual :class:`Bottleneck`, the CSP block with two
convolutions and a split (:class:`C2f`) and spatial pyramid pooling - fast (:class:`SPPF`), as
described for YOLOv5/YOLOv8 (Jocher et al.) and YOLOv4 (Bochkovskiy et al. 2020). All blocks keep
the spatial size except a :class:`ConvBNAct` with ``stride > 1``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scale_channels(channels: int, width: float, max_channels: int, divisor: int = 8) -> int:
    """YOLOv8 width scaling: ``ceil(min(channels, max_channels) * width / divisor) * divisor``."""
    return int(math.ceil(min(channels, max_channels) * width / divisor) * divisor)


def scale_depth(repeats: int, depth: float) -> int:
    """YOLOv8 depth scaling: ``max(round(repeats * depth), 1)`` (a single block stays single)."""
    return max(round(repeats * depth), 1) if repeats > 1 else repeats


class ConvBNAct(nn.Module):
    """``Conv2d(bias=False) -> BatchNorm2d -> SiLU`` with "same" padding.

    Shapes: ``Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H/stride, W/stride]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        # YOLO-style BN hyper-parameters: small eps, faster running-stat momentum.
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 ConvBNAct with an optional residual (only when channels match)."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = ConvBNAct(in_channels, out_channels, 3)
        self.cv2 = ConvBNAct(out_channels, out_channels, 3)
        self.add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block (YOLOv8 "C2f"): 1x1 split into two halves, ``num_blocks`` Bottlenecks on the
    second half, every intermediate output concatenated, 1x1 fuse.

    Shapes: ``Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H, W]``. With
    ``project_input=False`` the caller has already applied the first 1x1 ConvBNAct (e.g. a fusion
    module that computes it without concatenating its inputs) and ``in_channels`` must be
    ``2 * self.hidden``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int = 1,
        shortcut: bool = False,
        expansion: float = 0.5,
        project_input: bool = True,
    ) -> None:
        super().__init__()
        self.hidden = int(out_channels * expansion)
        if project_input:
            self.cv1 = ConvBNAct(in_channels, 2 * self.hidden, 1)
        elif in_channels == 2 * self.hidden:
            self.cv1 = nn.Identity()
        else:
            raise ValueError(f"C2f without input projection needs {2 * self.hidden} channels")
        self.blocks = nn.ModuleList(
            Bottleneck(self.hidden, self.hidden, shortcut) for _ in range(num_blocks)
        )
        self.cv2 = ConvBNAct((2 + num_blocks) * self.hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.cv1(x).chunk(2, dim=1))
        for block in self.blocks:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling - fast: three chained ``k x k`` stride-1 max-pools (receptive
    fields k, 2k-1, 3k-2) concatenated with the input. Shape-preserving in H, W."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.cv1 = ConvBNAct(in_channels, hidden, 1)
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.cv2 = ConvBNAct(4 * hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0 = self.cv1(x)
        y1 = self.pool(y0)
        y2 = self.pool(y1)
        y3 = self.pool(y2)
        return self.cv2(torch.cat([y0, y1, y2, y3], dim=1))
