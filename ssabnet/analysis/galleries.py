"""Rows for the galleries: false positives by type and size, and "missed by A, found by B".

Each row carries the boxes to draw (xyxy, original image pixels): the detection or object
itself and the nearest box of the other kind, so a crop with context shows *why* it is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssabnet.analysis.taxonomy import FP_TYPES
from ssabnet.analysis.threshold import objects_found
from ssabnet.errors import InputFileError
from ssabnet.evaluation.matching import MatchTables
from ssabnet.scales import size_bucket_names

BOX = ["x1", "y1", "x2", "y2"]


def _check_bucket(bucket: str | None) -> None:
    if bucket is not None and bucket not in size_bucket_names():
        raise ValueError(f"unknown size bucket {bucket!r}; expected one of {size_bucket_names()}")


def _lookup(table: pd.DataFrame, key: str, image_ids, indices, columns) -> pd.DataFrame:
    """Rows of ``table`` at ``(image_id, key)`` pairs (NaN where the index is -1)."""
    indexed = table.set_index(["image_id", key])[columns]
    found = indexed.reindex(pd.MultiIndex.from_arrays([np.asarray(image_ids), np.asarray(indices)]))
    return found.reset_index(drop=True)


def false_positive_gallery(
    labelled: MatchTables,
    threshold: float = 0.0,
    error_type: str | None = None,
    bucket: str | None = None,
    limit: int = 24,
) -> pd.DataFrame:
    """Kept false positives, most confident first.

    Args:
        labelled: tables from :func:`ssabnet.analysis.label_errors`.
        threshold: keep detections with ``score >= threshold``.
        error_type: one of :data:`~ssabnet.analysis.taxonomy.FP_TYPES` or ``None`` for all.
        bucket: the bucket the error is charged to (the object's size; own size for ``bkg``).

    Returns:
        Detection rows (``image_id``, ``det_index``, ``class_name``, ``score``, ``x1..y2``,
        ``error_type``, ``error_bucket``, ``best_iou``, ...) plus the object the error points
        at (``gt_class``, ``gt_x1..gt_y2``; NaN for ``bkg``), at most ``limit``.
    """
    _check_bucket(bucket)
    if error_type is not None and error_type not in FP_TYPES:
        raise ValueError(f"unknown false-positive type {error_type!r}; expected {FP_TYPES}")
    dets, gts = labelled
    rows = dets[dets["error_type"].isin(FP_TYPES if error_type is None else [error_type])]
    rows = rows[rows["score"] >= threshold]
    if bucket is not None:
        rows = rows[rows["error_bucket"] == bucket]
    rows = rows.sort_values(
        ["score", "image_id", "det_index"], ascending=[False, True, True], kind="stable"
    ).head(max(0, int(limit)))
    rows = rows.reset_index(drop=True)
    target = _lookup(gts, "gt_index", rows["image_id"], rows["error_gt"], ["class_name", *BOX])
    target.columns = ["gt_class", *(f"gt_{c}" for c in BOX)]
    return pd.concat([rows, target], axis=1)


def _same_ground_truth(a: MatchTables, b: MatchTables) -> None:
    cols = ["image_id", "gt_index", "label", *BOX]
    ga, gb = a.gts[cols].reset_index(drop=True), b.gts[cols].reset_index(drop=True)
    if len(ga) != len(gb) or not ga.equals(gb):
        raise InputFileError(
            "the two runs were evaluated on different ground truth (images or objects differ); "
            "compare runs validated on the same dataset"
        )


def missed_by_a_found_by_b(
    a: MatchTables,
    b: MatchTables,
    threshold_a: float,
    threshold_b: float,
    bucket: str | None = None,
    limit: int = 24,
) -> pd.DataFrame:
    """Objects run A does not find at ``threshold_a`` that run B finds at ``threshold_b``.

    Swap the arguments for the reverse. Both runs must have been evaluated on the same
    ground truth (checked).

    Returns:
        Object rows (``image_id``, ``gt_index``, ``class_name``, ``x1..y2``, ``size``,
        ``size_bucket``) smallest first, with B's matching detection (``b_score``, ``b_iou``,
        ``b_x1..b_y2``) and A's nearest detection of any class and score (``a_near_iou``,
        ``a_near_score``, ``a_near_class``, ``a_x1..a_y2``; NaN when A has none near it).
    """
    _check_bucket(bucket)
    _same_ground_truth(a, b)
    gts = a.gts
    positive = gts["status"].isin(["tp", "fn"]).to_numpy()
    chosen = positive & ~objects_found(a, threshold_a) & objects_found(b, threshold_b)
    if bucket is not None:
        chosen &= (gts["size_bucket"] == bucket).to_numpy()
    rows = gts.loc[chosen, ["image_id", "gt_index", "class_name", *BOX, "size", "size_bucket"]]
    rows = rows.sort_values(["size", "image_id", "gt_index"], kind="stable")
    rows = rows.head(max(0, int(limit))).reset_index(drop=True)
    b_obj = _lookup(
        b.gts, "gt_index", rows["image_id"], rows["gt_index"], ["det_index", "det_score", "iou"]
    )
    b_box = _lookup(b.dets, "det_index", rows["image_id"], b_obj["det_index"], BOX)
    a_obj = _lookup(
        a.gts,
        "gt_index",
        rows["image_id"],
        rows["gt_index"],
        ["near_det", "near_iou", "near_score", "near_class"],
    )
    a_box = _lookup(a.dets, "det_index", rows["image_id"], a_obj["near_det"], BOX)
    out = rows.assign(
        b_score=b_obj["det_score"].to_numpy(),
        b_iou=b_obj["iou"].to_numpy(),
        a_near_iou=a_obj["near_iou"].to_numpy(),
        a_near_score=a_obj["near_score"].to_numpy(),
        a_near_class=a_obj["near_class"].to_numpy(),
    )
    for c in BOX:
        out[f"b_{c}"] = b_box[c].to_numpy()
        out[f"a_{c}"] = a_box[c].to_numpy()
    return out


__all__ = ["false_positive_gallery", "missed_by_a_found_by_b"]
