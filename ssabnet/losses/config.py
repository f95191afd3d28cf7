"""Loss configuration (owned by the losses package; composed into :class:`ssabnet.config.Config`).

The defaults are the SSABNet recipe; an ablation YAML lists only what differs, e.g.
``loss: {box: ciou}`` for the YOLOv8 baseline loss or ``loss.sabl_variant=paper`` for the
literal reading of SABL (:data:`PAPER_SABL_LOSS` for the whole first recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssabnet.assign import METRICS, TaskAlignedAssigner
from ssabnet.errors import ConfigError
from ssabnet.losses.balance import BALANCE_UNITS
from ssabnet.losses.sabl import SABL_C_REL, VARIANTS
from ssabnet.ops.overlaps import BETA, KAPPA, MODULATIONS, SABL_C

BOX_KINDS = ("iou", "giou", "diou", "ciou", "eiou", "nwd", "sabl")
CLS_KINDS = ("bce", "varifocal")
NORMALIZATIONS = ("score_sum", "num_fg")

#: The two loss recipes that ablations and the demo compare, as ``loss:`` overrides.
#: Baseline: YOLOv8-like CIoU, no scale balancing; the assigner is LossConfig's default (CIoU
#: metric with ultralytics' tiny-box widening), so the two recipes differ only in the box loss.
BASELINE_LOSS = {"box": "ciou", "balance": False}
#: SSABNet: the SABL box loss ("relative" reading) and nothing else changed (``--loss sabl``).
#: Not the LossConfig default: on the tuning split it did not beat CIoU (docs/results.md s. 5).
SABL_LOSS = {"box": "sabl", "sabl_variant": "relative", "balance": False}
#: Our first, literal reading of the paper (fixed C = 12 px, anchor-count balancing with
#: gamma 0.5, SABL-metric assigner): the recipe of the first docs/results.md tables, kept so
#: that the comparison stays reproducible.
PAPER_SABL_LOSS = {
    "box": "sabl",
    "sabl_variant": "paper",
    "balance": True,
    "balance_unit": "anchors",
    "balance_gamma": 0.5,
    "assigner_metric": "sabl",
    "assigner_widen_tiny": False,
}
#: The recipes by name (``ssabnet train --loss NAME``).
LOSS_RECIPES = {"sabl": SABL_LOSS, "baseline": BASELINE_LOSS, "sabl-paper": PAPER_SABL_LOSS}


@dataclass(frozen=True)
class LossConfig:
    """Detector loss: classification + box + DFL, with a task-aligned assigner.

    All pixel constants (``sabl_kappa``, ``nwd_C``) refer to input (letterboxed) pixels.
    """

    # iou | giou | diou | ciou | eiou | nwd | sabl. CIoU: the relative SABL tied it overall and
    # lost on very tiny objects in the tuning-split screening (docs/results.md section 5).
    box: str = "ciou"
    cls: str = "bce"  # bce | varifocal
    # Weights applied once, to the normalised terms (YOLOv8's defaults).
    cls_weight: float = 0.5
    box_weight: float = 7.5
    dfl_weight: float = 1.5
    # score_sum: divide every term by max(1, sum of target scores) as YOLOv8 does (the weights
    # above were tuned for it); num_fg: by max(1, number of positive anchors).
    normalize: str = "score_sum"
    # SABL (see ssabnet/losses/sabl.py). relative: pseudo-Huber Wasserstein penalty in units of
    # the object size (centre gradient >= CIoU's up to 4 object sizes of offset); paper: the
    # literal 1 - exp(-W/C), C = nwd_C px.
    sabl_variant: str = VARIANTS[0]  # relative | paper
    sabl_c_rel: float = SABL_C_REL  # relative: Wasserstein normaliser = c_rel * object size
    # kappa: hand-over size in px; beta: steepness.
    sabl_kappa: float = KAPPA
    sabl_beta: float = BETA
    sabl_modulation: str = TaskAlignedAssigner.modulation  # exp | logistic
    sabl_blend: str = "terms"  # terms (paper's equation) | loss (blend whole losses)
    sabl_base: str = "ciou"  # large-object loss for sabl_blend=loss: ciou | eiou
    nwd_C: float = SABL_C  # px, Wasserstein normalisation: nwd, sabl (paper), nwd/sabl metric
    # Balancing (ssabnet/losses/balance.py; our addition, not the paper's): share the box/DFL
    # weight per object (objects) or per positive anchor (anchors, the first reading). Off: no
    # training run has shown a gain (docs/results.md section 5).
    balance: bool = False
    balance_unit: str = BALANCE_UNITS[0]  # objects | anchors
    balance_gamma: float = 1.0  # bucket share ~ count^gamma; objects + 1: every object equal
    # Task-aligned assigner (ssabnet/assign.py, where these defaults are defined).
    assigner_topk: int = TaskAlignedAssigner.topk
    assigner_alpha: float = TaskAlignedAssigner.alpha
    assigner_beta: float = TaskAlignedAssigner.beta
    # iou | ciou | nwd | sabl (measured: docs/losses.md)
    assigner_metric: str = TaskAlignedAssigner.metric
    # strides; > 0 adds centre-radius candidates
    assigner_center_radius: float = TaskAlignedAssigner.center_radius
    # Candidate selection only: sides shorter than the second-finest stride widened to it
    # (ultralytics 8.4's rule; 8 px with P2, 16 px without).
    assigner_widen_tiny: bool = TaskAlignedAssigner.widen_tiny
    # Varifocal loss (cls=varifocal).
    vfl_alpha: float = 0.75
    vfl_gamma: float = 2.0

    def __post_init__(self) -> None:
        choices = {
            "box": (self.box, BOX_KINDS),
            "cls": (self.cls, CLS_KINDS),
            "normalize": (self.normalize, NORMALIZATIONS),
            "sabl_variant": (self.sabl_variant, VARIANTS),
            "sabl_modulation": (self.sabl_modulation, MODULATIONS),
            "balance_unit": (self.balance_unit, BALANCE_UNITS),
            "sabl_blend": (self.sabl_blend, ("terms", "loss")),
            "sabl_base": (self.sabl_base, ("ciou", "eiou")),
            "assigner_metric": (self.assigner_metric, METRICS),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"loss.{key}: unknown value {value!r}; expected one of {allowed}")
        positive = {
            "sabl_kappa": self.sabl_kappa,
            "sabl_beta": self.sabl_beta,
            "sabl_c_rel": self.sabl_c_rel,
            "nwd_C": self.nwd_C,
        }
        for key, value in positive.items():
            if not value > 0:
                raise ConfigError(f"loss.{key} must be > 0, got {value}")
        if self.assigner_topk < 1:
            raise ConfigError(f"loss.assigner_topk must be >= 1, got {self.assigner_topk}")
