"""Gaussian Wasserstein distance and the Normalized Wasserstein Distance (NWD) of box pairs.

Wang et al., "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection" (2021):
a box ``(cx, cy, w, h)`` is modelled as the 2-D Gaussian ``N([cx, cy], diag(w^2/4, h^2/4))``;
between two such Gaussians the squared 2-Wasserstein distance is::

    W2^2 = (cx1 - cx2)^2 + (cy1 - cy2)^2 + ((w1 - w2)^2 + (h1 - h2)^2) / 4

and ``NWD = exp(-sqrt(W2^2) / C)``. Unlike IoU it is never exactly 0 for disjoint boxes, so a
loss ``1 - NWD`` keeps a gradient however far apart the boxes are. ``W2`` is in the boxes' unit
(input **pixels** in SSABNet), so ``C`` is in pixels too: :func:`nwd_constant_from_sizes`.

Functions are elementwise over broadcastable ``Tensor[..., 4]`` xyxy boxes (see
:mod:`ssabnet.losses.box` for dtype handling).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ssabnet.losses.box import EPS, PairGeometry, check_boxes, compute_dtype, reduce_loss

#: The paper's value for AI-TOD (mean absolute object size 12.8 px); SABL's default is 12.
NWD_C_AITOD = 12.8


def wasserstein_from_geometry(g: PairGeometry, eps: float = EPS) -> Tensor:
    """``W2 = ||(dcx, dcy, dw/2, dh/2)||`` from shared pair terms, ``Tensor[...]`` >= 0.

    The square root is taken of ``max(W2^2, eps^2)`` so identical boxes have a finite (zero)
    gradient instead of ``0/0``.
    """
    w2_sq = (
        g.centre_dx**2 + g.centre_dy**2 + ((g.pred_w - g.gt_w) ** 2 + (g.pred_h - g.gt_h) ** 2) / 4
    )
    return w2_sq.clamp(min=eps * eps).sqrt()


def wasserstein_distance(pred_boxes: Tensor, gt_boxes: Tensor, eps: float = EPS) -> Tensor:
    """Gaussian 2-Wasserstein distance ``W2`` (not squared) of matched pairs, ``Tensor[...]``."""
    check_boxes(pred_boxes, gt_boxes)
    dtype = compute_dtype(pred_boxes, gt_boxes)
    px1, py1, px2, py2 = pred_boxes.to(dtype).unbind(-1)
    gx1, gy1, gx2, gy2 = gt_boxes.to(dtype).unbind(-1)
    dw = (px2 - px1).clamp(min=0) - (gx2 - gx1).clamp(min=0)
    dh = (py2 - py1).clamp(min=0) - (gy2 - gy1).clamp(min=0)
    dcx = (px1 + px2 - gx1 - gx2) / 2
    dcy = (py1 + py2 - gy1 - gy2) / 2
    w2_sq = dcx**2 + dcy**2 + (dw**2 + dh**2) / 4
    return w2_sq.clamp(min=eps * eps).sqrt()


def normalized_wasserstein_distance(
    pred_boxes: Tensor, gt_boxes: Tensor, C: float = NWD_C_AITOD, eps: float = EPS
) -> Tensor:
    """``NWD = exp(-W2 / C)`` of matched pairs, ``Tensor[...]`` in ``(0, 1]``.

    Args:
        C: normalising constant in the boxes' unit (pixels).
    """
    if C <= 0:
        raise ValueError(f"NWD constant C must be > 0, got {C}")
    return torch.exp(-wasserstein_distance(pred_boxes, gt_boxes, eps) / C)


def nwd_loss(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    *,
    reduction: str = "none",
    C: float = NWD_C_AITOD,
    eps: float = EPS,
) -> Tensor:
    """``1 - NWD`` of matched ``Tensor[..., 4]`` xyxy pairs, in ``[0, 1)``."""
    return reduce_loss(1 - normalized_wasserstein_distance(pred_boxes, gt_boxes, C, eps), reduction)


def nwd_constant_from_sizes(sizes, scale: float = 1.0) -> float:
    """NWD constant ``C`` for a dataset: the mean absolute object size, times ``scale``.

    Rule (Wang et al. set ``C`` to AI-TOD's average absolute size, 12.8 px): ``C = scale *
    mean(sqrt(w * h))`` over the ground-truth boxes, measured **in the pixel frame the loss sees**
    (after letterboxing to the training size; pass ``scale = imgsz / max(W, H)`` if the sizes are
    in original-image pixels and all images share ``W, H``). With this ``C``, a box displaced
    by the average object size has ``NWD = exp(-1) ~ 0.37``.

    Args:
        sizes: array-like of object sizes ``sqrt(w * h)`` in pixels (e.g.
            ``ssabnet.ops.boxes.box_size(boxes)``); non-finite and non-positive sizes are ignored.
        scale: factor from the sizes' pixels to the loss's pixels.

    Raises:
        ValueError: no valid size.
    """
    values = np.asarray(
        sizes.detach().cpu().numpy() if isinstance(sizes, Tensor) else sizes, dtype=np.float64
    ).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise ValueError("nwd_constant_from_sizes: no positive, finite object size given")
    return float(scale * values.mean())
