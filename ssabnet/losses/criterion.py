"""The detector's training loss: task-aligned assignment + classification + box + DFL.

``criterion(outputs, targets)`` takes the raw model outputs (``cls_logits [B, A, C]``,
``box_logits [B, A, 4, reg_max]``, ``anchor_points [A, 2]``, ``anchor_strides [A]``) and one
target dict per image (``boxes [M, 4]`` xyxy input px, ``labels [M]`` int64 in ``0..C-1``,
optional ``ignore_regions [K, 4]`` xyxy input px) and returns named terms:

* ``"cls"``: BCE (or varifocal) against the soft targets, summed over anchors and classes.
  Anchors whose centre lies in an ignore region (and that are not positive) are masked out,
  so they are not penalised as negatives.
* ``"box"``: the configured box loss (``ciou`` by default, ``sabl`` for SSABNet) of each
  positive, weighted.
* ``"dfl"``: the distribution focal loss of each positive, same weights.
* ``"loss"``: ``cls_weight * cls + box_weight * box + dfl_weight * dfl`` (weights applied once,
  here), the scalar to call ``backward()`` on.

Normalisation (``LossConfig.normalize``): ``"score_sum"`` (default, as YOLOv8): each positive's
box/DFL weight is its target-score sum and every term is divided by ``max(1, sum of target
scores)``; ``"num_fg"``: positives weigh 1 and terms are divided by ``max(1, number of
positives)``. Both are batch-level (no per-image mean, no multiplication by the batch size).
With ``LossConfig.balance`` the positives' weights are rebalanced across size buckets first
(:mod:`ssabnet.losses.balance`, total weight unchanged).

Everything is computed in float32 (AMP-safe) and in input pixels: predicted boxes are decoded
as DFL expectation x stride, so the pixel constants of NWD/SABL apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssabnet.assign import Assignment, TaskAlignedAssigner, anchors_in_regions
from ssabnet.losses.api import box_loss
from ssabnet.losses.balance import scale_balance_weights
from ssabnet.losses.classification import bce_loss, varifocal_loss
from ssabnet.losses.config import LossConfig
from ssabnet.losses.dfl import distribution_focal_loss
from ssabnet.ops.anchors import decode_boxes
from ssabnet.ops.boxes import box_size, boxes_xyxy_to_ltrb


def pad_targets(
    targets: list[dict[str, Tensor]], num_classes: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Stack per-image targets into padded batch tensors.

    Returns:
        ``gt_boxes [B, M, 4]`` float32, ``gt_labels [B, M]`` int64, ``gt_mask [B, M]`` bool,
        ``regions [B, K, 4]`` float32, ``region_mask [B, K]`` bool.

    Raises:
        ValueError: missing keys, wrong shapes, or labels outside ``0..num_classes-1``.
    """
    batch = len(targets)
    boxes_list, labels_list, regions_list = [], [], []
    for i, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ValueError(f"target {i} needs 'boxes' and 'labels', got keys {sorted(target)}")
        boxes = torch.as_tensor(target["boxes"], dtype=torch.float32, device=device).reshape(-1, 4)
        labels = torch.as_tensor(target["labels"], dtype=torch.int64, device=device).reshape(-1)
        if labels.shape[0] != boxes.shape[0]:
            raise ValueError(f"target {i}: {boxes.shape[0]} boxes but {labels.shape[0]} labels")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(
                f"target {i}: labels must be in 0..{num_classes - 1}, got "
                f"{labels.min().item()}..{labels.max().item()} (drop or ignore-region 'others')"
            )
        regions = target.get("ignore_regions")
        regions = (
            torch.zeros(0, 4, device=device)
            if regions is None
            else torch.as_tensor(regions, dtype=torch.float32, device=device).reshape(-1, 4)
        )
        boxes_list.append(boxes)
        labels_list.append(labels)
        regions_list.append(regions)
    num_gt = max((b.shape[0] for b in boxes_list), default=0)
    num_regions = max((r.shape[0] for r in regions_list), default=0)
    gt_boxes = torch.zeros(batch, num_gt, 4, device=device)
    gt_labels = torch.zeros(batch, num_gt, dtype=torch.int64, device=device)
    gt_mask = torch.zeros(batch, num_gt, dtype=torch.bool, device=device)
    regions = torch.zeros(batch, num_regions, 4, device=device)
    region_mask = torch.zeros(batch, num_regions, dtype=torch.bool, device=device)
    for i, (boxes, labels, image_regions) in enumerate(
        zip(boxes_list, labels_list, regions_list, strict=True)
    ):
        gt_boxes[i, : boxes.shape[0]] = boxes
        gt_labels[i, : labels.shape[0]] = labels
        gt_mask[i, : boxes.shape[0]] = True
        regions[i, : image_regions.shape[0]] = image_regions
        region_mask[i, : image_regions.shape[0]] = True
    return gt_boxes, gt_labels, gt_mask, regions, region_mask


@dataclass(frozen=True, kw_only=True)
class Criterion:
    """Assignment + losses (module docstring). Build it with :func:`build_criterion`, which fills
    every field from :class:`LossConfig` (the one place the recipe's defaults live)."""

    num_classes: int
    reg_max: int
    assigner: TaskAlignedAssigner
    box: str
    box_params: dict[str, Any] = field(default_factory=dict)
    cls: str
    cls_weight: float
    box_weight: float
    dfl_weight: float
    normalize: str
    balance: bool
    balance_unit: str
    balance_gamma: float
    vfl_alpha: float
    vfl_gamma: float
    # Box decoder (box_logits, anchor_points, anchor_strides) -> xyxy px, as the model's head.
    decode: Callable[[Tensor, Tensor, Tensor], Tensor] = decode_boxes

    def assign(
        self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[Assignment, Tensor, Tensor]:
        """Run the assigner: ``(assignment, pred_boxes [B, A, 4] px, anchor_ignore [B, A])``."""
        cls_logits = outputs["cls_logits"]
        box_logits = outputs["box_logits"]
        batch, num_anchors, num_classes = cls_logits.shape
        if num_classes != self.num_classes:
            raise ValueError(f"cls_logits has {num_classes} classes, expected {self.num_classes}")
        if box_logits.shape != (batch, num_anchors, 4, self.reg_max):
            raise ValueError(
                f"box_logits must be [B, A, 4, {self.reg_max}] = "
                f"{[batch, num_anchors, 4, self.reg_max]}, got {list(box_logits.shape)}"
            )
        if len(targets) != batch:
            raise ValueError(f"{len(targets)} targets for a batch of {batch} images")
        anchor_points = outputs["anchor_points"].float()
        anchor_strides = outputs["anchor_strides"].float()
        pred_boxes = self.decode(box_logits.float(), anchor_points, anchor_strides).float()
        gt_boxes, gt_labels, gt_mask, regions, region_mask = pad_targets(
            targets, self.num_classes, cls_logits.device
        )
        anchor_ignore = anchors_in_regions(anchor_points, regions, region_mask)
        assignment = self.assigner(
            cls_logits.detach().float().sigmoid(),
            pred_boxes.detach(),
            anchor_points,
            anchor_strides,
            gt_labels,
            gt_boxes,
            gt_mask,
            anchor_ignore,
        )
        return assignment, pred_boxes, anchor_ignore

    def __call__(
        self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """Loss terms for a batch: ``{"loss", "cls", "box", "dfl"}``, scalar float32 tensors."""
        assignment, pred_boxes, anchor_ignore = self.assign(outputs, targets)
        cls_logits = outputs["cls_logits"]
        fg_mask = assignment.fg_mask
        target_scores = assignment.target_scores

        if self.cls == "varifocal":
            cls_elem = varifocal_loss(cls_logits, target_scores, self.vfl_alpha, self.vfl_gamma)
        else:
            cls_elem = bce_loss(cls_logits, target_scores)
        counted = ~(anchor_ignore & ~fg_mask)  # [B, A]: ignored negatives are not penalised
        cls_sum = (cls_elem * counted[..., None]).sum()

        if self.normalize == "num_fg":
            weights = torch.ones(int(fg_mask.sum()), device=cls_logits.device)
            normaliser = weights.sum().clamp(min=1)
        else:
            weights = target_scores.sum(-1)[fg_mask]  # [N_fg]
            normaliser = target_scores.sum().clamp(min=1)
        target_boxes = assignment.target_boxes[fg_mask]  # [N_fg, 4]
        if self.balance:
            object_ids = None
            if self.balance_unit == "objects":
                # batch-unique ground-truth id of each positive: image * M + index
                matched = assignment.matched_gt_idx[fg_mask]
                image_idx = fg_mask.nonzero(as_tuple=True)[0]
                stride = int(matched.max()) + 1 if matched.numel() else 1
                object_ids = image_idx * stride + matched
            weights = scale_balance_weights(
                weights, box_size(target_boxes), self.balance_gamma, object_ids
            )

        box_term = box_loss(self.box, pred_boxes[fg_mask], target_boxes, **self.box_params)
        anchor_idx = fg_mask.nonzero(as_tuple=True)[1]
        anchor_points = outputs["anchor_points"].float()[anchor_idx]
        strides = outputs["anchor_strides"].float()[anchor_idx]
        target_ltrb = boxes_xyxy_to_ltrb(anchor_points, target_boxes) / strides[:, None]
        dfl_term = distribution_focal_loss(outputs["box_logits"][fg_mask], target_ltrb)

        cls = cls_sum / normaliser
        box = (box_term * weights).sum() / normaliser
        dfl = (dfl_term * weights).sum() / normaliser
        loss = self.cls_weight * cls + self.box_weight * box + self.dfl_weight * dfl
        return {"loss": loss, "cls": cls, "box": box, "dfl": dfl}


def box_params_from_config(loss_cfg: LossConfig) -> dict[str, Any]:
    """The ``box_loss`` keyword parameters that ``loss_cfg.box`` takes."""
    if loss_cfg.box == "nwd":
        return {"C": loss_cfg.nwd_C}
    if loss_cfg.box == "sabl":
        return {
            "kappa": loss_cfg.sabl_kappa,
            "beta": loss_cfg.sabl_beta,
            "C": loss_cfg.nwd_C,
            "variant": loss_cfg.sabl_variant,
            "c_rel": loss_cfg.sabl_c_rel,
            "modulation": loss_cfg.sabl_modulation,
            "blend": loss_cfg.sabl_blend,
            "base": loss_cfg.sabl_base,
        }
    return {}


def build_criterion(loss_cfg: LossConfig, num_classes: int, reg_max: int) -> Criterion:
    """The one place that reads :class:`LossConfig` for the loss.

    Example:
        >>> from ssabnet.losses.config import LossConfig
        >>> criterion = build_criterion(LossConfig(box="ciou"), num_classes=10, reg_max=16)
        >>> criterion.box
        'ciou'
    """
    if num_classes < 1 or reg_max < 2:
        raise ValueError(f"need num_classes >= 1 and reg_max >= 2, got {num_classes}, {reg_max}")
    assigner = TaskAlignedAssigner(
        num_classes=num_classes,
        topk=loss_cfg.assigner_topk,
        alpha=loss_cfg.assigner_alpha,
        beta=loss_cfg.assigner_beta,
        metric=loss_cfg.assigner_metric,
        center_radius=loss_cfg.assigner_center_radius,
        widen_tiny=loss_cfg.assigner_widen_tiny,
        kappa=loss_cfg.sabl_kappa,
        mod_beta=loss_cfg.sabl_beta,
        C=loss_cfg.nwd_C,
        modulation=loss_cfg.sabl_modulation,
    )
    return Criterion(
        num_classes=num_classes,
        reg_max=reg_max,
        assigner=assigner,
        box=loss_cfg.box,
        box_params=box_params_from_config(loss_cfg),
        cls=loss_cfg.cls,
        cls_weight=loss_cfg.cls_weight,
        box_weight=loss_cfg.box_weight,
        dfl_weight=loss_cfg.dfl_weight,
        normalize=loss_cfg.normalize,
        balance=loss_cfg.balance,
        balance_unit=loss_cfg.balance_unit,
        balance_gamma=loss_cfg.balance_gamma,
        vfl_alpha=loss_cfg.vfl_alpha,
        vfl_gamma=loss_cfg.vfl_gamma,
    )
