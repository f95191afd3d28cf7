"""Loss and gradient curves: how each box loss reacts to a displaced or resized prediction.

This is what shows IoU's gradient vanishing once the boxes stop overlapping while NWD's does
not, and how SABL hands over from one to the other as the object grows. The Streamlit app and
the notebooks plot these tables; they contain no tensor math themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ssabnet.losses.api import box_loss, box_loss_params
from ssabnet.ops.boxes import boxes_cxcywh_to_xyxy
from ssabnet.ops.overlaps import BETA, KAPPA, scale_modulation

DIRECTIONS = ("x", "y", "xy", "size")
CURVE_COLUMNS = [
    "kind",
    "gt_size",
    "offset",
    "loss",
    "grad_cx",
    "grad_cy",
    "grad_w",
    "grad_h",
    "grad_norm",
]


def _as_list(values) -> list:
    if isinstance(values, str):
        return [values]
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().reshape(-1).tolist()
    if isinstance(values, Iterable):
        return list(np.asarray(values, dtype=object).reshape(-1))
    return [values]


def loss_curves(
    kinds: str | Sequence[str],
    gt_size: float | Sequence[float],
    offsets,
    *,
    direction: str = "x",
    scale: float = 1.0,
    **params,
):
    """Loss value and gradient w.r.t. the prediction's ``(cx, cy, w, h)`` over a grid.

    The ground truth is the square ``gt_size x gt_size`` px centred at the origin. The prediction
    is a square of side ``scale * gt_size`` whose centre is moved by ``offset`` px along
    ``direction`` (``"x"``, ``"y"`` or ``"xy"``: both), or, with ``direction="size"``, is centred
    with side ``scale * gt_size + offset``. Gradients come from autograd (float64) through the
    ``cxcywh -> xyxy`` conversion, i.e. they are ``d loss / d (cx, cy, w, h)`` in 1/px.

    Args:
        kinds: box loss name(s) for :func:`ssabnet.losses.box_loss`.
        gt_size: one size or several (px).
        offsets: ``Tensor[K]``, array or list of offsets (px), e.g.
            ``torch.linspace(-40, 40, 401)``.
        direction: ``"x" | "y" | "xy" | "size"``.
        scale: prediction size relative to the ground truth.
        **params: loss parameters; each kind receives the ones it accepts (``C`` goes to ``nwd``
            and ``sabl``, ``kappa``/``beta`` to ``sabl``...).

    Returns:
        ``pandas.DataFrame`` with columns ``kind, gt_size, offset, loss, grad_cx, grad_cy,
        grad_w, grad_h, grad_norm`` (the Euclidean norm of the four gradient components: how
        hard the loss pulls the box, whatever the direction), one row per (kind, size,
        offset), in that order.

    Raises:
        ValueError: unknown kind or direction. TypeError: a parameter no kind accepts.

    Example:
        >>> table = loss_curves(["iou", "nwd"], gt_size=8, offsets=[0.0, 20.0], C=12.0)
        >>> table.loc[table.offset == 20.0, ["kind", "grad_cx"]].round(4).values.tolist()
        [['iou', 0.0], ['nwd', 0.0157]]
    """
    import pandas as pd  # lazy: keeps ``import ssabnet`` light

    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {DIRECTIONS}")
    kind_list = [str(k) for k in _as_list(kinds)]
    accepted = {kind: box_loss_params(kind) for kind in kind_list}
    unused = sorted(set(params) - {p for names in accepted.values() for p in names})
    if unused:
        raise TypeError(f"loss_curves: parameter(s) {unused} are accepted by none of {kind_list}")
    offset_values = torch.tensor([float(o) for o in _as_list(offsets)], dtype=torch.float64)
    zeros = torch.zeros_like(offset_values)
    frames = []
    for size in (float(s) for s in _as_list(gt_size)):
        if not size > 0:
            raise ValueError(f"gt_size must be > 0, got {size}")
        side = torch.full_like(offset_values, scale * size)
        if direction == "size":
            columns = [zeros, zeros, side + offset_values, side + offset_values]
        else:
            dx = offset_values if direction in ("x", "xy") else zeros
            dy = offset_values if direction in ("y", "xy") else zeros
            columns = [dx, dy, side, side]
        gt = torch.tensor([[-size / 2, -size / 2, size / 2, size / 2]], dtype=torch.float64)
        for kind in kind_list:
            pred_cxcywh = torch.stack(columns, dim=-1).requires_grad_(True)  # [K, 4]
            kind_params = {k: v for k, v in params.items() if k in accepted[kind]}
            loss = box_loss(kind, boxes_cxcywh_to_xyxy(pred_cxcywh), gt, **kind_params)
            (grad,) = torch.autograd.grad(loss.sum(), pred_cxcywh)
            frames.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "gt_size": size,
                        "offset": offset_values.numpy(),
                        "loss": loss.detach().numpy(),
                        "grad_cx": grad[:, 0].numpy(),
                        "grad_cy": grad[:, 1].numpy(),
                        "grad_w": grad[:, 2].numpy(),
                        "grad_h": grad[:, 3].numpy(),
                        "grad_norm": grad.norm(dim=1).numpy(),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def modulation_curve(sizes, *, kappa: float = KAPPA, beta: float = BETA, modulation: str = "exp"):
    """SABL's small-object weight ``mu(s)`` over sizes (px).

    Returns:
        ``pandas.DataFrame`` with columns ``size, mu, modulation``.
    """
    import pandas as pd

    size_values = torch.tensor([float(s) for s in _as_list(sizes)], dtype=torch.float64)
    mu = scale_modulation(size_values, kappa, beta, modulation)
    return pd.DataFrame({"size": size_values.numpy(), "mu": mu.numpy(), "modulation": modulation})
