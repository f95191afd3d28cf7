"""All box-format conversions and box geometry of SSABNet, in one place.

Inside SSABNet a box is always ``xyxy`` in absolute pixels of the image it refers to
(``x1, y1, x2, y2`` with ``x2 >= x1``). Conversions happen only at the edges, and every
function names the formats it converts between. Whatever ``torchvision.ops`` already
provides is called, not rewritten: tensors are converted by ``torchvision.ops.box_convert`` and
the tests check :func:`pairwise_overlap` against ``torchvision.ops.box_iou``; numpy arrays (the
evaluation protocols, in float64) take the same formulas here. The elementwise overlaps of matched
pairs (IoU family, NWD, SABL quality) are in :mod:`ssabnet.ops.overlaps`, anchors and DFL decoding
in :mod:`ssabnet.ops.anchors`.

Functions accept ``numpy.ndarray`` or ``torch.Tensor`` of shape ``[..., 4]`` and return the
same type.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_convert

ArrayLike = np.ndarray | torch.Tensor


def _stack(parts: list, like: ArrayLike) -> ArrayLike:
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def boxes_xywh_to_xyxy(boxes: ArrayLike) -> ArrayLike:
    """``[x_left, y_top, width, height]`` (VisDrone, UAVDT, COCO) -> ``[x1, y1, x2, y2]``."""
    if isinstance(boxes, torch.Tensor):
        return box_convert(boxes, "xywh", "xyxy")
    x, y, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x, y, x + w, y + h], boxes)


def boxes_xyxy_to_xywh(boxes: ArrayLike) -> ArrayLike:
    """``[x1, y1, x2, y2]`` -> ``[x_left, y_top, width, height]``."""
    if isinstance(boxes, torch.Tensor):
        return box_convert(boxes, "xyxy", "xywh")
    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x1, y1, x2 - x1, y2 - y1], boxes)


def boxes_xyxy_to_cxcywh(boxes: ArrayLike) -> ArrayLike:
    """``[x1, y1, x2, y2]`` -> ``[centre_x, centre_y, width, height]``."""
    if isinstance(boxes, torch.Tensor):
        return box_convert(boxes, "xyxy", "cxcywh")
    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], boxes)


def boxes_cxcywh_to_xyxy(boxes: ArrayLike) -> ArrayLike:
    """``[centre_x, centre_y, width, height]`` -> ``[x1, y1, x2, y2]``."""
    if isinstance(boxes, torch.Tensor):
        return box_convert(boxes, "cxcywh", "xyxy")
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], boxes)


def boxes_xyxy_to_relative_xywh(boxes: ArrayLike, width: float, height: float) -> ArrayLike:
    """Pixels ``xyxy`` -> FiftyOne's relative ``[x, y, w, h]`` in ``[0, 1]`` of the image size."""
    xywh = boxes_xyxy_to_xywh(boxes)
    return _stack(
        [xywh[..., 0] / width, xywh[..., 1] / height, xywh[..., 2] / width, xywh[..., 3] / height],
        boxes,
    )


def ltrb_to_boxes_xyxy(anchor_points: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """Distances ``(left, top, right, bottom)`` from anchor points -> ``xyxy`` boxes.

    Args:
        anchor_points: ``Tensor[..., 2]`` ``(x, y)`` in pixels.
        ltrb: ``Tensor[..., 4]`` non-negative distances in pixels (broadcast against points).
    """
    xy1 = anchor_points - ltrb[..., :2]
    xy2 = anchor_points + ltrb[..., 2:]
    return torch.cat([xy1, xy2], dim=-1)


def boxes_xyxy_to_ltrb(anchor_points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ltrb_to_boxes_xyxy`: distances from ``anchor_points`` to box sides."""
    left_top = anchor_points - boxes[..., :2]
    right_bottom = boxes[..., 2:] - anchor_points
    return torch.cat([left_top, right_bottom], dim=-1)


def box_area(boxes: ArrayLike) -> ArrayLike:
    """Area ``w * h`` of ``xyxy`` boxes (negative sizes are clamped to 0)."""
    if isinstance(boxes, torch.Tensor):
        w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
        h = (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    else:
        w = np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
        h = np.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return w * h


def box_size(boxes: ArrayLike) -> ArrayLike:
    """Absolute object size ``sqrt(w * h)`` in pixels, the quantity size buckets use."""
    area = box_area(boxes)
    return area.sqrt() if isinstance(area, torch.Tensor) else np.sqrt(area)


def clip_boxes_xyxy(boxes: ArrayLike, width: float, height: float) -> ArrayLike:
    """Clip ``xyxy`` boxes to ``[0, width] x [0, height]``."""
    if isinstance(boxes, torch.Tensor):
        out = boxes.clone()
        out[..., 0::2] = out[..., 0::2].clamp(0, width)
        out[..., 1::2] = out[..., 1::2].clamp(0, height)
        return out
    out = boxes.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, width)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, height)
    return out


def box_intersection(boxes1: ArrayLike, boxes2: ArrayLike) -> ArrayLike:
    """Intersection areas of every pair, ``[N, M]``, of ``xyxy`` boxes ``[N, 4]`` and ``[M, 4]``.

    numpy inputs are computed in float64 (as the evaluation protocols need), tensors in their own
    dtype. Disjoint and reversed boxes give 0.
    """
    if isinstance(boxes1, torch.Tensor):
        lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
        rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        return wh[..., 0] * wh[..., 1]
    boxes1 = np.asarray(boxes1, dtype=np.float64)
    boxes2 = np.asarray(boxes2, dtype=np.float64)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    return wh[..., 0] * wh[..., 1]


def intersection_over_area(boxes: ArrayLike, regions: ArrayLike) -> ArrayLike:
    """Fraction of each box's own area covered by each region, ``[N, K]``.

    Used for ignore regions: a box with ``>= 0.5`` of its area inside one region is dropped
    (VisDrone convention). Zero-area boxes give 0.
    """
    inter = box_intersection(boxes, regions)
    if isinstance(boxes, torch.Tensor):
        area = box_area(boxes)[:, None]
        return torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(inter))
    area = box_area(np.asarray(boxes, dtype=np.float64))[:, None]
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)


def pairwise_overlap(
    det_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    gt_crowd: np.ndarray,
    *,
    det_areas: np.ndarray | None = None,
    gt_areas: np.ndarray | None = None,
) -> np.ndarray:
    """COCO's bbox overlap ``float64[D, G]``: IoU, or intersection / detection area for crowd GT.

    Without crowd ground truth this is ``torchvision.ops.box_iou`` in float64 (the tests check
    it); a crowd (ignore) ground truth may absorb several detections, so its overlap is the
    fraction of the detection inside it. Pairs with an empty union give 0.

    Args:
        det_boxes: ``[D, 4]`` xyxy pixels; ``gt_boxes``: ``[G, 4]`` xyxy pixels.
        gt_crowd: ``bool[G]``.
        det_areas, gt_areas: the boxes' areas when the protocol defines them otherwise (the
            VisDrone toolkit multiplies its ``xywh`` widths and heights); default
            :func:`box_area`.
    """
    inter = box_intersection(det_boxes, gt_boxes)
    # Areas in the boxes' own dtype (float32 predictions keep float32 areas, as before).
    det_area = box_area(det_boxes) if det_areas is None else det_areas
    gt_area = box_area(gt_boxes) if gt_areas is None else gt_areas
    det_area = det_area[:, None]
    union = np.where(gt_crowd[None, :], det_area, det_area + gt_area[None, :] - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
