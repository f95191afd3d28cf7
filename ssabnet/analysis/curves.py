"""What Ultralytics' ``val`` shows, from our tables: per-class PR curves and a confusion matrix.

Both at IoU 0.5 (the matching tables' threshold). The PR curves use every score (like AP); the
confusion matrix counts the detections kept at a confidence threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssabnet.analysis.counts import precision_recall_curve
from ssabnet.analysis.taxonomy import FP_TYPES
from ssabnet.analysis.threshold import objects_found
from ssabnet.evaluation.matching import MatchTables

BACKGROUND = "background"


def class_names(tables: MatchTables) -> list[str]:
    """Class names in label order (from both tables; "(none)" objects excluded)."""
    pairs = pd.concat(
        [tables.dets[["label", "class_name"]], tables.gts[["label", "class_name"]]]
    ).drop_duplicates("label")
    pairs = pairs[pairs["label"] >= 0].sort_values("label")
    return pairs["class_name"].astype(str).tolist()


def per_class_pr_curves(tables: MatchTables, bucket: str | None = None) -> pd.DataFrame:
    """Precision/recall at IoU 0.5 per class as the score threshold is lowered.

    Returns:
        Long DataFrame ``class_name, score, recall, precision`` (classes without objects in
        ``bucket`` or without counted detections are absent).
    """
    parts = []
    for name in class_names(tables):
        curve = precision_recall_curve(tables, bucket=bucket, class_name=name)
        if not curve.empty:
            parts.append(curve.assign(class_name=name))
    if not parts:
        return pd.DataFrame(columns=["class_name", "score", "recall", "precision"])
    return pd.concat(parts, ignore_index=True)[["class_name", "score", "recall", "precision"]]


def confusion_matrix(labelled: MatchTables, threshold: float) -> pd.DataFrame:
    """Confusion matrix at IoU 0.5 and a confidence threshold, with a background row/column.

    Rows: the true class (``background`` = no object), columns: the predicted class
    (``background`` = no detection). Each kept detection lands in one cell of its class's
    column: a TP on the diagonal; the highest-scoring kept classification error (IoU >= 0.5
    with an object of another class, TIDE ``cls``) on an object no kept detection matched
    in that object's row; every other kept detection in the ``background`` row. Each object
    not accounted for so lands in its row's ``background`` column. So row sums are the
    objects per class and column sums the kept detections per class.

    Args:
        labelled: tables from :func:`ssabnet.analysis.label_errors`.
        threshold: keep detections with ``score >= threshold``.
    """
    dets, gts = labelled
    names = class_names(labelled)
    axis = [*names, BACKGROUND]
    index = {name: i for i, name in enumerate(axis)}
    matrix = np.zeros((len(axis), len(axis)), dtype=np.int64)
    kept = dets[(dets["score"] >= threshold) & dets["error_type"].isin(["tp", *FP_TYPES])]
    found = objects_found(labelled, threshold)
    positive = gts["error_type"].to_numpy() != "ignored"
    gt_class = gts["class_name"].astype(str).to_numpy()
    gt_row = pd.Series(
        np.arange(len(gts)), index=pd.MultiIndex.from_arrays([gts["image_id"], gts["gt_index"]])
    )
    claimed = np.zeros(len(gts), dtype=bool)
    cls_err = kept[kept["error_type"] == "cls"].sort_values("score", ascending=False, kind="stable")
    rows_of = gt_row.reindex(
        pd.MultiIndex.from_arrays([cls_err["image_id"], cls_err["error_gt"]])
    ).to_numpy()
    confused = np.zeros(len(cls_err), dtype=bool)
    for i, row in enumerate(
        rows_of.astype(np.int64)
    ):  # at most one detection per object (highest score)
        if not found[row] and not claimed[row] and positive[row]:
            claimed[row] = True
            confused[i] = True
    pred_col = kept["class_name"].astype(str).map(index).to_numpy(dtype=np.int64)
    true_row = np.full(len(kept), index[BACKGROUND])
    is_tp = kept["error_type"].to_numpy() == "tp"
    true_row[is_tp] = pred_col[is_tp]
    conf_pos = np.flatnonzero(kept["error_type"].to_numpy() == "cls")
    order = np.argsort(-kept["score"].to_numpy()[conf_pos], kind="stable")
    conf_pos = conf_pos[order]
    true_row[conf_pos[confused]] = np.array(
        [index[c] for c in gt_class[rows_of[confused]]], dtype=np.int64
    )
    np.add.at(matrix, (true_row, pred_col), 1)
    unaccounted = positive & ~found & ~claimed
    missed_rows = np.array([index[c] for c in gt_class[unaccounted]], dtype=np.int64)
    np.add.at(matrix, (missed_rows, index[BACKGROUND]), 1)
    frame = pd.DataFrame(matrix, index=axis, columns=axis)
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


__all__ = ["BACKGROUND", "class_names", "confusion_matrix", "per_class_pr_curves"]
