"""Classification losses on logits with soft targets: BCE and varifocal.

Both are elementwise (``Tensor[..., C]`` in, ``Tensor[..., C]`` out, summed by the criterion) and
computed in float32 from logits (``binary_cross_entropy_with_logits`` is stable and AMP-safe).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bce_loss(logits: Tensor, target_scores: Tensor) -> Tensor:
    """Binary cross-entropy per class with soft targets ``q`` in ``[0, 1]``.

    Args:
        logits: ``Tensor[..., C]`` pre-sigmoid scores.
        target_scores: ``Tensor[..., C]`` soft targets (IoU-aware for positives, 0 for negatives).
    """
    return F.binary_cross_entropy_with_logits(
        logits.float(), target_scores.float(), reduction="none"
    )


def varifocal_loss(
    logits: Tensor, target_scores: Tensor, alpha: float = 0.75, gamma: float = 2.0
) -> Tensor:
    """Varifocal loss (Zhang et al., "VarifocalNet", CVPR 2021), elementwise ``Tensor[..., C]``.

    ``VFL(p, q) = -q (q log p + (1 - q) log(1 - p))`` where ``q > 0`` and ``-alpha p^gamma
    log(1 - p)`` where ``q = 0``: positives are weighted by their target quality, easy negatives
    are down-weighted as in focal loss. The weight uses the detached ``p``.
    """
    logits = logits.float()
    target_scores = target_scores.float()
    prob = logits.sigmoid().detach()
    weight = torch.where(target_scores > 0, target_scores, alpha * prob.pow(gamma))
    return F.binary_cross_entropy_with_logits(logits, target_scores, reduction="none") * weight
