"""Paired bootstrap over images of the AP difference between two detectors (app, ablations).

The AP is the COCO 101-point **AP50** (``metric="AP50"``, default) or **AP@[.5:.95]**
(``metric="AP"``) recomputed from the matching tables (:mod:`ssabnet.evaluation.matching`):
re-running COCOeval on each of 1000 resamples would take minutes, whereas the tables give each
resample's AP from weighted cumulative sums. For ``AP`` the tables are re-matched once at each
of COCO's ten IoU thresholds (:func:`~ssabnet.evaluation.matching.rematch`) and a class's AP is
the mean over the thresholds, as COCOeval averages its precision array. On the full data the
``all`` value equals the COCO AP50 (and AP) exactly.

Per size bucket (``by="bucket"``) the tables' IoU-0.5 matching of the ``all`` range is reused:
a TP counts in the bucket of its ground truth (a TP on another bucket's GT is ignored there), an
unmatched detection is an FP of the bucket of its own size, and only that bucket's GT count as
positives -- COCOeval's area-range rules without re-matching per range, so per-bucket values
can differ slightly from COCOeval's per-range AP50.

An image drawn ``k`` times contributes its detections and GT with weight ``k``; this is the same
AP as physically repeating the image (ties aside).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ssabnet.errors import InputFileError
from ssabnet.evaluation.matching import COCO_IOU_THRESHOLDS, MatchTables, rematch
from ssabnet.scales import size_bucket_names

_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCOeval params.recThrs
#: at most this many weight cells per chunk of resamples (memory bound)
_CHUNK_CELLS = 20_000_000


def _groups(tables: MatchTables, by: str) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Per group: (det weight-sign series: 1 TP, 0 FP, NaN not counted; GT positive mask)."""
    dets, gts = tables.dets, tables.gts
    counted_gt = gts["status"].isin(["tp", "fn"])
    counted_det = dets["status"].isin(["tp", "fp"])
    groups: dict[str, tuple[pd.Series, pd.Series]] = {}
    if by == "bucket":
        groups["all"] = (dets["tp"].where(counted_det).astype(float), counted_gt)
        gt_bucket = pd.Series(gts["size_bucket"].to_numpy(), index=gts.index)
        key = gts.set_index(["image_id", "gt_index"])["size_bucket"]
        matched = pd.MultiIndex.from_arrays([dets["image_id"], dets["matched_gt"]])
        matched_bucket = pd.Series(key.reindex(matched).to_numpy(), index=dets.index)
        for bucket in size_bucket_names():
            tp = (dets["status"] == "tp") & (matched_bucket == bucket)
            fp = (dets["status"] == "fp") & (dets["size_bucket"] == bucket)
            flag = pd.Series(np.nan, index=dets.index).mask(tp, 1.0).mask(fp, 0.0)
            groups[bucket] = (flag, counted_gt & (gt_bucket == bucket))
    elif by == "class":
        groups["all"] = (dets["tp"].where(counted_det).astype(float), counted_gt)
    else:
        raise ValueError(f"unknown grouping {by!r}; use 'bucket' or 'class'")
    return groups


def _class_arrays(tables, flag, positive, label, image_index):
    dets, gts = tables.dets, tables.gts
    sel = (dets["label"] == label) & flag.notna()
    d = pd.DataFrame(
        {
            "img": dets.loc[sel, "image_id"].map(image_index),
            "score": dets.loc[sel, "score"],
            "tp": flag[sel],
        }
    )
    d = d.sort_values(["img", "score"], ascending=[True, False], kind="stable")
    d = d.sort_values("score", ascending=False, kind="stable")
    g = gts.loc[positive & (gts["label"] == label), "image_id"].map(image_index)
    gt_per_image = np.bincount(g.to_numpy(dtype=np.int64), minlength=len(image_index))
    return d["img"].to_numpy(np.int64), d["tp"].to_numpy(np.float64), gt_per_image


def _weighted_ap(counts: np.ndarray, det_img: np.ndarray, tp: np.ndarray, gt_per_image):
    """COCO 101-point AP (as :func:`coco_interpolated_ap_from_cumsums`) per row of ``counts``.

    Args:
        counts: ``float[B, I]`` image multiplicities of each resample.
        det_img: ``int64[D]`` image of each detection, detections in COCOeval order.
        tp: ``float[D]`` 1 for TP, 0 for FP.
        gt_per_image: ``int64[I]`` positives per image.

    Returns:
        ``float[B]`` AP, NaN where a resample holds no positive.
    """
    num_gt = counts @ gt_per_image
    out = np.full(len(counts), np.nan)
    if len(det_img) == 0:
        out[num_gt > 0] = 0.0
        return out
    num_dets = len(det_img)
    rows_per_chunk = max(1, _CHUNK_CELLS // num_dets)
    for start in range(0, len(counts), rows_per_chunk):
        weights = counts[start : start + rows_per_chunk, det_img]
        rows = np.arange(len(weights))
        tpc = np.cumsum(weights * tp, axis=1)
        fpc = np.cumsum(weights * (1.0 - tp), axis=1)
        gt_chunk = num_gt[start : start + len(weights)]
        recall = tpc / np.maximum(gt_chunk, 1.0)[:, None]
        precision = tpc / (tpc + fpc + np.spacing(1))
        precision = np.flip(np.maximum.accumulate(np.flip(precision, 1), axis=1), 1)
        # one searchsorted for all rows: recalls are non-decreasing in [0, 1] per row, so
        # shifting row b by 2b makes the flattened array sorted (row 0, the full data, is exact)
        offset = 2.0 * rows[:, None]
        idx = np.searchsorted((recall + offset).ravel(), (_RECALL_THRESHOLDS + offset).ravel())
        idx = idx.reshape(len(weights), -1) - rows[:, None] * num_dets
        sampled = np.where(
            idx < num_dets, precision[rows[:, None], np.minimum(idx, num_dets - 1)], 0.0
        )
        out[start : start + len(weights)] = np.where(gt_chunk > 0, sampled.mean(axis=1), np.nan)
    return out


def bootstrap_ap_difference(
    matches_a: MatchTables | Sequence[MatchTables],
    matches_b: MatchTables | Sequence[MatchTables],
    n_boot: int = 1000,
    seed: int = 0,
    by: str = "bucket",
    confidence: float = 0.95,
    metric: str = "AP50",
) -> pd.DataFrame:
    """Paired bootstrap (over images) of ``AP50(B) - AP50(A)`` (or of AP@[.5:.95]).

    Args:
        matches_a, matches_b: matching tables of two detectors on the SAME images and GT; or
            one sequence per detector (e.g. its training seeds): then each resample's AP of a
            side is the mean over its tables, so the interval is for the seed-averaged gain
            (image resampling only; the seed-to-seed spread is not in it).
        n_boot: number of resamples.
        seed: seed of the resampling (same seed, same intervals).
        by: ``"bucket"`` (rows ``all`` + the size buckets of :mod:`ssabnet.scales`) or
            ``"class"`` (one row per class name, all sizes).
        confidence: two-sided percentile interval.
        metric: ``"AP50"`` or ``"AP"`` (AP@[.5:.95]: ten re-matchings, about 10x the time).

    Returns:
        DataFrame indexed by group with ``ap_a``, ``ap_b``, ``delta`` (B - A on the full data),
        ``ci_low``, ``ci_high``, ``p_value`` (two-sided bootstrap sign test, ``NaN`` when the
        difference is identically 0) and ``n_gt``. AP is ``NaN`` for a group without GT.
    """
    if metric not in ("AP50", "AP"):
        raise ValueError(f"unknown metric {metric!r}; use 'AP50' or 'AP'")
    thresholds = (0.5,) if metric == "AP50" else COCO_IOU_THRESHOLDS
    side_a = [matches_a] if isinstance(matches_a, MatchTables) else list(matches_a)
    side_b = [matches_b] if isinstance(matches_b, MatchTables) else list(matches_b)
    if not side_a or not side_b:
        raise ValueError("bootstrap_ap_difference needs at least one matching result per side")
    first = side_a[0]
    image_ids = sorted(set(first.gts["image_id"]))
    for tables in side_a + side_b:
        if image_ids != sorted(set(tables.gts["image_id"])) or len(first.gts) != len(tables.gts):
            raise InputFileError("the matching results are not on the same images/ground truth")
    image_index = {image_id: i for i, image_id in enumerate(image_ids)}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(image_ids), size=(n_boot, len(image_ids)))
    counts = np.zeros((n_boot + 1, len(image_ids)))
    counts[0] = 1.0  # row 0: the full data
    np.add.at(counts, (np.repeat(np.arange(1, n_boot + 1), len(image_ids)), draws.ravel()), 1.0)
    labels = sorted(set(first.gts["label"]) | set(first.dets["label"]))
    labels = [lab for lab in labels if lab >= 0]
    names = dict(zip(first.gts["label"], first.gts["class_name"], strict=False))
    names.update(zip(first.dets["label"], first.dets["class_name"], strict=False))
    # per table: one (tables, groups) per IoU threshold
    variants = {
        id(t): [
            (v, _groups(v, by))
            for v in (t if thr == 0.5 else rematch(t, thr) for thr in thresholds)
        ]
        for t in side_a + side_b
    }
    rows = {}
    for group in variants[id(first)][0][1]:
        if by == "class":
            targets = [(names.get(lab, str(lab)), [lab]) for lab in labels]
        else:
            targets = [(group, labels)]
        for row_name, class_labels in targets:
            per_model = []
            n_gt = 0
            for side in (side_a, side_b):
                per_table = []
                for tables in side:
                    aps = []
                    n_gt = 0
                    for lab in class_labels:
                        per_iou = []
                        for matched, groups in variants[id(tables)]:
                            flag, positive = groups[group]
                            det_img, tp, gt_img = _class_arrays(
                                matched, flag, positive, lab, image_index
                            )
                            per_iou.append(_weighted_ap(counts, det_img, tp, gt_img))
                        n_gt += int(gt_img.sum())
                        aps.append(np.mean(per_iou, axis=0))
                    stacked = np.stack(aps)
                    valid = ~np.isnan(stacked)
                    per_table.append(
                        np.where(
                            valid.any(0),
                            np.nansum(stacked, 0) / np.maximum(valid.sum(0), 1),
                            np.nan,
                        )
                    )
                per_model.append(np.mean(per_table, axis=0))
            ap_a, ap_b = per_model
            deltas = (ap_b - ap_a)[1:]
            deltas = deltas[~np.isnan(deltas)]
            alpha = (1.0 - confidence) / 2
            if len(deltas):
                lo, hi = np.quantile(deltas, [alpha, 1 - alpha])
                if np.all(deltas == 0):
                    p_value = np.nan
                else:
                    p_value = min(1.0, 2 * min((deltas <= 0).mean(), (deltas >= 0).mean()))
            else:
                lo = hi = p_value = np.nan
            rows[row_name] = {
                "ap_a": ap_a[0],
                "ap_b": ap_b[0],
                "delta": ap_b[0] - ap_a[0],
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p_value,
                "n_gt": n_gt,
            }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "group"
    return frame


__all__ = ["bootstrap_ap_difference"]
