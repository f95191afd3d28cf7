"""Task-aligned label assignment (TOOD, Feng et al. ICCV 2021; as used by YOLOv8).

For every ground-truth box ``m`` and anchor ``a`` of an image:

1. *Candidates*: the anchor centre lies strictly inside the box (the centre-in-box prior), or,
   with ``center_radius = r > 0``, within ``r * stride`` (Chebyshev distance) of the box centre
   — a fallback that lets boxes smaller than a stride get candidates. With ``widen_tiny``, each
   side of a box shorter than the second-finest anchor stride is first widened to that stride
   about the box centre, for this step only (ultralytics 8.4's ``select_candidates_in_gts``: 8 px
   with a P2 level, 16 px without). Padded ground truths and anchors whose centre lies in an
   ignore region are never candidates.
2. *Alignment*: ``t = s^alpha * u^beta`` with ``s`` the predicted probability of the box's class
   and ``u`` the overlap of the predicted box with the ground truth, measured by the pluggable
   ``metric``: ``"iou"``, ``"ciou"`` (CIoU clamped at 0, as ultralytics ranks; it also sets the
   soft targets and settles conflicts), ``"nwd"`` (normalized Wasserstein, never 0 for disjoint
   boxes) or
   ``"sabl"`` (``mu(s) NWD + (1 - mu(s)) IoU``, see :func:`ssabnet.ops.overlaps.sabl_overlap`).
3. *Positives*: the ``topk`` candidates with the largest ``t > 0``. (Candidates with ``t = 0``
   would get a zero target score and zero box weight, i.e. behave as negatives, so they are
   left negative.) An anchor claimed by several ground truths keeps the one it overlaps most.
4. *Targets*: the matched box, and a soft class score ``t * max_u / max_t`` (per ground truth,
   the alignment is rescaled so that its best anchor gets that anchor's overlap) on the matched
   class, 0 elsewhere.

Everything is vectorised over the batch ``B``, anchors ``A`` and padded ground truths ``M``,
without Python loops: the candidate mask is a dense ``O(B M A)`` boolean; everything after it
(overlaps, alignment, top-k by sorting, conflicts) is sparse over the candidate pairs only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssabnet.ops.overlaps import (
    BETA,
    KAPPA,
    SABL_C,
    box_iou_pairs,
    complete_box_iou_pairs,
    normalized_wasserstein_distance,
    sabl_overlap,
)

METRICS = ("iou", "ciou", "nwd", "sabl")


@dataclass(frozen=True)
class Assignment:
    """Result of an assignment for a batch (``A`` anchors, ``C`` classes).

    Attributes:
        fg_mask: ``Tensor[B, A]`` bool, positive anchors.
        matched_gt_idx: ``Tensor[B, A]`` int64 index into the padded ground truths (0 for
            negatives: read it only where ``fg_mask``).
        target_boxes: ``Tensor[B, A, 4]`` xyxy input pixels of the matched box (0 for negatives).
        target_scores: ``Tensor[B, A, C]`` soft classification targets in ``[0, 1]``.
    """

    fg_mask: Tensor
    matched_gt_idx: Tensor
    target_boxes: Tensor
    target_scores: Tensor

    @property
    def num_fg(self) -> int:
        return int(self.fg_mask.sum())


def positives_per_gt(assignment: Assignment, num_gt: int) -> Tensor:
    """Number of positive anchors of each padded ground truth, ``Tensor[B, M]`` int64."""
    batch = assignment.fg_mask.shape[0]
    counts = torch.zeros(batch, num_gt, dtype=torch.int64, device=assignment.fg_mask.device)
    return counts.scatter_add_(1, assignment.matched_gt_idx, assignment.fg_mask.to(torch.int64))


def anchors_in_regions(anchor_points: Tensor, regions: Tensor, region_mask: Tensor) -> Tensor:
    """Whether each anchor centre lies inside any (valid) region of its image.

    Args:
        anchor_points: ``Tensor[A, 2]`` ``(x, y)`` pixels.
        regions: ``Tensor[B, K, 4]`` xyxy pixels (padded).
        region_mask: ``Tensor[B, K]`` bool, valid regions.

    Returns:
        ``Tensor[B, A]`` bool (inclusive borders).
    """
    if regions.shape[1] == 0:
        return torch.zeros(
            regions.shape[0], anchor_points.shape[0], dtype=torch.bool, device=anchor_points.device
        )
    x = anchor_points[:, 0][None, None]  # [1, 1, A]
    y = anchor_points[:, 1][None, None]
    inside = (
        (x >= regions[..., 0:1])
        & (x <= regions[..., 2:3])
        & (y >= regions[..., 1:2])
        & (y <= regions[..., 3:4])
        & region_mask[..., None]
    )  # [B, K, A]
    return inside.any(1)


@dataclass(frozen=True)
class TaskAlignedAssigner:
    """Task-aligned assigner (module docstring); a frozen set of numbers, called per batch.

    The defaults are the SSABNet recipe, defined here once: :class:`ssabnet.losses.LossConfig`'s
    ``assigner_*`` fields read them (and ``sabl_*``/``nwd_C`` the constants of
    :mod:`ssabnet.ops.overlaps`).

    Args:
        num_classes: ``C``.
        topk: positives per ground truth at most (10 as in YOLOv8/TOOD).
        alpha, beta: exponents of the classification score and the overlap.
        metric: overlap ``"iou"`` | ``"ciou"`` | ``"nwd"`` | ``"sabl"``.
        center_radius: candidate radius around the box centre in strides (0 = off).
        widen_tiny: for candidate selection only, widen box sides shorter than the
            second-finest anchor stride to that stride (ultralytics' tiny-box rule).
        kappa, mod_beta, C, modulation: SABL/NWD parameters of the metric (pixels).
    """

    num_classes: int
    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0
    # ciou + widen_tiny (ultralytics 8.4's rule): chosen with the training recipe's other parity
    # switches on the tuning split (docs/results.md section 4: +2.2 AP on baseline-n-p2, +0.4 on
    # ssabnet-n, one seed). The SABL metric (NWD with C = 12 px for small boxes) doubles the
    # soft-target sum of objects under 16 px (benchmarks/balance_weights.py) and never helped.
    metric: str = "ciou"
    center_radius: float = 0.0
    widen_tiny: bool = True
    kappa: float = KAPPA
    mod_beta: float = BETA
    C: float = SABL_C
    modulation: str = "exp"
    eps: float = 1e-9  # px: an anchor centre must be this far inside the box

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown assigner metric {self.metric!r}; expected one of {METRICS}")
        if self.topk < 1 or self.num_classes < 1:
            raise ValueError(f"assigner needs topk >= 1 and num_classes >= 1, got {self}")

    def overlap(self, pred_boxes: Tensor, gt_boxes: Tensor) -> Tensor:
        """Overlap in ``[0, 1]`` of matched ``Tensor[N, 4]`` pairs under :attr:`metric`."""
        if self.metric == "iou":
            return box_iou_pairs(pred_boxes, gt_boxes)
        if self.metric == "ciou":
            return complete_box_iou_pairs(pred_boxes, gt_boxes).clamp(min=0)
        if self.metric == "nwd":
            return normalized_wasserstein_distance(pred_boxes, gt_boxes, C=self.C)
        return sabl_overlap(
            pred_boxes,
            gt_boxes,
            kappa=self.kappa,
            beta=self.mod_beta,
            C=self.C,
            modulation=self.modulation,
        )

    @torch.no_grad()
    def __call__(
        self,
        pred_scores: Tensor,
        pred_boxes: Tensor,
        anchor_points: Tensor,
        anchor_strides: Tensor,
        gt_labels: Tensor,
        gt_boxes: Tensor,
        gt_mask: Tensor,
        anchor_ignore: Tensor | None = None,
    ) -> Assignment:
        """Assign anchors of a batch.

        Args:
            pred_scores: ``Tensor[B, A, C]`` class probabilities (after sigmoid).
            pred_boxes: ``Tensor[B, A, 4]`` decoded xyxy input pixels.
            anchor_points: ``Tensor[A, 2]`` anchor centres ``(x, y)`` in input pixels.
            anchor_strides: ``Tensor[A]`` stride of each anchor in pixels.
            gt_labels: ``Tensor[B, M]`` int64 in ``0..C-1`` (any value where padded).
            gt_boxes: ``Tensor[B, M, 4]`` xyxy input pixels (padded).
            gt_mask: ``Tensor[B, M]`` bool, real (non-padding) ground truths.
            anchor_ignore: ``Tensor[B, A]`` bool, anchors that may not become positive.
        """
        batch, num_anchors, num_classes = pred_scores.shape
        num_gt = gt_boxes.shape[1]
        device = pred_scores.device
        if num_classes != self.num_classes:
            raise ValueError(f"pred_scores has {num_classes} classes, expected {self.num_classes}")
        fg_mask = torch.zeros(batch, num_anchors, dtype=torch.bool, device=device)
        matched = torch.zeros(batch, num_anchors, dtype=torch.int64, device=device)
        target_boxes = torch.zeros(batch, num_anchors, 4, dtype=torch.float32, device=device)
        target_scores = torch.zeros(
            batch, num_anchors, num_classes, dtype=torch.float32, device=device
        )
        if num_gt == 0 or not bool(gt_mask.any()):
            return Assignment(fg_mask, matched, target_boxes, target_scores)

        gt_boxes = gt_boxes.float()
        x = anchor_points[:, 0].float()[None, None]  # [1, 1, A]
        y = anchor_points[:, 1].float()[None, None]
        candidate_boxes = gt_boxes
        if self.widen_tiny:
            candidate_boxes = widen_tiny_sides(gt_boxes, anchor_strides)
        x1, y1, x2, y2 = (candidate_boxes[..., i : i + 1] for i in range(4))  # [B, M, 1] each
        candidate = (
            (x > x1 + self.eps) & (x < x2 - self.eps) & (y > y1 + self.eps) & (y < y2 - self.eps)
        )  # [B, M, A]
        if self.center_radius > 0:
            radius = self.center_radius * anchor_strides.float()[None, None]
            candidate |= ((x - (x1 + x2) / 2).abs() < radius) & ((y - (y1 + y2) / 2).abs() < radius)
        candidate &= gt_mask[:, :, None]
        if anchor_ignore is not None:
            candidate &= ~anchor_ignore[:, None, :]

        # From here on everything is sparse over the K candidate pairs (b, m, a).
        b_idx, m_idx, a_idx = candidate.nonzero(as_tuple=True)
        labels = gt_labels.long().clamp(0, num_classes - 1)
        pair_overlap = self.overlap(pred_boxes[b_idx, a_idx].float(), gt_boxes[b_idx, m_idx])
        pair_overlap = pair_overlap.clamp(0, 1)
        pair_score = pred_scores[b_idx, a_idx, labels[b_idx, m_idx]].float()
        # The alignment is kept as a logarithm: s^0.5 u^6 underflows float32 for the small
        # overlaps (NWD of a far box, IoU of a tiny one) that matter most here.
        aligned = (pair_score > 0) & (pair_overlap > 0)
        pair_log_align = (
            self.alpha * pair_score.clamp(min=1e-30).log()
            + self.beta * pair_overlap.clamp(min=1e-30).log()
        )
        b_idx, m_idx, a_idx = b_idx[aligned], m_idx[aligned], a_idx[aligned]
        pair_overlap, pair_log_align = pair_overlap[aligned], pair_log_align[aligned]

        # Top-k per ground truth: order pairs by (gt, alignment desc) and keep ranks < k.
        gt_flat = b_idx * num_gt + m_idx
        order = _lexsort(gt_flat, -pair_log_align)
        gt_sorted = gt_flat[order]
        counts = torch.bincount(gt_sorted, minlength=batch * num_gt)
        starts = counts.cumsum(0) - counts
        rank = torch.arange(order.numel(), device=device) - starts[gt_sorted]
        keep = order[rank < self.topk]

        # An anchor claimed by several ground truths keeps the one it overlaps most (ties: the
        # lower gt index): order by (anchor, overlap desc, gt) and keep the first per anchor.
        anchor_flat = b_idx[keep] * num_anchors + a_idx[keep]
        order = _lexsort(anchor_flat, -pair_overlap[keep], m_idx[keep])
        anchor_sorted = anchor_flat[order]
        first = torch.ones_like(anchor_sorted, dtype=torch.bool)
        first[1:] = anchor_sorted[1:] != anchor_sorted[:-1]
        keep = keep[order[first]]

        pb, pm, pa = b_idx[keep], m_idx[keep], a_idx[keep]
        fg_mask[pb, pa] = True
        matched[pb, pa] = pm
        target_boxes[pb, pa] = gt_boxes[pb, pm]

        # Soft score: per ground truth, t / max(t) * max(u) over its positives, in log space.
        pos_log_align, pos_overlap = pair_log_align[keep], pair_overlap[keep]
        pos_gt = gt_flat[keep]
        max_log_align = torch.full((batch * num_gt,), -torch.inf, device=device).scatter_reduce_(
            0, pos_gt, pos_log_align, reduce="amax", include_self=True
        )
        max_overlap = torch.zeros(batch * num_gt, device=device).scatter_reduce_(
            0, pos_gt, pos_overlap, reduce="amax", include_self=True
        )
        soft = torch.exp(pos_log_align - max_log_align[pos_gt]) * max_overlap[pos_gt]
        target_scores[pb, pa, labels[pb, pm]] = soft
        return Assignment(fg_mask, matched, target_boxes, target_scores)


def widen_tiny_sides(gt_boxes: Tensor, anchor_strides: Tensor) -> Tensor:
    """Boxes whose sides shorter than the second-finest stride are widened to it, about the centre.

    The candidate rule of ultralytics 8.4's ``TaskAlignedAssigner`` (``stride_val``: the second
    entry of the model's strides, the only one with a single level). Width and height are
    widened independently; longer sides are unchanged.

    Args:
        gt_boxes: ``Tensor[..., 4]`` xyxy pixels.
        anchor_strides: ``Tensor[A]`` stride of each anchor in pixels.

    Returns:
        ``Tensor[..., 4]`` xyxy pixels.
    """
    strides = torch.unique(anchor_strides.float())  # sorted ascending
    floor = strides[1] if strides.numel() > 1 else strides[0]
    centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2
    size = (gt_boxes[..., 2:] - gt_boxes[..., :2]).clamp(min=floor)
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def _lexsort(*keys: Tensor) -> Tensor:
    """Permutation sorting by ``keys[0]``, then ``keys[1]``, ... (all ascending, stable)."""
    order = torch.arange(keys[0].numel(), device=keys[0].device)
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    return order
