"""Decoupled anchor-free detection head with distribution focal regression (DFL).

YOLOv8-style (after TOOD, Feng et al. ICCV 2021, and GFL, Li et al. NeurIPS 2020): per level a
box branch (two 3x3 ConvBNAct, 1x1 to ``4 * reg_max`` bin logits) and a classification branch
(two 3x3 ConvBNAct, 1x1 to ``num_classes`` logits). One anchor point per cell, at the cell centre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ssabnet.model.blocks import ConvBNAct
from ssabnet.ops.boxes import ltrb_to_boxes_xyxy


def make_anchors(
    feature_sizes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor points at cell centres, levels fine -> coarse, row-major inside a level.

    Args:
        feature_sizes: ``(H_l, W_l)`` per level.
        strides: stride in input pixels per level.

    Returns:
        ``anchor_points``: ``Tensor[A, 2]`` ``(x, y)`` = ``((col + 0.5) * s, (row + 0.5) * s)`` in
        input pixels; ``anchor_strides``: ``Tensor[A]``; ``A = sum_l H_l * W_l``.
    """
    points, point_strides = [], []
    for (height, width), stride in zip(feature_sizes, strides, strict=True):
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2))
        point_strides.append(
            torch.full((height * width,), float(stride), device=device, dtype=dtype)
        )
    return torch.cat(points), torch.cat(point_strides)


def dfl_expectation(box_logits: torch.Tensor) -> torch.Tensor:
    """Expected distance under the softmax over DFL bins.

    ``Tensor[..., reg_max] -> Tensor[...]`` in bin (stride) units, in ``[0, reg_max - 1]``.
    """
    bins = torch.arange(box_logits.shape[-1], device=box_logits.device, dtype=box_logits.dtype)
    return (box_logits.softmax(dim=-1) * bins).sum(dim=-1)


def decode_boxes(
    box_logits: torch.Tensor, anchor_points: torch.Tensor, anchor_strides: torch.Tensor
) -> torch.Tensor:
    """DFL bin logits -> ``xyxy`` boxes in input pixels.

    Args:
        box_logits: ``Tensor[B, A, 4, reg_max]`` logits over distances (l, t, r, b) in stride
            units, bins ``0..reg_max-1``.
        anchor_points: ``Tensor[A, 2]`` ``(x, y)`` input pixels.
        anchor_strides: ``Tensor[A]`` pixels.

    Returns:
        ``Tensor[B, A, 4]`` ``(x1, y1, x2, y2)`` input pixels: the expected distances times the
        stride, laid out around the anchor point.
    """
    ltrb = dfl_expectation(box_logits) * anchor_strides[:, None]
    return ltrb_to_boxes_xyxy(anchor_points, ltrb)


class DetectHead(nn.Module):
    """Decoupled head over the neck outputs.

    Args:
        in_channels: channels per level (fine -> coarse).
        strides: stride per level.
        num_classes: number of classes ``C``.
        reg_max: DFL bins per side (16: distances up to 15 strides).

    ``forward(features)`` returns the contract dict: ``cls_logits`` ``Tensor[B, A, C]``
    (pre-sigmoid), ``box_logits`` ``Tensor[B, A, 4, reg_max]``, ``anchor_points`` ``Tensor[A, 2]``,
    ``anchor_strides`` ``Tensor[A]``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        reg_max: int = 16,
    ) -> None:
        super().__init__()
        self.strides = tuple(int(s) for s in strides)
        self.num_classes, self.reg_max = num_classes, reg_max
        # YOLOv8 branch widths, derived from the finest level.
        box_hidden = max(16, in_channels[0] // 4, 4 * reg_max)
        cls_hidden = max(in_channels[0], min(num_classes, 100))
        self.box_branches = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(c, box_hidden, 3),
                ConvBNAct(box_hidden, box_hidden, 3),
                nn.Conv2d(box_hidden, 4 * reg_max, 1),
            )
            for c in in_channels
        )
        self.cls_branches = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(c, cls_hidden, 3),
                ConvBNAct(cls_hidden, cls_hidden, 3),
                nn.Conv2d(cls_hidden, num_classes, 1),
            )
            for c in in_channels
        )
        self.reset_biases()

    def reset_biases(self, image_size: int = 640) -> None:
        """YOLOv8's prior: box bins equal (bias 1), class bias ``log(5 / C / (size / s)^2)``,
        i.e. about 5 objects per ``image_size`` image spread over the level's cells, so the
        initial sigmoid is tiny (~1e-4 at stride 8) and the focal/BCE loss is not swamped."""
        for branch in self.box_branches:
            nn.init.constant_(branch[-1].bias, 1.0)
        for branch, stride in zip(self.cls_branches, self.strides, strict=True):
            prior = 5.0 / self.num_classes / (image_size / stride) ** 2
            nn.init.constant_(branch[-1].bias, math.log(prior))

    def forward(self, features: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = features[0].shape[0]
        cls_per_level, box_per_level = [], []
        for x, box_branch, cls_branch in zip(
            features, self.box_branches, self.cls_branches, strict=True
        ):
            cls_per_level.append(cls_branch(x).flatten(2))  # [B, C, H*W]
            box = box_branch(x)  # [B, 4*reg_max, H, W], channels ordered (side, bin)
            box_per_level.append(box.view(batch, 4, self.reg_max, -1))
        cls_logits = torch.cat(cls_per_level, dim=2).permute(0, 2, 1).contiguous()
        box_logits = torch.cat(box_per_level, dim=3).permute(0, 3, 1, 2).contiguous()
        anchor_points, anchor_strides = make_anchors(
            [tuple(x.shape[-2:]) for x in features],
            self.strides,
            device=features[0].device,
            dtype=features[0].dtype,
        )
        return {
            "cls_logits": cls_logits,
            "box_logits": box_logits,
            "anchor_points": anchor_points,
            "anchor_strides": anchor_strides,
        }
