"""SABL: the Scale-Aware Balancing Loss (Zhang et al., SSABNet) for matched box pairs.

No official code exists. For a matched pair, with ``s = sqrt(w_gt * h_gt)`` in input pixels,
``W2`` the Gaussian Wasserstein distance (:mod:`ssabnet.losses.nwd`) and::

    mu(s)  = exp(-(s / kappa)^beta)            kappa = 32 px, beta = 6
    R_E    = rho^2(centres) / c^2              DIoU's Euclidean centre penalty
    L_SABL = 1 - IoU + mu R_W + (1 - mu) R_E + alpha v     (alpha v: CIoU's aspect term)

two readings of the Wasserstein penalty ``R_W`` (``variant``):

* ``"relative"`` (default): ``R_W = sqrt(1 + (W2 / (c_rel s'))^2) - 1`` with ``s' = max(s, 1 px)``
  and ``c_rel = 0.75``: a pseudo-Huber penalty on the Wasserstein distance *relative to the
  object size*. Near the optimum it is ``~ (W2 / c_rel s)^2 / 2``, the same shape as ``R_E`` (which
  is ``~ (rho / s)^2 / 2`` for equal squares), so the hand-over between the two terms changes
  the loss of a given relative error very little; far away its gradient tends to the constant
  ``1 / (c_rel s)``, so it never vanishes and never explodes. With ``c_rel <= 0.8`` its
  centre gradient is at least ``R_E``'s at every offset (tested for 4-32 px ground truths and
  offsets up to 4 object sizes), so SABL's centre gradient is at least CIoU's there. Being
  scale-free, it has no pixel constant that depends on the image frame.
* ``"paper"``: ``R_W = 1 - exp(-W2 / C)``, ``C = 12`` px (our first, literal reading of the
  paper's equation). Its gradient ``exp(-W2 / C) / C`` decays exponentially beyond ~2C of offset
  and is weaker than CIoU's there (e.g. 0.0008 vs 0.0052 /px for a 20 px box shifted 60 px), and
  for the same relative error ``R_W`` and ``R_E`` differ by up to 25x (a 32 px box shifted 8 px:
  0.49 vs 0.02), so the loss jumps across the hand-over. Kept selectable for the ablation.

Large boxes (``s >> kappa``, ``mu -> 0``) get exactly CIoU in both variants. Alternative readings,
for ablations:

* ``modulation="logistic"``: ``m(s) = 1 / (1 + (s / kappa)^beta)`` (a logistic in ``log s``,
  ``m(kappa) = 1/2``, heavier tail than ``exp``: large boxes keep a little of ``R_W``).
* ``blend="loss"``: blend whole losses, ``m(s) L_small + (1 - m(s)) L_base`` with ``base="ciou"``
  or ``"eiou"`` and ``L_small = 1 - NWD`` (``"paper"``) or ``1 - IoU + R_W`` (``"relative"``).

The modulation ``mu(s)`` (:func:`ssabnet.ops.overlaps.scale_modulation`) and the assigner's
SABL quality (:func:`ssabnet.ops.overlaps.sabl_overlap`) are box math shared with the assigner
and live in :mod:`ssabnet.ops.overlaps`. The *balancing* part (normalisation of the box-loss
weights across objects and sizes) needs the whole batch and lives in
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

#: Wasserstein normaliser relative to the object size (``"relative"`` variant). With 0.75 SABL's
#: centre gradient is >= CIoU's for 4-32 px ground truths, offsets up to 4 object sizes and
#: predictions from 1/4 to 4x the ground truth's size; 0.9 already fails for a 4 px box predicted
#: 1 px wide (tests/test_losses_sabl.py, docs/losses.md).
SABL_C_REL = 0.75
MIN_SIZE = 1.0  # px: the relative normaliser never goes below this (degenerate ground truths)

VARIANTS = ("relative", "paper")
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
    variant: str = VARIANTS[0],
    c_rel: float = SABL_C_REL,
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
        C: Wasserstein normalisation (px) of the ``"paper"`` variant.
        variant: ``"relative"`` (default) | ``"paper"`` (module docstring).
        c_rel: Wasserstein normalisation of the ``"relative"`` variant, as a fraction of ``s``.
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
    if C <= 0 or c_rel <= 0:
        raise ValueError(f"SABL constants C and c_rel must be > 0, got C={C}, c_rel={c_rel}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown SABL variant {variant!r}; expected one of {VARIANTS}")
    if blend not in BLENDS:
        raise ValueError(f"unknown SABL blend {blend!r}; expected one of {BLENDS}")
    if base not in BASES:
        raise ValueError(f"unknown SABL base loss {base!r}; expected one of {BASES}")
    g = pair_geometry(pred_boxes, gt_boxes, eps)
    size = gt_size(g, eps)
    mu = scale_modulation(size, kappa, beta, modulation)
    if variant == "paper":
        wasserstein_penalty = 1 - torch.exp(-wasserstein_from_geometry(g, eps) / C)
        small_loss = wasserstein_penalty  # 1 - NWD
    else:
        # = relative_wasserstein_penalty(W2, s, c_rel) from the squares: no square root of W2
        # (whose gradient needs a guard at 0) and none of the area (speed).
        w2_sq = (
            g.centre_dx**2
            + g.centre_dy**2
            + ((g.pred_w - g.gt_w) ** 2 + (g.pred_h - g.gt_h) ** 2) / 4
        )
        norm_sq = (c_rel * c_rel) * (g.gt_w * g.gt_h).clamp(min=MIN_SIZE * MIN_SIZE)
        wasserstein_penalty = torch.sqrt(1 + w2_sq / norm_sq) - 1
        small_loss = None  # 1 - IoU + R_W, only built for blend="loss"
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
        if small_loss is None:
            small_loss = 1 - g.iou + wasserstein_penalty
        loss = mu * small_loss + (1 - mu) * base_loss
    return reduce_loss(loss, reduction)


def relative_wasserstein_penalty(
    distance: Tensor, gt_sizes: Tensor, c_rel: float = SABL_C_REL
) -> Tensor:
    """``sqrt(1 + (W2 / (c_rel max(s, 1 px)))^2) - 1``, ``Tensor`` like ``distance``, >= 0.

    A pseudo-Huber (smooth L1) penalty on the Wasserstein distance in units of the object size:
    quadratic near 0 (zero, continuous gradient at the optimum), linear far away (gradient
    ``-> 1 / (c_rel s)``: bounded, never vanishing).

    Args:
        distance: ``W2`` in pixels, ``Tensor[...]`` >= 0.
        gt_sizes: ``sqrt(w h)`` of the ground truth in pixels, broadcastable.
        c_rel: normaliser as a fraction of the size.
    """
    relative = distance / (c_rel * gt_sizes.clamp(min=MIN_SIZE))
    return torch.sqrt(1 + relative**2) - 1
