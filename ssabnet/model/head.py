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
from ssabnet.ops.anchors import make_anchors


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
