"""The IoU family for *matched pairs* of boxes: IoU, GIoU, DIoU, CIoU, EIoU and their losses.

Every function here is elementwise: ``pred_boxes`` and ``gt_boxes`` are ``Tensor[..., 4]`` xyxy
boxes (any unit, but the SABL pixel constants need input pixels) that broadcast against each
other, and the result is ``Tensor[...]`` with one value per pair. ``torchvision.ops`` offers
these quantities as *pairwise* ``[N, M]`` matrices (``box_iou``, ``generalized_box_iou``,
``distance_box_iou``, ``complete_box_iou``) and as elementwise losses; the tests check our
values against both. We still compute them ourselves because (1) the training hot path needs the
elementwise form for the matched pairs only, (2) SABL reuses the intermediate terms (IoU, centre
distance, enclosing box, aspect term) and (3) torchvision divides by the box height in the CIoU
aspect term, which gives NaN for zero-height boxes; here every degenerate case stays finite.

Numerics: inputs of any float dtype are computed in float32 (float64 stays float64) and the
result has that dtype; widths and heights are clamped to ``>= 0`` (a box with ``x2 < x1`` has
zero area) and every denominator carries ``eps``.

References:
    GIoU: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.
    DIoU/CIoU: Zheng et al., "Distance-IoU Loss", AAAI 2020.
    EIoU: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

#: Default denominator guard, large enough for float32.
EPS = 1e-7


class PairGeometry(NamedTuple):
    """Shared intermediate terms of a batch of matched box pairs (all ``Tensor[...]``)."""

    iou: Tensor  # intersection over union
    union: Tensor  # union area (+ eps)
    pred_w: Tensor
    pred_h: Tensor
    gt_w: Tensor
    gt_h: Tensor
    centre_dx: Tensor  # pred centre - gt centre
    centre_dy: Tensor
    enclose_w: Tensor  # smallest enclosing box
    enclose_h: Tensor


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (half inputs are upcast)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def check_boxes(pred_boxes: Tensor, gt_boxes: Tensor) -> None:
    """Raise ``ValueError`` unless both are ``Tensor[..., 4]`` (broadcastable) boxes."""
    if pred_boxes.shape[-1:] != (4,) or gt_boxes.shape[-1:] != (4,):
        raise ValueError(
            f"boxes must be Tensor[..., 4] xyxy, got pred {tuple(pred_boxes.shape)} and "
            f"gt {tuple(gt_boxes.shape)}"
        )


def pair_geometry(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> PairGeometry:
    """Intermediate terms shared by every IoU-family loss and SABL (see :class:`PairGeometry`).

    Args:
        pred_boxes: ``Tensor[..., 4]`` xyxy.
        gt_boxes: ``Tensor[..., 4]`` xyxy, broadcastable against ``pred_boxes``.
    """
    check_boxes(pred_boxes, gt_boxes)
    dtype = compute_dtype(pred_boxes, gt_boxes)
    px1, py1, px2, py2 = pred_boxes.to(dtype).unbind(-1)
    gx1, gy1, gx2, gy2 = gt_boxes.to(dtype).unbind(-1)
    pred_w, pred_h = (px2 - px1).clamp(min=0), (py2 - py1).clamp(min=0)
    gt_w, gt_h = (gx2 - gx1).clamp(min=0), (gy2 - gy1).clamp(min=0)
    # A reversed box (x2 < x1) has zero width here, so zero area and zero intersection.
    inter = (torch.minimum(px2, gx2) - torch.maximum(px1, gx1)).clamp(min=0) * (
        torch.minimum(py2, gy2) - torch.maximum(py1, gy1)
    ).clamp(min=0)
    union = pred_w * pred_h + gt_w * gt_h - inter + eps
    # The enclosing box spans all four coordinates, so it contains both centres even for a
    # reversed box: then rho <= c and rho^2 / c^2 (DIoU/CIoU/EIoU/SABL) and its gradient stay
    # bounded (found by the hypothesis test: pred (0,0,0,0) vs gt (0,1,0,0) gave -inf in fp16).
    # For ordinary boxes (x1 <= x2) this is the usual enclosing box.
    enclose_w = torch.maximum(torch.maximum(px1, px2), torch.maximum(gx1, gx2)) - torch.minimum(
        torch.minimum(px1, px2), torch.minimum(gx1, gx2)
    )
    enclose_h = torch.maximum(torch.maximum(py1, py2), torch.maximum(gy1, gy2)) - torch.minimum(
        torch.minimum(py1, py2), torch.minimum(gy1, gy2)
    )
    return PairGeometry(
        iou=inter / union,
        union=union,
        pred_w=pred_w,
        pred_h=pred_h,
        gt_w=gt_w,
        gt_h=gt_h,
        centre_dx=(px1 + px2 - gx1 - gx2) / 2,
        centre_dy=(py1 + py2 - gy1 - gy2) / 2,
        enclose_w=enclose_w,
        enclose_h=enclose_h,
    )


def centre_distance_ratio(g: PairGeometry, eps: float = EPS) -> Tensor:
    """DIoU penalty ``rho^2(centres) / c^2`` with ``c`` the enclosing-box diagonal."""
    rho2 = g.centre_dx**2 + g.centre_dy**2
    return rho2 / (g.enclose_w**2 + g.enclose_h**2 + eps)


def aspect_term(g: PairGeometry, eps: float = EPS, detach_alpha: bool = True) -> Tensor:
    """CIoU's ``alpha * v`` with ``v = 4/pi^2 (atan(w_gt/h_gt) - atan(w/h))^2``.

    ``alpha = v / (1 - IoU + v)`` is a trade-off weight, not differentiated through
    (``detach_alpha=True``, as in the CIoU paper's gradient and torchvision).
    """
    v = (4 / math.pi**2) * (
        torch.atan(g.gt_w / (g.gt_h + eps)) - torch.atan(g.pred_w / (g.pred_h + eps))
    ) ** 2
    alpha = v / (1 - g.iou + v + eps)
    if detach_alpha:
        alpha = alpha.detach()
    return alpha * v


def box_iou_pairs(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> Tensor:
    """IoU of matched pairs, ``Tensor[...]`` in ``[0, 1]``.

    A lean path (the assigner's hot loop): same value as ``pair_geometry(...).iou``, since a
    reversed box has zero area and zero intersection wherever it is anchored.
    """
    check_boxes(pred_boxes, gt_boxes)
    dtype = compute_dtype(pred_boxes, gt_boxes)
    px1, py1, px2, py2 = pred_boxes.to(dtype).unbind(-1)
    gx1, gy1, gx2, gy2 = gt_boxes.to(dtype).unbind(-1)
    inter = (torch.minimum(px2, gx2) - torch.maximum(px1, gx1)).clamp(min=0) * (
        torch.minimum(py2, gy2) - torch.maximum(py1, gy1)
    ).clamp(min=0)
    pred_area = (px2 - px1).clamp(min=0) * (py2 - py1).clamp(min=0)
    gt_area = (gx2 - gx1).clamp(min=0) * (gy2 - gy1).clamp(min=0)
    return inter / (pred_area + gt_area - inter + eps)


def generalized_box_iou_pairs(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> Tensor:
    """GIoU ``= IoU - (|C| - |A u B|) / |C|`` of matched pairs, in ``(-1, 1]``."""
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    enclose = g.enclose_w * g.enclose_h + eps
    return g.iou - (enclose - g.union) / enclose


def distance_box_iou_pairs(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> Tensor:
    """DIoU ``= IoU - rho^2 / c^2`` of matched pairs, in ``(-1, 1]``."""
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    return g.iou - centre_distance_ratio(g, eps)


def complete_box_iou_pairs(
    pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS, detach_alpha: bool = True
) -> Tensor:
    """CIoU ``= IoU - rho^2 / c^2 - alpha v`` of matched pairs (see :func:`aspect_term`)."""
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    return g.iou - centre_distance_ratio(g, eps) - aspect_term(g, eps, detach_alpha)


def efficient_box_iou_pairs(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> Tensor:
    """EIoU ``= IoU - rho^2/c^2 - (w - w_gt)^2 / C_w^2 - (h - h_gt)^2 / C_h^2``.

    ``C_w, C_h`` are the enclosing box's width and height (Zhang et al. 2022, Eq. 10).
    """
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    return (
        g.iou
        - centre_distance_ratio(g, eps)
        - (g.pred_w - g.gt_w) ** 2 / (g.enclose_w**2 + eps)
        - (g.pred_h - g.gt_h) ** 2 / (g.enclose_h**2 + eps)
    )


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """``"none"`` | ``"mean"`` (0 for an empty batch, keeping the graph) | ``"sum"``."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"unknown reduction {reduction!r}; expected 'none', 'mean' or 'sum'")


def iou_loss(pred_boxes: Tensor, gt_boxes: Tensor, *, reduction: str = "none", eps: float = EPS):
    """``1 - IoU`` of matched ``Tensor[..., 4]`` xyxy pairs."""
    return reduce_loss(1 - box_iou_pairs(pred_boxes, gt_boxes, eps), reduction)


def giou_loss(pred_boxes: Tensor, gt_boxes: Tensor, *, reduction: str = "none", eps: float = EPS):
    """``1 - GIoU`` of matched ``Tensor[..., 4]`` xyxy pairs, in ``[0, 2)``."""
    return reduce_loss(1 - generalized_box_iou_pairs(pred_boxes, gt_boxes, eps), reduction)


def diou_loss(pred_boxes: Tensor, gt_boxes: Tensor, *, reduction: str = "none", eps: float = EPS):
    """``1 - DIoU`` of matched ``Tensor[..., 4]`` xyxy pairs, in ``[0, 2)``."""
    return reduce_loss(1 - distance_box_iou_pairs(pred_boxes, gt_boxes, eps), reduction)


def ciou_loss(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    *,
    reduction: str = "none",
    eps: float = EPS,
    detach_alpha: bool = True,
) -> Tensor:
    """``1 - CIoU`` of matched ``Tensor[..., 4]`` xyxy pairs."""
    return reduce_loss(
        1 - complete_box_iou_pairs(pred_boxes, gt_boxes, eps, detach_alpha), reduction
    )


def eiou_loss(pred_boxes: Tensor, gt_boxes: Tensor, *, reduction: str = "none", eps: float = EPS):
    """``1 - EIoU`` of matched ``Tensor[..., 4]`` xyxy pairs."""
    return reduce_loss(1 - efficient_box_iou_pairs(pred_boxes, gt_boxes, eps), reduction)
