"""Counts and curves on saved matching tables: PR curves, TP/FN/FP counts, missed objects.

Everything here reads the tables of :mod:`ssabnet.evaluation.matching` (IoU 0.5, ``all`` area
range) -- no re-inference. Size buckets follow :mod:`ssabnet.evaluation.bootstrap`: a TP counts
in the bucket of the ground truth it matched, an FP in the bucket of its own size, and only GT
with status ``tp``/``fn`` are positives (ignored objects, objects in ignore regions and
detections past the per-image cap count nowhere). Counts take a confidence ``threshold``
(detections scoring below it are dropped, so an object matched only by them is missed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssabnet.evaluation.matching import MatchTables
from ssabnet.scales import size_bucket_names

GROUPINGS = ("size_bucket", "class_name", "occlusion")
PR_COLUMNS = ["score", "recall", "precision"]


def _matched_gt_bucket(tables: MatchTables) -> pd.Series:
    """Per detection: size bucket of the GT it matched (NaN when unmatched)."""
    key = tables.gts.set_index(["image_id", "gt_index"])["size_bucket"]
    matched = pd.MultiIndex.from_arrays([tables.dets["image_id"], tables.dets["matched_gt"]])
    return pd.Series(key.reindex(matched).to_numpy(), index=tables.dets.index)


def precision_recall_curve(
    tables: MatchTables, bucket: str | None = None, class_name: str | None = None
) -> pd.DataFrame:
    """Precision and recall at IoU 0.5 as the score threshold is lowered, classes pooled.

    All classes (or ``class_name`` only) are ranked together by score, so this is the pooled
    ("micro") curve used to compare detectors visually; COCO AP averages per-class curves.

    Args:
        tables: matching tables of one detector.
        bucket: restrict to one size bucket (``"very_tiny"`` ... ``"large"``) or ``None``.
        class_name: restrict to one class or ``None``.

    Returns:
        DataFrame ``score, recall, precision``, one row per counted detection in descending
        score order (empty when there is no GT or no counted detection).
    """
    dets, gts = tables.dets, tables.gts
    if bucket is not None and bucket not in size_bucket_names():
        raise ValueError(f"unknown size bucket {bucket!r}; expected one of {size_bucket_names()}")
    positive = gts["status"].isin(["tp", "fn"])
    is_tp = dets["status"] == "tp"
    is_fp = dets["status"] == "fp"
    if bucket is not None:
        positive &= gts["size_bucket"] == bucket
        is_tp &= _matched_gt_bucket(tables) == bucket
        is_fp &= dets["size_bucket"] == bucket
    if class_name is not None:
        positive &= gts["class_name"] == class_name
        in_class = dets["class_name"] == class_name
        is_tp &= in_class
        is_fp &= in_class
    num_gt = int(positive.sum())
    counted = dets.loc[is_tp | is_fp, ["score"]].assign(tp=is_tp[is_tp | is_fp])
    if num_gt == 0 or counted.empty:
        return pd.DataFrame(columns=PR_COLUMNS, dtype=float)
    counted = counted.sort_values("score", ascending=False, kind="stable")
    tp_cum = np.cumsum(counted["tp"].to_numpy(dtype=np.float64))
    rank = np.arange(1, len(counted) + 1, dtype=np.float64)
    return pd.DataFrame(
        {
            "score": counted["score"].to_numpy(dtype=np.float64),
            "recall": tp_cum / num_gt,
            "precision": tp_cum / rank,
        }
    )


def _found(gts: pd.DataFrame, threshold: float) -> pd.Series:
    score = gts["det_score"].fillna(-np.inf)
    return (gts["status"] == "tp") & (score >= threshold)


def error_counts(
    tables: MatchTables, by: str = "size_bucket", threshold: float = 0.0
) -> pd.DataFrame:
    """TP, FN and FP counts (and recall) per group, at a confidence threshold.

    Args:
        threshold: count detections with ``score >= threshold`` only (0: all of them).
        by: ``"size_bucket"`` (rows in bucket order), ``"class_name"`` or ``"occlusion"``
            (GT occlusion level; detections have none, so ``fp`` is 0 there and the FP total
            is reported in the row ``"(detections)"``).

    Returns:
        DataFrame indexed by group with integer ``tp``, ``fn``, ``fp`` and float ``recall``
        (``tp / (tp + fn)``, NaN without GT).
    """
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; expected one of {GROUPINGS}")
    dets, gts = tables.dets, tables.gts
    gt_groups = gts[by].astype(str) if by == "occlusion" else gts[by]
    found = _found(gts, threshold)
    missed = gts["status"].isin(["tp", "fn"]) & ~found
    tp = gts.loc[found].groupby(gt_groups[found]).size()
    fn = gts.loc[missed].groupby(gt_groups[missed]).size()
    is_fp = (dets["status"] == "fp") & (dets["score"] >= threshold)
    if by == "occlusion":
        fp = pd.Series({"(detections)": int(is_fp.sum())})
    else:
        fp = dets.loc[is_fp].groupby(by).size()
    if by == "size_bucket":
        index = size_bucket_names()
    else:
        index = sorted(set(tp.index) | set(fn.index) | set(fp.index), key=str)
    frame = pd.DataFrame(
        {
            "tp": tp.reindex(index, fill_value=0),
            "fn": fn.reindex(index, fill_value=0),
            "fp": fp.reindex(index, fill_value=0),
        }
    ).astype(np.int64)
    total = frame["tp"] + frame["fn"]
    frame["recall"] = np.where(total > 0, frame["tp"] / total.where(total > 0, 1), np.nan)
    frame.index.name = by
    return frame


def missed_objects(
    tables: MatchTables,
    buckets: tuple[str, ...] = ("very_tiny", "tiny"),
    class_name: str | None = None,
    limit: int = 24,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """Ground-truth objects that no detection scoring ``>= threshold`` found, smallest first.

    Returns:
        Rows of ``tables.gts`` (``image_id``, ``gt_index``, ``class_name``, ``x1..y2`` original
        px, ``size``, ``size_bucket``, ``occlusion``, ...), at most ``limit``, sorted by size
        then image id.
    """
    unknown = sorted(set(buckets) - set(size_bucket_names()))
    if unknown:
        raise ValueError(f"unknown size bucket(s) {unknown}; expected {size_bucket_names()}")
    gts = tables.gts
    missed = gts[
        gts["status"].isin(["tp", "fn"])
        & ~_found(gts, threshold)
        & gts["size_bucket"].isin(buckets)
    ]
    if class_name is not None:
        missed = missed[missed["class_name"] == class_name]
    missed = missed.sort_values(["size", "image_id", "gt_index"], kind="stable")
    return missed.head(max(0, int(limit))).reset_index(drop=True)


__all__ = ["GROUPINGS", "error_counts", "missed_objects", "precision_recall_curve"]
