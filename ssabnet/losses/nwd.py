"""Gaussian Wasserstein distance and the Normalized Wasserstein Distance (NWD) of box pairs.

Wang et al., "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection" (2021):
a box ``(cx, cy, w, h)`` is modelled as the 2-D Gaussian ``N([cx, cy], diag(w^2/4, h^2/4))``;
between two such Gaussians the squared 2-Wasserstein distance is::

    W2^2 = (cx1 - cx2)^2 + (cy1 - cy2)^2 + ((w1 - w2)^2 + (h1 - h2)^2) / 4

and ``NWD = exp(-sqrt(W2^2) / C)``. Unlike IoU it is never exactly 0 for disjoint boxes, so a
loss ``1 - NWD`` keeps a gradient however far apart the boxes are. ``W2`` is in the boxes' unit
(input **pixels** in SSABNet), so ``C`` is in pixels too: :func:`nwd_constant_from_sizes`.

The distance itself (:func:`ssabnet.ops.overlaps.normalized_wasserstein_distance`) lives with
the other overlaps in :mod:`ssabnet.ops.overlaps`; here are the loss and the rule for ``C``.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ssabnet.losses.box import reduce_loss
from ssabnet.ops.overlaps import EPS, NWD_C_AITOD, normalized_wasserstein_distance


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
