"""Anchor points and DFL box decoding: the box geometry of the detection head.

One anchor point per feature-map cell, at the cell centre, levels fine -> coarse. The head
predicts, per anchor and side (left, top, right, bottom), logits over ``reg_max`` distance bins in
stride units (GFL, Li et al. NeurIPS 2020); :func:`decode_boxes` turns them into ``xyxy`` boxes in
input pixels. The model, the criterion, post-processing and export all decode through here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
