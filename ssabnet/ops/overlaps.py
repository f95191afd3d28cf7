"""Overlap measures of *matched pairs* of boxes: the IoU family, the Wasserstein distance/NWD
and SABL's scale-modulated quality.

Every function here is elementwise: ``pred_boxes`` and ``gt_boxes`` are ``Tensor[..., 4]`` xyxy
boxes (any unit, but the SABL/NWD pixel constants need input pixels) that broadcast against each
other, and the result is ``Tensor[...]`` with one value per pair. The assigner ranks candidates
with these and the box losses (:mod:`ssabnet.losses`) are built on them.

``torchvision.ops`` offers these quantities as *pairwise* ``[N, M]`` matrices (``box_iou``,
``generalized_box_iou``, ``distance_box_iou``, ``complete_box_iou``) and as elementwise losses;
the tests check our values against both. We still compute them ourselves because (1) the
training hot path needs the elementwise form for the matched pairs only, (2) SABL reuses the
intermediate terms (IoU, centre distance, enclosing box, aspect term) and (3) torchvision
divides by the box height in the CIoU aspect term, which gives NaN for zero-height boxes; here
every degenerate case stays finite.

Numerics: inputs of any float dtype are computed in float32 (float64 stays float64) and the
result has that dtype; widths and heights are clamped to ``>= 0`` (a box with ``x2 < x1`` has
zero area) and every denominator carries ``eps``.

NWD (Wang et al., "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection", 2021):
a box ``(cx, cy, w, h)`` is modelled as the 2-D Gaussian ``N([cx, cy], diag(w^2/4, h^2/4))``;
between two such Gaussians the squared 2-Wasserstein distance is::

    W2^2 = (cx1 - cx2)^2 + (cy1 - cy2)^2 + ((w1 - w2)^2 + (h1 - h2)^2) / 4

and ``NWD = exp(-sqrt(W2^2) / C)``. Unlike IoU it is never exactly 0 for disjoint boxes. ``W2``
is in the boxes' unit (input **pixels** in SSABNet), so ``C`` is in pixels too.

SABL's quality (Zhang et al., SSABNet; see :mod:`ssabnet.losses.sabl` for the loss):
``mu(s) NWD + (1 - mu(s)) IoU`` with the small-object weight ``mu(s) = exp(-(s/kappa)^beta)``
of the ground-truth size ``s = sqrt(w_gt h_gt)``.

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


KAPPA = 32.0  # px: the COCO small/medium border, where the hand-over happens
BETA = 6.0  # steepness: mu(16 px) = 0.98, mu(32 px) = 0.37, mu(48 px) = 1e-5
SABL_C = 12.0  # px: close to the mean object size of VisDrone at 640 px

MODULATIONS = ("exp", "logistic")


def scale_modulation(
    sizes: Tensor, kappa: float = KAPPA, beta: float = BETA, modulation: str = "exp"
) -> Tensor:
    """Small-object weight ``mu(s)`` in ``[0, 1]``, decreasing in ``s`` (``Tensor`` like ``sizes``).

    ``"exp"``: ``exp(-(s/kappa)^beta)``; ``"logistic"``: ``1 / (1 + (s/kappa)^beta)``.
    Sizes are in pixels; negative sizes count as 0 (``mu = 1``).
    """
    if kappa <= 0 or beta <= 0:
        raise ValueError(f"SABL needs kappa > 0 and beta > 0, got kappa={kappa}, beta={beta}")
    ratio_pow = (sizes.clamp(min=0) / kappa) ** beta
    if modulation == "exp":
        return torch.exp(-ratio_pow)
    if modulation == "logistic":
        return 1 / (1 + ratio_pow)
    raise ValueError(f"unknown SABL modulation {modulation!r}; expected one of {MODULATIONS}")


def sabl_overlap(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    *,
    kappa: float = KAPPA,
    beta: float = BETA,
    C: float = SABL_C,
    modulation: str = "exp",
    eps: float = EPS,
) -> Tensor:
    """The assigner's SABL quality ``mu(s) NWD + (1 - mu(s)) IoU`` in ``[0, 1]``, ``Tensor[...]``.

    ``s`` is the size of ``gt_boxes``; NWD uses ``C`` (px). Tiny objects are ranked by NWD, which
    is never 0, large ones by IoU.
    """
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    mu = scale_modulation(gt_size(g, eps), kappa, beta, modulation)
    nwd = torch.exp(-wasserstein_from_geometry(g, eps) / C)
    return mu * nwd + (1 - mu) * g.iou


def gt_size(g: PairGeometry, eps: float = EPS) -> Tensor:
    """``sqrt(w_gt h_gt)``, with a finite gradient at zero area."""
    return (g.gt_w * g.gt_h).clamp(min=eps * eps).sqrt()
