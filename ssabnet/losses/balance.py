"""The "balancing" part of SABL: how the box/DFL weight of a batch is shared between objects.

This is this project's addition, not the paper's: the paper names a "balancing" loss but gives
no rule. Switch it off with ``LossConfig.balance=False``. The positive anchors of a batch carry
box-loss weights ``w_i`` (their target scores); the total ``W = sum_i w_i`` is always kept (the
loss scale and the tuned loss weights stay valid). Two units (``LossConfig.balance_unit``):

``"objects"`` (default). Let ``W_m`` be the weight sum of the positives of ground-truth object
``m``, ``n_b`` the number of objects (with any weight) in size bucket ``b``
(:data:`ssabnet.scales.SIZE_BUCKETS`, on ``sqrt(w h)`` in input pixels), and ``b(m)`` the bucket
of ``m``::

    w_i' = w_i / W_m * W * (n_b^gamma / sum_b' n_b'^gamma) / n_b        (i a positive of m)

Every object of a bucket gets the same total weight, whatever its number of positives (a medium
object brings up to ``topk`` = 10 positives, a tiny one 1-3), and a positive keeps its share of
its object's weight. ``gamma = 1`` (the default) gives *every object the same total weight* and
does not depend on the buckets at all (so not on the pixel frame); ``gamma < 1`` additionally
moves weight to rare size buckets (``gamma = 0``: each bucket present the same total).

``"anchors"`` (the first reading, kept for the ablation). Group the positives by the bucket of
their ground truth, ``n_b`` = positives (not objects) in ``b``, ``W_b`` their weight sum::

    w_i' = w_i * (W / W_b) * n_b^gamma / sum_b' n_b'^gamma

It counts anchors, so a bucket's share depends on how many positives its objects get from the
assigner: with ``gamma = 0.5`` and topk 10 it weights very tiny positives ~8x and medium ones
~0.9x on the synthetic size mix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssabnet.scales import SIZE_BUCKETS

BALANCE_UNITS = ("objects", "anchors")


def size_bucket_index_torch(sizes: Tensor) -> Tensor:
    """Index into ``SIZE_BUCKETS`` of each size (px), ``Tensor[N]`` int64 (lower edge inclusive)."""
    edges = torch.tensor([b.hi for b in SIZE_BUCKETS[:-1]], dtype=sizes.dtype, device=sizes.device)
    return torch.bucketize(sizes, edges, right=True)


def _bucket_shares(counts: Tensor, present: Tensor, gamma: float) -> Tensor:
    """``n_b^gamma / sum n^gamma`` over the buckets ``present`` (0 elsewhere), ``Tensor[K]``."""
    share = torch.where(present, counts.pow(gamma), torch.zeros_like(counts))
    return share / share.sum()


@torch.no_grad()
def scale_balance_weights(
    weights: Tensor,
    gt_sizes: Tensor,
    gamma: float = 0.5,
    object_ids: Tensor | None = None,
) -> Tensor:
    """Rebalanced box-loss weights of the positives (module docstring has both rules).

    Args:
        weights: ``Tensor[N]`` >= 0, one per positive anchor.
        gt_sizes: ``Tensor[N]`` ``sqrt(w h)`` of each positive's ground truth, input pixels.
        gamma: bucket share exponent.
        object_ids: ``Tensor[N]`` int64, the batch-unique id of each positive's ground truth:
            balance by objects. ``None``: balance by anchors (the ``"anchors"`` rule).

    Returns:
        ``Tensor[N]`` with the same sum as ``weights``.

    Example:
        >>> w, ids = torch.ones(4), torch.tensor([0, 1, 1, 1])  # 1 positive vs 3 positives
        >>> scale_balance_weights(w, torch.tensor([10.0, 50, 50, 50]), 1.0, ids)
        tensor([2.0000, 0.6667, 0.6667, 0.6667])
    """
    if weights.numel() == 0:
        return weights
    if gamma < 0:
        raise ValueError(f"balance gamma must be >= 0, got {gamma}")
    total = weights.sum()
    if not bool(total > 0):
        return weights
    num_buckets = len(SIZE_BUCKETS)
    bucket = size_bucket_index_torch(gt_sizes.to(weights.dtype))
    zeros = torch.zeros(num_buckets, dtype=weights.dtype, device=weights.device)
    if object_ids is None:
        counts = zeros.clone().index_add_(0, bucket, torch.ones_like(weights))
        bucket_weight = zeros.clone().index_add_(0, bucket, weights)
        # Buckets whose positives all have weight 0 cannot carry a share (it would be lost).
        present = bucket_weight > 0
        share = _bucket_shares(counts, present, gamma)
        factor = torch.where(
            present, total * share / bucket_weight.clamp(min=1e-12), torch.zeros_like(share)
        )
        return weights * factor[bucket]

    if object_ids.shape != weights.shape:
        raise ValueError(f"object_ids {tuple(object_ids.shape)} must match {tuple(weights.shape)}")
    objects, object_index = torch.unique(object_ids, return_inverse=True)  # [O], [N]
    object_weight = torch.zeros(objects.numel(), dtype=weights.dtype, device=weights.device)
    object_weight.index_add_(0, object_index, weights)
    # An object's bucket: all its positives share one ground truth, so one size.
    object_bucket = torch.zeros(objects.numel(), dtype=torch.int64, device=weights.device)
    object_bucket.scatter_(0, object_index, bucket)
    alive = object_weight > 0  # objects whose positives all weigh 0 keep 0
    counts = zeros.clone().index_add_(0, object_bucket, alive.to(weights.dtype))
    share = _bucket_shares(counts, counts > 0, gamma)
    per_object = total * share[object_bucket] / counts[object_bucket].clamp(min=1)  # [O]
    factor = torch.where(
        alive, per_object / object_weight.clamp(min=1e-12), torch.zeros_like(object_weight)
    )
    return weights * factor[object_index]
