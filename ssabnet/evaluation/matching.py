"""Per-detection and per-object matching tables at IoU 0.5 (error analysis, app, FiftyOne).

The matcher is COCOeval's ``evaluateImg`` for the ``all`` area range at one IoU threshold,
re-implemented so that its decisions are visible: per image and class, detections in descending
score order (stable) take the unmatched *normal* ground truth with the highest IoU ``>= 0.5``
(the later one on ties, as COCOeval does); only when none qualifies may they fall on an *ignore*
ground truth (``iscrowd``: overlap = intersection / detection area, reusable), which makes them
"ignored" -- neither TP nor FP. An ignore GT can therefore never take a detection away from a
real object. Ground truth and detections with >= 50% of their area in an ignore region, and
detections past the per-image cap, are listed with their own status and never matched.

Because the rules are COCOeval's, :func:`ap50_from_tables` reproduces the COCO ``AP50``
(101-point interpolation, area ``all``, ``maxDets`` = cap) exactly; the tests assert it.

Tables (pandas):

``dets``: one row per submitted detection -- ``image_id``, ``det_index`` (row in that image's
prediction arrays), ``label``, ``class_name``, ``score``, ``x1, y1, x2, y2``, ``size``
(``sqrt(w*h)``), ``size_bucket``, ``status`` (``tp`` / ``fp`` / ``ignored`` (on an ignore GT) /
``in_ignore_region`` / ``over_max_dets``), ``tp`` (bool), ``matched_gt`` (record object index or
-1), ``iou`` (with the matched GT, NaN when unmatched), and the *evidence* of the error
taxonomy (:mod:`ssabnet.analysis.taxonomy`), measured against the real objects of the image
(evaluated GT outside ignore regions, every class, matched or not; plain IoU):

* ``best_iou``, ``best_gt``, ``best_gt_class``, ``best_gt_size_bucket``: the object of any class
  with the highest IoU (0.0 / -1 / None / None when the image has none);
* ``cls_iou``, ``cls_gt``: the same for objects of the detection's own class;
* ``other_iou``, ``other_gt``: the same for objects of another class;
* ``dupe_iou``, ``dupe_gt``: the same for objects of its own class already matched (``tp``).

Ties keep the first object in record order (``argmax``), as TIDE does.

``gts``: one row per record object -- ``image_id``, ``gt_index``, ``label``, ``class_name``,
``x1..y2``, ``size``, ``size_bucket``, ``occlusion``, ``truncation``, ``status`` (``tp`` / ``fn`` /
``ignore`` (ignore GT or no class) / ``in_ignore_region``), ``matched`` (bool), ``det_index``,
``det_score``, ``iou`` (of the matched detection), and the detection of any class *nearest* to
the object among the matched ones (kept: not cut by the cap, not in an ignore region):
``near_iou`` (0.0 when the image has none), ``near_det`` (-1), ``near_score`` (NaN),
``near_class`` (None). For a missed object this says whether something was close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ssabnet.atomic_io import atomic_path
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.evaluation.ignore import ImageView
from ssabnet.ops.boxes import box_size, pairwise_overlap
from ssabnet.scales import size_bucket_index, size_bucket_names

MATCH_IOU = 0.5
_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCOeval params.recThrs
DETS_FILE = "matches_dets.parquet"
GTS_FILE = "matches_gts.parquet"


class MatchTables(NamedTuple):
    """The two matching tables (``dets, gts = evaluator.matches()``)."""

    dets: pd.DataFrame
    gts: pd.DataFrame

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``matches_dets.parquet`` and ``matches_gts.parquet`` into ``out_dir`` (atomic)."""
        out_dir = Path(out_dir)
        for table, name in ((self.dets, DETS_FILE), (self.gts, GTS_FILE)):
            with atomic_path(out_dir / name) as tmp:
                table.to_parquet(tmp, index=False)
        return out_dir / DETS_FILE, out_dir / GTS_FILE

    @classmethod
    def load(cls, out_dir: str | Path) -> MatchTables:
        out_dir = Path(out_dir)
        return cls(pd.read_parquet(out_dir / DETS_FILE), pd.read_parquet(out_dir / GTS_FILE))


def greedy_match(overlap: np.ndarray, gt_crowd: np.ndarray, threshold: float = MATCH_IOU):
    """COCOeval's greedy assignment for detections already in descending score order.

    Args:
        overlap: ``float[D, G]`` from :func:`ssabnet.ops.boxes.pairwise_overlap`, GT columns
            with normal GT first and crowd (ignore) GT last.
        gt_crowd: ``bool[G]``.

    Returns:
        ``det_gt`` ``int64[D]`` (matched GT column or -1) and ``det_iou`` ``float64[D]``.
    """
    num_dets, num_gts = overlap.shape
    det_gt = np.full(num_dets, -1, dtype=np.int64)
    det_iou = np.zeros(num_dets, dtype=np.float64)
    if num_dets == 0 or num_gts == 0:
        return det_gt, det_iou
    thr = min(threshold, 1 - 1e-10)
    normal = ~gt_crowd
    taken = np.zeros(num_gts, dtype=bool)
    for d in np.flatnonzero((overlap >= thr).any(axis=1)):
        row = overlap[d]
        free = normal & ~taken & (row >= thr)
        candidates = free if free.any() else (gt_crowd & (row >= thr))
        if not candidates.any():
            continue
        best = np.where(candidates, row, -1.0)
        g = num_gts - 1 - int(np.argmax(best[::-1]))  # the last of equal maxima, as COCOeval
        det_gt[d], det_iou[d] = g, row[g]
        if normal[g]:
            taken[g] = True
    return det_gt, det_iou


def _best_column(iou: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise max of ``iou`` over the ``mask``-ed columns: ``(value, column)``, with 0.0 / -1
    where no column qualifies or none overlaps (the first column on ties, ``argmax``)."""
    if iou.shape[1] == 0:
        return np.zeros(iou.shape[0]), np.full(iou.shape[0], -1, dtype=np.int64)
    masked = np.where(mask, iou, -1.0)
    col = np.argmax(masked, axis=1)
    value = masked[np.arange(len(col)), col]
    found = value > 0
    return np.where(found, value, 0.0), np.where(found, col, -1).astype(np.int64)


def _evidence(
    pred: Mapping[str, np.ndarray],
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    gt_real: np.ndarray,
    gt_used: np.ndarray,
    det_kept: np.ndarray,
) -> dict[str, np.ndarray]:
    """The taxonomy's evidence of one image (see the module docstring for the columns).

    Args:
        gt_real: ``bool[G]`` evaluated objects outside ignore regions (the candidates).
        gt_used: ``bool[G]`` objects matched by a detection.
        det_kept: indices of the detections the matcher saw (for the objects' ``near_*``).
    """
    iou = pairwise_overlap(
        np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4),
        gt_boxes,
        np.zeros(len(gt_boxes), dtype=bool),
    )  # [D, G]
    same = pred["labels"][:, None] == gt_labels[None, :]
    real = gt_real[None, :]
    out = {}
    out["best_iou"], out["best_gt"] = _best_column(iou, real)
    out["cls_iou"], out["cls_gt"] = _best_column(iou, real & same)
    out["other_iou"], out["other_gt"] = _best_column(iou, real & ~same)
    out["dupe_iou"], out["dupe_gt"] = _best_column(iou, real & same & gt_used[None, :])
    near_iou, near_col = _best_column(iou[det_kept].T, np.ones((1, len(det_kept)), dtype=bool))
    out["near_iou"] = near_iou
    out["near_det"] = (
        np.where(near_col >= 0, det_kept[np.maximum(near_col, 0)], -1)
        if len(det_kept)
        else np.full(len(gt_boxes), -1, dtype=np.int64)
    )
    return out


def _image_tables(
    record: ImageRecord,
    pred: Mapping[str, np.ndarray],
    view: ImageView,
    info: DatasetInfo,
) -> tuple[dict, dict]:
    num_objects, num_dets = len(record.boxes), len(pred["scores"])
    gt_boxes = np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4)
    evaluated = record.evaluated
    gt_status = np.where(evaluated, "fn", "ignore").astype(object)
    gt_status[view.gt_in_region] = "in_ignore_region"
    gt_det = np.full(num_objects, -1, dtype=np.int64)
    gt_score = np.full(num_objects, np.nan)
    gt_iou = np.full(num_objects, np.nan)
    det_status = np.full(num_dets, "fp", dtype=object)
    det_status[view.det_over_max] = "over_max_dets"
    det_status[view.det_in_region] = "in_ignore_region"
    det_gt = np.full(num_dets, -1, dtype=np.int64)
    det_iou = np.full(num_dets, np.nan)
    kept = view.det_kept  # descending score order
    usable = ~view.gt_in_region
    for label in np.unique(pred["labels"][kept]):
        dets = kept[pred["labels"][kept] == label]
        normal_idx = np.flatnonzero(usable & evaluated & (record.labels == label))
        crowd_idx = np.flatnonzero(
            usable & ~evaluated & ((record.labels == label) | (record.labels < 0))
        )
        gt_idx = np.concatenate([normal_idx, crowd_idx])
        crowd = np.arange(len(gt_idx)) >= len(normal_idx)
        overlap = pairwise_overlap(pred["boxes"][dets], gt_boxes[gt_idx], crowd)
        match, iou = greedy_match(overlap, crowd)
        hit = match >= 0
        matched_gt = gt_idx[match[hit]]
        det_gt[dets[hit]] = matched_gt
        det_iou[dets[hit]] = iou[hit]
        on_crowd = crowd[match[hit]]
        det_status[dets[hit]] = np.where(on_crowd, "ignored", "tp")
        real = ~on_crowd
        gt_status[matched_gt[real]] = "tp"
        gt_det[matched_gt[real]] = dets[hit][real]
        gt_score[matched_gt[real]] = pred["scores"][dets[hit][real]]
        gt_iou[matched_gt[real]] = iou[hit][real]
    names = np.array([*info.classes, "(none)"], dtype=object)
    det_size = box_size(pred["boxes"])
    gt_size = box_size(gt_boxes)
    buckets = np.array(size_bucket_names(), dtype=object)
    gt_bucket = buckets[size_bucket_index(gt_size)]
    evidence = _evidence(
        pred,
        gt_boxes,
        np.asarray(record.labels, dtype=np.int64),
        usable & evaluated,
        gt_status == "tp",
        kept,
    )
    best_gt = evidence["best_gt"]
    has_best = best_gt >= 0
    gt_labels_named = names[np.asarray(record.labels, dtype=np.int64)]
    near_det = evidence["near_det"]
    has_near = near_det >= 0
    dets_table = {
        "image_id": np.full(num_dets, record.image_id, dtype=object),
        "det_index": np.arange(num_dets, dtype=np.int64),
        "label": pred["labels"],
        "class_name": names[pred["labels"]],
        "score": pred["scores"],
        "x1": pred["boxes"][:, 0],
        "y1": pred["boxes"][:, 1],
        "x2": pred["boxes"][:, 2],
        "y2": pred["boxes"][:, 3],
        "size": det_size,
        "size_bucket": buckets[size_bucket_index(det_size)],
        "status": det_status,
        "tp": det_status == "tp",
        "matched_gt": det_gt,
        "iou": det_iou,
        "best_iou": evidence["best_iou"],
        "best_gt": best_gt,
        "best_gt_class": np.where(has_best, gt_labels_named[np.maximum(best_gt, 0)], None)
        if num_objects
        else np.full(num_dets, None, dtype=object),
        "best_gt_size_bucket": np.where(has_best, gt_bucket[np.maximum(best_gt, 0)], None)
        if num_objects
        else np.full(num_dets, None, dtype=object),
        "cls_iou": evidence["cls_iou"],
        "cls_gt": evidence["cls_gt"],
        "other_iou": evidence["other_iou"],
        "other_gt": evidence["other_gt"],
        "dupe_iou": evidence["dupe_iou"],
        "dupe_gt": evidence["dupe_gt"],
    }
    gts_table = {
        "image_id": np.full(num_objects, record.image_id, dtype=object),
        "gt_index": np.arange(num_objects, dtype=np.int64),
        "label": np.asarray(record.labels, dtype=np.int64),
        "class_name": names[np.asarray(record.labels, dtype=np.int64)],
        "x1": gt_boxes[:, 0],
        "y1": gt_boxes[:, 1],
        "x2": gt_boxes[:, 2],
        "y2": gt_boxes[:, 3],
        "size": gt_size,
        "size_bucket": gt_bucket,
        "occlusion": np.asarray(record.occlusion, dtype=np.int64),
        "truncation": np.asarray(record.truncation, dtype=np.int64),
        "status": gt_status,
        "matched": gt_status == "tp",
        "det_index": gt_det,
        "det_score": gt_score,
        "iou": gt_iou,
        "near_iou": evidence["near_iou"],
        "near_det": near_det,
        "near_score": np.where(has_near, pred["scores"][np.maximum(near_det, 0)], np.nan)
        if num_dets
        else np.full(num_objects, np.nan),
        "near_class": np.where(has_near, names[pred["labels"][np.maximum(near_det, 0)]], None)
        if num_dets
        else np.full(num_objects, None, dtype=object),
    }
    return dets_table, gts_table


def _concat(parts: list[dict]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame()
    return pd.DataFrame({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})


def match_tables(
    info: DatasetInfo,
    records: Sequence[ImageRecord],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    views: Mapping[str, ImageView],
) -> MatchTables:
    """Build the matching tables for all records (images in ``image_id`` order)."""
    det_parts, gt_parts = [], []
    for record in sorted(records, key=lambda r: r.image_id):
        dets, gts = _image_tables(
            record, predictions[record.image_id], views[record.image_id], info
        )
        det_parts.append(dets)
        gt_parts.append(gts)
    return MatchTables(_concat(det_parts), _concat(gt_parts))


#: COCO's IoU thresholds of AP@[.5:.95].
COCO_IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))


def rematch(tables: MatchTables, iou_threshold: float) -> MatchTables:
    """The detection table re-matched at another IoU threshold, from the tables alone.

    Same rules as :func:`match_tables` (COCOeval's greedy matcher per image and class, ignore
    GT reusable and only when no real object qualifies); the matcher's inputs are read back
    from the tables: real objects are ``status`` ``tp``/``fn``, ignore objects ``ignore`` (of
    their class, or of every class when unlabelled), detections those with ``status`` ``tp``,
    ``fp`` or ``ignored`` (kept by the cap and the regions), in descending score order. At 0.5
    it returns the tables' own decisions (tested). Only ``status``, ``tp``, ``matched_gt`` and
    ``iou`` of ``dets`` change; ``gts`` is returned as is.
    """
    dets, gts = tables.dets, tables.gts
    status = dets["status"].to_numpy().copy()
    matched = np.full(len(dets), -1, dtype=np.int64)
    iou_out = np.full(len(dets), np.nan)
    kept = np.isin(status, ["tp", "fp", "ignored"])
    status[kept] = "fp"
    det_rows = pd.Series(np.arange(len(dets)))
    gt_boxes_all = gts[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    det_boxes_all = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    gt_status = gts["status"].to_numpy()
    gt_label = gts["label"].to_numpy(np.int64)
    gt_index = gts["gt_index"].to_numpy(np.int64)
    gt_by_image = pd.Series(np.arange(len(gts))).groupby(gts["image_id"].to_numpy()).indices
    kept_rows = det_rows[kept]
    order = np.lexsort(
        (
            dets["det_index"].to_numpy()[kept],
            -dets["score"].to_numpy()[kept],
            dets["label"].to_numpy()[kept],
            pd.factorize(dets["image_id"].to_numpy()[kept])[0],
        )
    )
    kept_rows = kept_rows.to_numpy()[order]
    keys = pd.MultiIndex.from_arrays(
        [dets["image_id"].to_numpy()[kept_rows], dets["label"].to_numpy()[kept_rows]]
    )
    for (image_id, label), rows in pd.Series(kept_rows).groupby(keys, sort=False).indices.items():
        det_idx = kept_rows[rows]
        g = gt_by_image.get(image_id, np.zeros(0, dtype=np.int64))
        normal = g[np.isin(gt_status[g], ["tp", "fn"]) & (gt_label[g] == label)]
        crowd = g[(gt_status[g] == "ignore") & ((gt_label[g] == label) | (gt_label[g] < 0))]
        cand = np.concatenate([normal, crowd])
        is_crowd = np.arange(len(cand)) >= len(normal)
        overlap = pairwise_overlap(det_boxes_all[det_idx], gt_boxes_all[cand], is_crowd)
        match, iou = greedy_match(overlap, is_crowd, iou_threshold)
        hit = match >= 0
        on_crowd = is_crowd[match[hit]]
        status[det_idx[hit]] = np.where(on_crowd, "ignored", "tp")
        matched[det_idx[hit]] = gt_index[cand[match[hit]]]
        iou_out[det_idx[hit]] = iou[hit]
    new = dets.assign(status=status, tp=status == "tp", matched_gt=matched, iou=iou_out)
    return MatchTables(new, gts)


def coco_interpolated_ap(tp_sorted: np.ndarray, fp_sorted: np.ndarray, num_gt: float) -> float:
    """COCO's 101-point interpolated AP of one class.

    Args:
        tp_sorted, fp_sorted: ``float[D]`` TP / FP weights of the detections in descending
            score order (ignored detections removed). Weights allow bootstrap multiplicities.
        num_gt: number (or total weight) of ground-truth objects.
    """
    if num_gt <= 0:
        return float("nan")
    tp = np.cumsum(tp_sorted, dtype=np.float64)
    fp = np.cumsum(fp_sorted, dtype=np.float64)
    return coco_interpolated_ap_from_cumsums(tp, fp, num_gt)


def coco_interpolated_ap_from_cumsums(
    tp: np.ndarray, fp: np.ndarray, num_gt: float, recall_thresholds: np.ndarray | None = None
) -> float:
    """COCOeval ``accumulate``'s AP from cumulative TP/FP counts ``float[D]`` (``num_gt > 0``).

    ``precision = tp / (tp + fp + eps)`` made non-increasing from the right, sampled at the
    first detection reaching each recall in ``0:0.01:1`` (0 past the last recall), averaged.
    ``recall_thresholds`` replaces COCOeval's ``np.linspace(0, 1, 101)`` (tidecv uses
    ``i / 100``, which differs in the last bit at some thresholds, e.g. 0.3).
    """
    if recall_thresholds is None:
        recall_thresholds = _RECALL_THRESHOLDS
    if len(tp) == 0:
        return 0.0
    recall = tp / num_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, recall_thresholds, side="left")
    sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def ap50_from_tables(tables: MatchTables, num_classes: int) -> float | None:
    """Mean over classes with GT of the COCO AP50 (area ``all``) computed from the tables.

    Detections are ordered as COCOeval's ``accumulate`` does: images in COCO id order (sorted
    ``image_id``), score-descending within an image, then a stable sort by score.
    """
    dets, gts = tables.dets, tables.gts
    aps = []
    for label in range(num_classes):
        num_gt = int(((gts["label"] == label) & gts["status"].isin(["tp", "fn"])).sum())
        if num_gt == 0:
            continue
        d = dets[(dets["label"] == label) & dets["status"].isin(["tp", "fp"])]
        d = d.sort_values(["image_id", "score"], ascending=[True, False], kind="stable")
        d = d.sort_values("score", ascending=False, kind="stable")
        tp = d["tp"].to_numpy(dtype=np.float64)
        aps.append(coco_interpolated_ap(tp, 1.0 - tp, num_gt))
    return float(np.mean(aps)) if aps else None
