"""``box_loss(kind, ...)``: the one entry point to every box loss, by name.

The mapping below is explicit (no registry): an unknown ``kind`` is a ``ValueError`` and a
parameter that the chosen loss does not take is a ``TypeError``, so a typo in a config never
silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ssabnet.losses.box import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from ssabnet.losses.nwd import nwd_loss
from ssabnet.losses.sabl import sabl_loss

#: kind -> (loss function, keyword parameters it accepts besides ``reduction``).
BOX_LOSSES: dict[str, tuple[Callable[..., Tensor], tuple[str, ...]]] = {
    "iou": (iou_loss, ("eps",)),
    "giou": (giou_loss, ("eps",)),
    "diou": (diou_loss, ("eps",)),
    "ciou": (ciou_loss, ("eps", "detach_alpha")),
    "eiou": (eiou_loss, ("eps",)),
    "nwd": (nwd_loss, ("C", "eps")),
    "sabl": (
        sabl_loss,
        (
            "kappa",
            "beta",
            "C",
            "variant",
            "c_rel",
            "modulation",
            "blend",
            "base",
            "eps",
            "detach_alpha",
        ),
    ),
}


def box_loss_params(kind: str) -> tuple[str, ...]:
    """Keyword parameters accepted by box loss ``kind``."""
    if kind not in BOX_LOSSES:
        raise ValueError(f"unknown box loss {kind!r}; expected one of {tuple(BOX_LOSSES)}")
    return BOX_LOSSES[kind][1]


def box_loss(
    kind: str, pred_boxes: Tensor, gt_boxes: Tensor, *, reduction: str = "none", **params
) -> Tensor:
    """Box loss ``kind`` of matched pairs.

    Args:
        kind: ``iou | giou | diou | ciou | eiou | nwd | sabl`` (``1 - similarity`` for the IoU
            family and NWD; SABL as in :mod:`ssabnet.losses.sabl`).
        pred_boxes: ``Tensor[N, 4]`` (or ``[..., 4]``) xyxy in input pixels.
        gt_boxes: ``Tensor[N, 4]`` xyxy in input pixels, broadcastable against ``pred_boxes``.
        reduction: ``"none"`` (``Tensor[N]``) | ``"mean"`` | ``"sum"``.
        **params: loss parameters, e.g. ``C=12.0`` for ``nwd``; ``kappa``, ``beta``, ``C``,
            ``variant``, ``c_rel``, ``modulation``, ``blend``, ``base`` for ``sabl``; ``eps``
            for all.

    Raises:
        ValueError: unknown ``kind`` or ``reduction``, or boxes not ``[..., 4]``.
        TypeError: a parameter that ``kind`` does not take.

    Example:
        >>> import torch
        >>> gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
        >>> round(float(box_loss("iou", gt + torch.tensor([5.0, 0, 5, 0]), gt)), 4)
        0.6667
    """
    allowed = box_loss_params(kind)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(
            f"box loss {kind!r} got unexpected parameter(s) {unknown}; it accepts {list(allowed)}"
        )
    function = BOX_LOSSES[kind][0]
    return function(pred_boxes, gt_boxes, reduction=reduction, **params)
