"""A confidence threshold for counts and galleries: the F1-optimal one by default.

AP needs every score, so AP and ΔAP are always computed unthresholded; counts (TP / FP / FN,
error types) and galleries are shown at a threshold, by default the one that maximises F1 over
the run (all classes pooled, IoU 0.5, objects counted as in the AP: status ``tp``/``fn``).

Thresholding cannot change a label of a kept detection: the matcher is greedy in descending
score, so a detection's match (and TIDE's label: an object that makes it a duplicate was taken
by a *higher* score) only depends on higher-scoring detections. It does change the object side:
an object matched only by a detection below the threshold is unmatched at that threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ssabnet.analysis.taxonomy import ALL, FP_TYPES
from ssabnet.evaluation.matching import MatchTables
from ssabnet.scales import size_bucket_names


@dataclass(frozen=True)
class ThresholdChoice:
    """The F1-optimal confidence threshold of a run.

    Attributes:
        score: keep detections with ``score >= score`` (0.0 when nothing can be chosen).
        f1, precision, recall: at that threshold (pooled over classes, IoU 0.5).
    """

    score: float
    f1: float
    precision: float
    recall: float


def f1_optimal_threshold(tables: MatchTables) -> ThresholdChoice:
    """The score threshold that maximises pooled F1 (the highest such score on ties).

    Only distinct scores are candidates (all detections at one score are kept or dropped
    together). Returns ``ThresholdChoice(0.0, 0.0, 0.0, 0.0)`` without objects or detections.
    """
    dets, gts = tables.dets, tables.gts
    num_gt = int(gts["status"].isin(["tp", "fn"]).sum())
    counted = dets[dets["status"].isin(["tp", "fp"])]
    if num_gt == 0 or counted.empty:
        return ThresholdChoice(0.0, 0.0, 0.0, 0.0)
    score = counted["score"].to_numpy(dtype=np.float64)
    order = np.argsort(-score, kind="stable")
    score = score[order]
    tp = np.cumsum((counted["status"].to_numpy()[order] == "tp").astype(np.float64))
    rank = np.arange(1, len(score) + 1, dtype=np.float64)
    last_of_score = np.append(score[1:] != score[:-1], True)  # cut only between scores
    precision = tp / rank
    recall = tp / num_gt
    denom = precision + recall
    f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    f1 = np.where(last_of_score, f1, -1.0)
    best = int(np.argmax(f1))
    return ThresholdChoice(
        float(score[best]), float(f1[best]), float(precision[best]), float(recall[best])
    )


def objects_found(tables: MatchTables, threshold: float) -> np.ndarray:
    """``bool[G]``: objects matched by a detection scoring ``>= threshold``."""
    gts = tables.gts
    score = gts["det_score"].to_numpy(dtype=np.float64)
    return (gts["status"].to_numpy() == "tp") & (np.nan_to_num(score, nan=-np.inf) >= threshold)


def object_labels_at(labelled: MatchTables, threshold: float) -> pd.Series:
    """Per object, its TIDE label at ``threshold`` (index aligned with ``labelled.gts``).

    ``tp`` (matched by a kept detection), ``loc`` / ``cls`` (not matched, but a kept
    localisation / classification error points at it; the highest score decides),
    ``miss`` (nothing kept points at it) or ``ignored``. ``labelled``: from
    :func:`ssabnet.analysis.label_errors`.
    """
    dets, gts = labelled
    label = np.where(gts["error_type"].to_numpy() == "ignored", "ignored", "miss").astype(object)
    label[objects_found(labelled, threshold)] = "tp"
    pointing = dets[dets["error_type"].isin(["loc", "cls"]) & (dets["score"] >= threshold)]
    if not pointing.empty:
        pointing = pointing.sort_values("score", ascending=False, kind="stable")
        pointing = pointing.drop_duplicates(["image_id", "error_gt"])
        row = pd.Series(
            np.arange(len(gts)), index=pd.MultiIndex.from_arrays([gts["image_id"], gts["gt_index"]])
        )
        rows = row.reindex(
            pd.MultiIndex.from_arrays([pointing["image_id"], pointing["error_gt"]])
        ).to_numpy()
        types = pointing["error_type"].to_numpy(dtype=object)
        open_ = label[rows] == "miss"
        label[rows[open_]] = types[open_]
    return pd.Series(label, index=gts.index, name="label_at_threshold")


def error_counts_at(labelled: MatchTables, threshold: float) -> pd.DataFrame:
    """Counts per bucket (rows ``all`` + size buckets) at a confidence threshold.

    Columns: ``tp``, ``fp`` (kept detections), ``fn`` (objects not matched by a kept
    detection), the FP types ``cls loc both dupe bkg`` (kept detections, charged as in the
    taxonomy), ``miss`` / ``loc_gt`` / ``cls_gt`` (the ``fn`` objects by label at the
    threshold), ``precision`` and ``recall``.
    """
    dets, gts = labelled
    kept = dets[(dets["score"] >= threshold) & dets["error_type"].isin(["tp", *FP_TYPES])]
    obj_label = object_labels_at(labelled, threshold)
    positive = obj_label != "ignored"
    rows = {}
    for bucket in (ALL, *size_bucket_names()):
        d = kept if bucket == ALL else kept[kept["error_bucket"] == bucket]
        g = (
            obj_label[positive]
            if bucket == ALL
            else obj_label[positive & (gts["size_bucket"] == bucket)]
        )
        row = {"tp": int((d["error_type"] == "tp").sum())}
        row["fp"] = len(d) - row["tp"]
        row["fn"] = int((g != "tp").sum())
        for t in FP_TYPES:
            row[t] = int((d["error_type"] == t).sum())
        row["miss"] = int((g == "miss").sum())
        row["loc_gt"] = int((g == "loc").sum())
        row["cls_gt"] = int((g == "cls").sum())
        found = int((g == "tp").sum())
        row["precision"] = row["tp"] / len(d) if len(d) else float("nan")
        row["recall"] = found / len(g) if len(g) else float("nan")
        rows[bucket] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "bucket"
    return frame


__all__ = [
    "ThresholdChoice",
    "error_counts_at",
    "f1_optimal_threshold",
    "object_labels_at",
    "objects_found",
]
