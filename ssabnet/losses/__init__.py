"""Losses: the IoU family, NWD, SABL, classification, DFL and the detector criterion.

The overlap measures the losses are built on (IoU family, NWD, SABL's quality and ``mu(s)``) are
box math in :mod:`ssabnet.ops.overlaps`, shared with the assigner.

Public entry points: :func:`box_loss` (any box loss by name), :func:`loss_curves` and
:func:`modulation_curve` (gradient curves for the app and notebooks), :func:`build_criterion`.
"""

from ssabnet.losses.api import BOX_LOSSES, box_loss, box_loss_params
from ssabnet.losses.box import ciou_loss, diou_loss, eiou_loss, giou_loss, iou_loss
from ssabnet.losses.config import LossConfig
from ssabnet.losses.criterion import Criterion, build_criterion
from ssabnet.losses.curves import loss_curves, modulation_curve
from ssabnet.losses.nwd import nwd_constant_from_sizes, nwd_loss
from ssabnet.losses.sabl import sabl_loss

__all__ = [
    "BOX_LOSSES",
    "Criterion",
    "LossConfig",
    "box_loss",
    "box_loss_params",
    "build_criterion",
    "ciou_loss",
    "diou_loss",
    "eiou_loss",
    "giou_loss",
    "iou_loss",
    "loss_curves",
    "modulation_curve",
    "nwd_constant_from_sizes",
    "nwd_loss",
    "sabl_loss",
]
