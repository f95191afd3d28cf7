"""The "balancing" part of SABL: per-size-bucket normalisation of the box-loss weights.

Rule (our reading; switch it off with ``LossConfig.balance=False`` for the ablation). The positive
anchors of a batch carry box-loss weights ``w_i`` (their target scores). Group them by the size
bucket of their ground-truth box (:data:`ssabnet.scales.SIZE_BUCKETS`, on ``sqrt(w h)`` in input
pixels) and let ``n_b`` be the number of positives and ``W_b`` the weight sum in bucket ``b``.
Rescale::

    w_i' = w_i * (W / W_b) * n_b^gamma / sum_b' n_b'^gamma        (W = sum_i w_i)

so that the total weight is unchanged (``sum w' = W``: the loss scale and the tuned loss weights
stay valid) while each bucket's share of it is ``n_b^gamma / sum n^gamma``: ``gamma = 1`` is the
plain count-proportional weighting (no change up to the per-bucket mean of ``w``), ``gamma = 0``
gives every bucket present in the batch the same total weight, and the default ``gamma = 0.5``
is in between — tiny objects, usually the majority in UAV images, neither drown the few large
ones nor are drowned by their larger per-box gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssabnet.scales import SIZE_BUCKETS


def size_bucket_index_torch(sizes: Tensor) -> Tensor:
    """Index into ``SIZE_BUCKETS`` of each size (px), ``Tensor[N]`` int64 (lower edge inclusive)."""
    edges = torch.tensor([b.hi for b in SIZE_BUCKETS[:-1]], dtype=sizes.dtype, device=sizes.device)
    return torch.bucketize(sizes, edges, right=True)


@torch.no_grad()
def scale_balance_weights(weights: Tensor, gt_sizes: Tensor, gamma: float = 0.5) -> Tensor:
    """Rebalanced box-loss weights of the positives (module docstring has the rule).

    Args:
        weights: ``Tensor[N]`` >= 0, one per positive anchor.
        gt_sizes: ``Tensor[N]`` ``sqrt(w h)`` of each positive's ground truth, input pixels.
        gamma: bucket share exponent (1: unchanged shares, 0: equal shares per bucket).

    Returns:
        ``Tensor[N]`` with the same sum as ``weights``.
    """
    if weights.numel() == 0:
        return weights
    if gamma < 0:
        raise ValueError(f"balance gamma must be >= 0, got {gamma}")
    num_buckets = len(SIZE_BUCKETS)
    bucket = size_bucket_index_torch(gt_sizes.to(weights.dtype))
    counts = torch.zeros(num_buckets, dtype=weights.dtype, device=weights.device)
    counts.index_add_(0, bucket, torch.ones_like(weights))
    bucket_weight = torch.zeros_like(counts).index_add_(0, bucket, weights)
    total = weights.sum()
    if not bool(total > 0):
        return weights
    # Buckets whose positives all have weight 0 cannot carry a share (it would be lost).
    share = torch.where(bucket_weight > 0, counts.pow(gamma), torch.zeros_like(counts))
    share = share / share.sum()
    factor = torch.where(
        bucket_weight > 0, total * share / bucket_weight.clamp(min=1e-12), torch.zeros_like(share)
    )
    return weights * factor[bucket]
