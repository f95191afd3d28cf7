"""Losses: the IoU family, NWD, SABL, classification, DFL and the detector criterion.

Public entry points: :func:`box_loss` (any box loss by name), :func:`loss_curves` and
:func:`modulation_curve` (gradient curves for the app and notebooks), :func:`build_criterion`.
"""

from ssabnet.losses.api import BOX_LOSSES, box_loss, box_loss_params
from ssabnet.losses.box import (
    box_iou_pairs,
    ciou_loss,
    complete_box_iou_pairs,
    diou_loss,
    distance_box_iou_pairs,
    efficient_box_iou_pairs,
    eiou_loss,
    generalized_box_iou_pairs,
    giou_loss,
    iou_loss,
)
from ssabnet.losses.config import LossConfig
from ssabnet.losses.criterion import Criterion, build_criterion
from ssabnet.losses.curves import loss_curves, modulation_curve
from ssabnet.losses.nwd import (
    normalized_wasserstein_distance,
    nwd_constant_from_sizes,
    nwd_loss,
    wasserstein_distance,
)
from ssabnet.losses.sabl import sabl_loss, sabl_overlap, scale_modulation

__all__ = [
    "BOX_LOSSES",
    "Criterion",
    "LossConfig",
    "box_iou_pairs",
    "box_loss",
    "box_loss_params",
    "build_criterion",
    "ciou_loss",
    "complete_box_iou_pairs",
    "diou_loss",
    "distance_box_iou_pairs",
    "efficient_box_iou_pairs",
    "eiou_loss",
    "generalized_box_iou_pairs",
    "giou_loss",
    "iou_loss",
    "loss_curves",
    "modulation_curve",
    "normalized_wasserstein_distance",
    "nwd_constant_from_sizes",
    "nwd_loss",
    "sabl_loss",
    "sabl_overlap",
    "scale_modulation",
    "wasserstein_distance",
]
