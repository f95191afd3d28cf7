"""The IoU-family losses of *matched pairs* of boxes: ``1 - IoU``, GIoU, DIoU, CIoU, EIoU.

Each loss is ``1 - similarity`` of the elementwise overlap in :mod:`ssabnet.ops.overlaps`
(``pred_boxes`` and ``gt_boxes`` are broadcastable ``Tensor[..., 4]`` xyxy boxes; the result is
``Tensor[...]``, or a scalar with ``reduction="mean"|"sum"``). The tests check them against
``torchvision.ops``' elementwise losses; ``ssabnet.ops.overlaps`` says why the overlaps are
computed there rather than by torchvision.

References:
    GIoU: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.
    DIoU/CIoU: Zheng et al., "Distance-IoU Loss", AAAI 2020.
    EIoU: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022.
"""

from __future__ import annotations

from torch import Tensor

from ssabnet.ops.overlaps import (
    EPS,
    box_iou_pairs,
    complete_box_iou_pairs,
    distance_box_iou_pairs,
    efficient_box_iou_pairs,
    generalized_box_iou_pairs,
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
