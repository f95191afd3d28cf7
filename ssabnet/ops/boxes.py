"""All box-format conversions and box geometry of SSABNet, in one place.

Inside SSABNet a box is always ``xyxy`` in absolute pixels of the image it refers to
(``x1, y1, x2, y2`` with ``x2 >= x1``). Conversions happen only at the edges, and every
function names the formats it converts between. Whatever ``torchvision.ops`` already
provides (``box_iou``, ``generalized_box_iou``, ``box_convert``...) is called, not rewritten.

Functions accept ``numpy.ndarray`` or ``torch.Tensor`` of shape ``[..., 4]`` and return the
same type.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _stack(parts: list, like: ArrayLike) -> ArrayLike:
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def boxes_xywh_to_xyxy(boxes: ArrayLike) -> ArrayLike:
    """``[x_left, y_top, width, height]`` (VisDrone, UAVDT, COCO) -> ``[x1, y1, x2, y2]``."""
    x, y, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x, y, x + w, y + h], boxes)


def boxes_xyxy_to_xywh(boxes: ArrayLike) -> ArrayLike:
    """``[x1, y1, x2, y2]`` -> ``[x_left, y_top, width, height]``."""
    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([x1, y1, x2 - x1, y2 - y1], boxes)


def boxes_xyxy_to_cxcywh(boxes: ArrayLike) -> ArrayLike:
    """``[x1, y1, x2, y2]`` -> ``[centre_x, centre_y, width, height]``."""
    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], boxes)


def boxes_cxcywh_to_xyxy(boxes: ArrayLike) -> ArrayLike:
    """``[centre_x, centre_y, width, height]`` -> ``[x1, y1, x2, y2]``."""
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], boxes)


def boxes_xyxy_to_relative_xywh(boxes: ArrayLike, width: float, height: float) -> ArrayLike:
    """Pixels ``xyxy`` -> FiftyOne's relative ``[x, y, w, h]`` in ``[0, 1]`` of the image size."""
    xywh = boxes_xyxy_to_xywh(boxes)
    return _stack(
        [xywh[..., 0] / width, xywh[..., 1] / height, xywh[..., 2] / width, xywh[..., 3] / height],
        boxes,
    )


def boxes_relative_xywh_to_xyxy(boxes: ArrayLike, width: float, height: float) -> ArrayLike:
    """FiftyOne's relative ``[x, y, w, h]`` -> pixels ``xyxy``."""
    x, y, w, h = (
        boxes[..., 0] * width,
        boxes[..., 1] * height,
        boxes[..., 2] * width,
        boxes[..., 3] * height,
    )
    return _stack([x, y, x + w, y + h], boxes)


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


def intersection_over_area(boxes: ArrayLike, regions: ArrayLike) -> ArrayLike:
    """Fraction of each box's own area covered by each region, ``Tensor[N, K]``.

    Used for ignore regions: a box with ``>= 0.5`` of its area inside one region is dropped
    (VisDrone convention). Zero-area boxes give 0.
    """
    if isinstance(boxes, torch.Tensor):
        lt = torch.maximum(boxes[:, None, :2], regions[None, :, :2])
        rb = torch.minimum(boxes[:, None, 2:], regions[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        area = box_area(boxes)[:, None]
        return torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(inter))
    boxes = np.asarray(boxes, dtype=np.float64)
    regions = np.asarray(regions, dtype=np.float64)
    lt = np.maximum(boxes[:, None, :2], regions[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], regions[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = box_area(boxes)[:, None]
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)
