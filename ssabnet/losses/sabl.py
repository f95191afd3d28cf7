"""SABL: the Scale-Aware Balancing Loss (Zhang et al., SSABNet) for matched box pairs.

No official code exists; this is our reading of the paper. For a matched pair, with every
distance in **input pixels**, ``s = sqrt(w_gt * h_gt)`` and::

    mu(s)  = exp(-(s / kappa)^beta)            kappa = 32 px, beta = 6
    R_W    = 1 - exp(-W2 / C)                  Gaussian Wasserstein penalty, C = 12 px
    R_E    = rho^2(centres) / c^2              DIoU's Euclidean centre penalty
    L_SABL = 1 - IoU + mu R_W + (1 - mu) R_E + alpha v     (alpha v: CIoU's aspect term)

Large boxes (``s >> kappa``, ``mu -> 0``) get exactly CIoU; tiny boxes get a Wasserstein penalty
that keeps a gradient when the boxes no longer overlap; the hand-over is smooth (``mu(kappa) =
e^-1``). Alternative readings, for ablations:

* ``modulation="logistic"``: ``m(s) = 1 / (1 + (s / kappa)^beta)`` (a logistic in ``log s``,
  ``m(kappa) = 1/2``, heavier tail than ``exp``: large boxes keep a little of ``R_W``).
* ``blend="loss"``: blend whole losses, ``m(s) (1 - NWD) + (1 - m(s)) L_base`` with
  ``base="ciou"`` or ``"eiou"``.

The modulation ``mu(s)`` (:func:`ssabnet.ops.overlaps.scale_modulation`) and the assigner's
SABL quality (:func:`ssabnet.ops.overlaps.sabl_overlap`) are box math shared with the assigner
and live in :mod:`ssabnet.ops.overlaps`. The *balancing* part (per-size-bucket normalisation of
the box-loss weights) needs the whole batch and lives in
:func:`ssabnet.losses.balance.scale_balance_weights`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssabnet.losses.box import reduce_loss
from ssabnet.ops.overlaps import (
    BETA,
    EPS,
    KAPPA,
    SABL_C,
    aspect_term,
    centre_distance_ratio,
    gt_size,
    pair_geometry,
    scale_modulation,
    wasserstein_from_geometry,
)

BLENDS = ("terms", "loss")
BASES = ("ciou", "eiou")


def sabl_loss(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    *,
    reduction: str = "none",
    kappa: float = KAPPA,
    beta: float = BETA,
    C: float = SABL_C,
    modulation: str = "exp",
    blend: str = "terms",
    base: str = "ciou",
    eps: float = EPS,
    detach_alpha: bool = True,
) -> Tensor:
    """Scale-Aware Balancing Loss of matched pairs (module docstring has the formula).

    Args:
        pred_boxes: ``Tensor[..., 4]`` xyxy in input pixels.
        gt_boxes: ``Tensor[..., 4]`` xyxy in input pixels (broadcastable); ``s`` is its size.
        kappa, beta: modulation centre (px) and steepness.
        C: Wasserstein normalisation (px).
        modulation: ``"exp"`` (default) | ``"logistic"``.
        blend: ``"terms"`` (default: blend the penalty terms) | ``"loss"`` (blend whole losses).
        base: the large-object loss for ``blend="loss"``: ``"ciou"`` | ``"eiou"``.
        detach_alpha: CIoU's trade-off weight is not differentiated (as in CIoU); ``False``
            only for gradient checks.

    Returns:
        ``Tensor[...]`` (or a scalar for ``reduction="mean"|"sum"``), float32/float64.

    Example:
        >>> gt = torch.tensor([[0.0, 0.0, 200.0, 200.0]])
        >>> pred = gt + 10
        >>> from ssabnet.losses.box import ciou_loss
        >>> bool(torch.allclose(sabl_loss(pred, gt), ciou_loss(pred, gt)))
        True
    """
    if C <= 0:
        raise ValueError(f"SABL constant C must be > 0, got {C}")
    if blend not in BLENDS:
        raise ValueError(f"unknown SABL blend {blend!r}; expected one of {BLENDS}")
    if base not in BASES:
        raise ValueError(f"unknown SABL base loss {base!r}; expected one of {BASES}")
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    mu = scale_modulation(gt_size(g, eps), kappa, beta, modulation)
    wasserstein_penalty = 1 - torch.exp(-wasserstein_from_geometry(g, eps) / C)
    euclid_penalty = centre_distance_ratio(g, eps)
    if blend == "terms":
        loss = (
            1
            - g.iou
            + mu * wasserstein_penalty
            + (1 - mu) * euclid_penalty
            + aspect_term(g, eps, detach_alpha)
        )
    else:
        if base == "ciou":
            base_loss = 1 - g.iou + euclid_penalty + aspect_term(g, eps, detach_alpha)
        else:
            base_loss = (
                1
                - g.iou
                + euclid_penalty
                + (g.pred_w - g.gt_w) ** 2 / (g.enclose_w**2 + eps)
                + (g.pred_h - g.gt_h) ** 2 / (g.enclose_h**2 + eps)
            )
        loss = mu * wasserstein_penalty + (1 - mu) * base_loss
    return reduce_loss(loss, reduction)
