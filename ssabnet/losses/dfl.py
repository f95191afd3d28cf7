"""Distribution Focal Loss (Li et al., "Generalized Focal Loss", NeurIPS 2020).

The head predicts each side distance (l, t, r, b, in stride units) as a distribution over the
integer bins ``0..reg_max-1``. For a continuous target ``y`` between bins ``i = floor(y)`` and
``i + 1`` the loss is ``-((i + 1 - y) log P(i) + (y - i) log P(i + 1))``, which pushes the mass
onto the two bins around ``y`` so that the expectation ``sum_k k P(k)`` is ``y``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def distribution_focal_loss(bin_logits: Tensor, target_distances: Tensor) -> Tensor:
    """DFL averaged over the four sides, one value per box.

    Args:
        bin_logits: ``Tensor[N, 4, reg_max]`` bin logits.
        target_distances: ``Tensor[N, 4]`` ltrb distances in stride units; clamped to
            ``[0, reg_max - 1 - 0.01]`` (farther sides cannot be represented).

    Returns:
        ``Tensor[N]`` float32.
    """
    reg_max = bin_logits.shape[-1]
    target = target_distances.float().clamp(0, reg_max - 1 - 0.01)
    left = target.long()
    right = left + 1
    weight_left = right.float() - target
    weight_right = 1 - weight_left
    log_probs = F.log_softmax(bin_logits.float(), dim=-1)  # [N, 4, reg_max]
    loss = -(
        log_probs.gather(-1, left[..., None])[..., 0] * weight_left
        + log_probs.gather(-1, right[..., None])[..., 0] * weight_right
    )
    return loss.mean(-1)
