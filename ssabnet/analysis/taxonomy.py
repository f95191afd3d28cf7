"""TIDE's six error types with their oracle ΔAP, per object size, from our matching tables.

The taxonomy of Bolya et al., "TIDE: A General Toolbox for Identifying Object Detection
Errors" (ECCV 2020), computed on the tables of :mod:`ssabnet.evaluation.matching` (COCO rules at
IoU 0.5, ``maxDets`` 500, VisDrone ignore objects and regions) -- or, with
:func:`tide_compat_tables`, with TIDE's own settings (``maxDets`` 100, no ignore regions).

**Per-detection labels.** A true positive is ``"tp"``. Every false positive gets exactly one
type, tested in TIDE's order with ``t_f = 0.5`` (foreground) and ``t_b = 0.1`` (background):

1. ``loc``: IoU with an object of its own class in ``[t_b, t_f]`` (localisation error);
2. ``cls``: IoU ``>= t_f`` with an object of another class (classification error);
3. ``dupe``: IoU ``>= t_f`` with an object of its class already taken by a higher score;
4. ``bkg``: IoU ``<= t_b`` with every object (background);
5. ``both``: anything else (wrong class *and* mislocalised).

Detections the matcher does not count (on an ignore object, in an ignore region, past the cap)
are ``"ignored"``. Every unmatched object is a ``miss`` unless a ``loc``/``cls`` error could
take it (TIDE's "usable" objects: they are labelled ``loc``/``cls`` on the GT side and their
fix is counted there, not as a miss).

**ΔAP (TIDE's oracle).** For one error type, fix every error of that type and nothing else, and
measure AP50 again: ``loc``/``cls`` errors become true positives of the object they point at
(only the highest-scoring one per object, and only if the object was not matched; the others
are removed), ``dupe``/``bkg``/``both`` errors are removed, and ``miss`` removes the missed
objects from the positives. ``ΔAP = max(0, AP_fixed - AP)`` (TIDE clamps the same way; a fix
cannot lower a 101-point interpolated AP except by changing which classes are averaged).

**Per size bucket.** Each counted detection and each error is charged to *the object it is
about*: a TP to the object it matched, a ``loc``/``cls``/``dupe``/``both`` error to the object
it points at, a miss to itself, and only a ``bkg`` error (no object near it) to its own size.
The bucket's AP50 then uses that attribution (classes with objects in the bucket), so a
``loc`` error on a 6-pixel car and its fix both land in ``very_tiny`` whatever size the
predicted box has. This differs from COCO's per-area AP in ``metrics.json`` (which re-matches
per area range and charges unmatched detections by their own size); the ``all`` bucket equals
``metrics.json``'s ``AP50``.

**Definitional differences from tidecv 1.0.1** (see ``docs/evaluation.md``): equal IoUs are
matched to the later object (COCOeval) instead of the first; precision has COCOeval's
``eps``; native mode adds ignore objects/regions and ``maxDets`` 500. With
:func:`tide_compat_tables` and ``compat=True`` the remaining differences are only ties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import InputFileError
from ssabnet.evaluation.ignore import coco_view
from ssabnet.evaluation.matching import (
    MATCH_IOU,
    MatchTables,
    coco_interpolated_ap_from_cumsums,
    match_tables,
)
from ssabnet.scales import size_bucket_names

#: TIDE's error types in its own order (short names as in ``tidecv``: Cls Loc Both Dupe Bkg Miss).
ERROR_TYPES: tuple[str, ...] = ("cls", "loc", "both", "dupe", "bkg", "miss")
#: False-positive types (one per detection); ``miss`` is the ground-truth side.
FP_TYPES: tuple[str, ...] = ("cls", "loc", "both", "dupe", "bkg")
#: TIDE's background threshold ``t_b``: below it a detection overlaps nothing.
BACKGROUND_IOU = 0.1
#: ``maxDets`` of TIDE (``tidecv.Data(max_dets=100)``).
TIDE_MAX_DETS = 100
#: tidecv's recall grid (``i / 100``; COCOeval's ``linspace`` differs in the last bit at some).
TIDE_RECALL_THRESHOLDS = np.arange(101) / 100
#: Buckets reported: every size bucket plus ``all``.
ALL = "all"

#: Matching-table columns the taxonomy needs (tables written before they existed lack them).
EVIDENCE_COLUMNS = (
    "best_iou",
    "best_gt",
    "cls_iou",
    "cls_gt",
    "other_iou",
    "other_gt",
    "dupe_iou",
    "dupe_gt",
)


@dataclass(frozen=True)
class ErrorReport:
    """The taxonomy of one detector on one dataset.

    Attributes:
        ap: AP50 (0-1) per bucket (``"all"`` and each size bucket; ``None`` without objects).
        delta_ap: ``{bucket: {type: ΔAP}}`` in AP units (0-1), TIDE's oracle, unthresholded
            (``None`` for a bucket without objects, like ``ap``).
        counts: ``{bucket: {type: n}}`` number of errors of each type (all scores).
        dets: the detections table with ``error_type``, ``error_gt``, ``error_bucket``.
        gts: the objects table with ``error_type`` (``tp``, ``miss``, ``loc``, ``cls`` or
            ``ignored``) and ``error_bucket``.
        settings: how it was computed (``mode``, ``max_dets``, thresholds).
    """

    ap: dict[str, float | None]
    delta_ap: dict[str, dict[str, float | None]]
    counts: dict[str, dict[str, int]]
    dets: pd.DataFrame = field(repr=False)
    gts: pd.DataFrame = field(repr=False)
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """``{"AP": .., "buckets": {"all": {"cls": ΔAP, ...}, "very_tiny": {...}, ...}, ...}``.

        ``AP`` and ``buckets`` are the issue's schema (AP50 and ΔAP in 0-1 units like
        ``metrics.json``); ``bucket_AP`` and ``counts`` add the per-bucket AP50 and the number
        of errors of each type, ``settings`` how they were computed.
        """
        return {
            "AP": self.ap[ALL],
            "buckets": self.delta_ap,
            "bucket_AP": self.ap,
            "counts": self.counts,
            "settings": self.settings,
        }

    def table(self) -> pd.DataFrame:
        """One row per bucket: ``AP50``, then ``dAP_<type>`` and ``n_<type>`` per error type."""
        rows = {}
        for bucket in self.delta_ap:
            row = {"AP50": self.ap[bucket]}
            row.update({f"dAP_{t}": self.delta_ap[bucket][t] for t in ERROR_TYPES})
            row.update({f"n_{t}": self.counts[bucket][t] for t in ERROR_TYPES})
            rows[bucket] = row
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "bucket"
        return frame


def check_evidence(tables: MatchTables, source: str = "matching tables") -> None:
    """Raise ``ValueError`` naming ``source`` when the tables lack the taxonomy's columns."""
    missing = [c for c in EVIDENCE_COLUMNS if c not in tables.dets.columns]
    if "near_iou" not in tables.gts.columns:
        missing.append("near_iou")
    if missing:
        raise InputFileError(
            f"{source}: no column(s) {missing} (written by an older ssabnet); evaluate again "
            "with `ssabnet val` or use `ssabnet errors --predictions P --data D`"
        )


def label_errors(
    tables: MatchTables,
    foreground_iou: float = MATCH_IOU,
    background_iou: float = BACKGROUND_IOU,
) -> MatchTables:
    """TIDE's label of every detection and object (copies of the tables with new columns).

    Added to ``dets``: ``error_type`` (``tp``, one of :data:`FP_TYPES`, ``ignored``),
    ``error_gt`` (record index of the object the error points at, -1 for ``bkg``/``tp``/
    ``ignored``; a TP's object is ``matched_gt``), ``error_bucket`` (the bucket it is charged
    to, None when ignored), ``oracle_tp`` (bool: the ``loc``/``cls`` error that TIDE's fix turns
    into a true positive). Added to ``gts``: ``error_type`` (``tp``, ``miss``, ``loc``, ``cls``
    -- an unmatched object a ``loc``/``cls`` error could take -- or ``ignored``) and
    ``error_bucket`` (its size bucket).
    """
    check_evidence(tables)
    dets, gts = tables.dets.copy(), tables.gts.copy()
    status = dets["status"].to_numpy()
    fp = status == "fp"
    cls_iou = dets["cls_iou"].to_numpy(dtype=np.float64)
    other_iou = dets["other_iou"].to_numpy(dtype=np.float64)
    dupe_iou = dets["dupe_iou"].to_numpy(dtype=np.float64)
    best_iou = dets["best_iou"].to_numpy(dtype=np.float64)
    loc = fp & (cls_iou >= background_iou) & (cls_iou <= foreground_iou)
    cls = fp & ~loc & (other_iou >= foreground_iou)
    dupe = fp & ~loc & ~cls & (dupe_iou >= foreground_iou)
    bkg = fp & ~loc & ~cls & ~dupe & (best_iou <= background_iou)
    both = fp & ~loc & ~cls & ~dupe & ~bkg
    error_type = np.full(len(dets), "ignored", dtype=object)
    error_type[status == "tp"] = "tp"
    for name, mask in (("loc", loc), ("cls", cls), ("dupe", dupe), ("bkg", bkg), ("both", both)):
        error_type[mask] = name
    error_gt = np.full(len(dets), -1, dtype=np.int64)
    error_gt[loc] = dets["cls_gt"].to_numpy()[loc]
    error_gt[cls] = dets["other_gt"].to_numpy()[cls]
    error_gt[dupe] = dets["dupe_gt"].to_numpy()[dupe]
    error_gt[both] = dets["best_gt"].to_numpy()[both]

    # object key -> row of gts (image_id, gt_index)
    gt_row = pd.Series(
        np.arange(len(gts)), index=pd.MultiIndex.from_arrays([gts["image_id"], gts["gt_index"]])
    )
    target = np.where(status == "tp", dets["matched_gt"].to_numpy(), error_gt)
    has_target = target >= 0
    target_row = np.full(len(dets), -1, dtype=np.int64)
    if has_target.any():
        keys = pd.MultiIndex.from_arrays(
            [dets["image_id"].to_numpy()[has_target], target[has_target]]
        )
        target_row[has_target] = gt_row.reindex(keys).to_numpy(dtype=np.int64)
    gt_bucket = gts["size_bucket"].to_numpy(dtype=object)
    gt_used = gts["status"].to_numpy() == "tp"
    error_bucket = dets["size_bucket"].to_numpy(dtype=object).copy()
    error_bucket[target_row >= 0] = gt_bucket[target_row[target_row >= 0]]
    error_bucket = np.where(error_type == "ignored", None, error_bucket)

    # TIDE's BestGTMatch: among loc/cls errors on an unmatched object, the highest score (the
    # first in image / score order on ties) is fixed into a TP; the others are removed.
    candidate = (loc | cls) & (target_row >= 0)
    candidate[candidate] &= ~gt_used[target_row[candidate]]
    oracle_tp = np.zeros(len(dets), dtype=bool)
    gt_error = np.full(len(gts), None, dtype=object)
    if candidate.any():
        idx = np.flatnonzero(candidate)
        order = np.lexsort(
            (dets["det_index"].to_numpy()[idx], -dets["score"].to_numpy()[idx], target_row[idx])
        )
        idx = idx[order]
        first = np.ones(len(idx), dtype=bool)
        first[1:] = target_row[idx][1:] != target_row[idx][:-1]
        oracle_tp[idx[first]] = True
        gt_error[target_row[idx[first]]] = error_type[idx[first]]
    gt_status = gts["status"].to_numpy()
    gt_type = np.full(len(gts), "ignored", dtype=object)
    gt_type[gt_status == "tp"] = "tp"
    unmatched = gt_status == "fn"
    gt_type[unmatched] = np.where(pd.isna(gt_error[unmatched]), "miss", gt_error[unmatched])
    dets["error_type"] = error_type
    dets["error_gt"] = error_gt
    dets["error_bucket"] = error_bucket
    dets["oracle_tp"] = oracle_tp
    gts["error_type"] = gt_type
    gts["error_bucket"] = np.where(gt_type == "ignored", None, gt_bucket)
    return MatchTables(dets, gts)


def _class_codes(dets: pd.DataFrame, gts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense codes ``0..K-1`` for the labels of both tables (shared)."""
    labels = np.union1d(dets["label"].to_numpy(np.int64), gts["label"].to_numpy(np.int64))
    return (
        np.searchsorted(labels, dets["label"].to_numpy(np.int64)),
        np.searchsorted(labels, gts["label"].to_numpy(np.int64)),
        len(labels),
    )


def _mean_ap(
    score: np.ndarray,
    tp: np.ndarray,
    cls: np.ndarray,
    num_gt: np.ndarray,
    base_classes: np.ndarray,
    recall_thresholds: np.ndarray | None = None,
) -> float | None:
    """Mean AP50 over ``base_classes`` of detections already in global rank order.

    Args:
        score, tp, cls: ``[D]`` counted detections (rank order: score descending, then image,
            then detection index), their TP flag and class code.
        num_gt: ``float[K]`` positives per class.
        base_classes: ``bool[K]`` classes averaged. A class whose positives were all fixed
            away counts with AP 0 if it still has detections and drops out otherwise (TIDE).
    """
    order = np.argsort(cls, kind="stable")  # groups by class, keeps rank order inside
    cls_sorted = cls[order]
    tp_sorted = tp[order].astype(np.float64)
    bounds = np.searchsorted(cls_sorted, np.arange(len(num_gt) + 1))
    aps = []
    for k in np.flatnonzero(base_classes):
        lo, hi = bounds[k], bounds[k + 1]
        if num_gt[k] <= 0:
            if hi > lo:
                aps.append(0.0)
            continue
        t = np.cumsum(tp_sorted[lo:hi])
        f = np.cumsum(1.0 - tp_sorted[lo:hi])
        aps.append(coco_interpolated_ap_from_cumsums(t, f, float(num_gt[k]), recall_thresholds))
    return float(np.mean(aps)) if aps else None


def error_taxonomy(tables: MatchTables, compat: bool = False) -> ErrorReport:
    """TIDE's error types, counts and oracle ΔAP per size bucket (see the module docstring).

    Args:
        tables: matching tables with the evidence columns (``Evaluator.matches()``, or
            :func:`tide_compat_tables` for the comparison with tidecv).
        compat: tidecv's AP: average over its class set (classes with objects *or* counted
            detections, the latter at AP 0) instead of COCO's (classes with objects), and its
            recall grid ``i / 100`` instead of COCOeval's ``linspace(0, 1, 101)``.

    Returns:
        :class:`ErrorReport` (AP and ΔAP in 0-1 units, computed over all scores).
    """
    labelled = label_errors(tables)
    dets, gts = labelled
    counted = dets["error_type"].isin(["tp", *FP_TYPES]).to_numpy()
    d = dets.loc[counted]
    # Rank order of COCOeval's accumulate (and of tidecv): score desc, then image, then index.
    image_code = pd.factorize(d["image_id"], sort=True)[0]
    rank = np.lexsort((d["det_index"].to_numpy(), image_code, -d["score"].to_numpy()))
    d = d.iloc[rank]
    det_cls, gt_cls, num_classes = _class_codes(d, gts)
    # a cls error's fix is a TP of the object's class
    gt_key = pd.Series(gt_cls, index=pd.MultiIndex.from_arrays([gts["image_id"], gts["gt_index"]]))
    types = d["error_type"].to_numpy()
    fixed_cls = det_cls.copy()
    is_cls_fix = (types == "cls") & d["oracle_tp"].to_numpy()
    if is_cls_fix.any():
        keys = pd.MultiIndex.from_arrays(
            [d["image_id"].to_numpy()[is_cls_fix], d["error_gt"].to_numpy()[is_cls_fix]]
        )
        fixed_cls[is_cls_fix] = gt_key.reindex(keys).to_numpy()
    score = d["score"].to_numpy(dtype=np.float64)
    tp = types == "tp"
    oracle = d["oracle_tp"].to_numpy()
    det_bucket = d["error_bucket"].to_numpy(dtype=object)
    positive = gts["error_type"].isin(["tp", "miss", "loc", "cls"]).to_numpy()
    gt_bucket = gts["size_bucket"].to_numpy(dtype=object)
    gt_type = gts["error_type"].to_numpy()

    grid = TIDE_RECALL_THRESHOLDS if compat else None
    ap: dict[str, float | None] = {}
    delta: dict[str, dict[str, float | None]] = {}
    counts: dict[str, dict[str, int]] = {}
    for bucket in (ALL, *size_bucket_names()):
        in_det = np.ones(len(d), bool) if bucket == ALL else det_bucket == bucket
        in_gt = positive if bucket == ALL else positive & (gt_bucket == bucket)
        num_gt = np.bincount(gt_cls[in_gt], minlength=num_classes).astype(np.float64)
        has_dets = np.bincount(det_cls[in_det], minlength=num_classes) > 0
        base_classes = (num_gt > 0) | (has_dets if compat else False)
        base = _mean_ap(score[in_det], tp[in_det], det_cls[in_det], num_gt, base_classes, grid)
        ap[bucket] = base
        delta[bucket], counts[bucket] = {}, {}
        for error in ERROR_TYPES:
            keep, new_tp, new_cls, new_gt = in_det.copy(), tp.copy(), det_cls, num_gt
            if error == "miss":
                missed = in_gt & (gt_type == "miss")
                new_gt = num_gt - np.bincount(gt_cls[missed], minlength=num_classes)
                counts[bucket][error] = int(missed.sum())
            else:
                of_type = in_det & (types == error)
                counts[bucket][error] = int(of_type.sum())
                if error in ("loc", "cls"):
                    new_tp = tp | (of_type & oracle)
                    keep &= ~(of_type & ~oracle)
                    if error == "cls":
                        new_cls = np.where(of_type & oracle, fixed_cls, det_cls)
                else:
                    keep &= ~of_type
            if base is None:  # no objects in this bucket: nothing to gain or lose
                delta[bucket][error] = None
                continue
            fixed = _mean_ap(score[keep], new_tp[keep], new_cls[keep], new_gt, base_classes, grid)
            delta[bucket][error] = max(0.0, (fixed or 0.0) - base)
    settings = {
        "mode": "tide-compat" if compat else "ssabnet",
        "foreground_iou": MATCH_IOU,
        "background_iou": BACKGROUND_IOU,
        "ap": "AP50 (COCO 101-point), unthresholded",
        "bucket_rule": "errors charged to the object they are about (bkg: own size)",
    }
    return ErrorReport(ap, delta, counts, dets, gts, settings)


def _strip_ignores(record: ImageRecord) -> ImageRecord:
    keep = record.evaluated
    return replace(
        record,
        boxes=np.asarray(record.boxes)[keep],
        labels=np.asarray(record.labels)[keep],
        ignore=np.asarray(record.ignore)[keep],
        truncation=np.asarray(record.truncation)[keep],
        occlusion=np.asarray(record.occlusion)[keep],
        ignore_regions=np.zeros((0, 4), np.float32),
        native={},
    )


def tide_compat_tables(
    info: DatasetInfo,
    records: Sequence[ImageRecord],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    max_dets: int = TIDE_MAX_DETS,
) -> MatchTables:
    """Matching tables with TIDE's settings: no ignore objects or regions, ``maxDets`` 100.

    Objects that are not evaluated (VisDrone ``score == 0`` and "others") are dropped, as they
    would be from a COCO-style ground truth given to tidecv, and ignore regions are not applied;
    images without any object are dropped too (tidecv only visits images that have ground
    truth). ``predictions``: validated arrays per ``image_id`` (``boxes`` xyxy px).
    """
    stripped = [_strip_ignores(r) for r in records]
    stripped = [r for r in stripped if len(r.boxes)]
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, np.int64)}
    preds = {r.image_id: predictions.get(r.image_id, empty) for r in stripped}
    views = {
        r.image_id: coco_view(
            r.boxes,
            r.ignore_regions,
            preds[r.image_id]["boxes"],
            preds[r.image_id]["scores"],
            max_dets,
        )
        for r in stripped
    }
    return match_tables(info, stripped, preds, views)


__all__ = [
    "ALL",
    "BACKGROUND_IOU",
    "ERROR_TYPES",
    "FP_TYPES",
    "TIDE_MAX_DETS",
    "ErrorReport",
    "check_evidence",
    "error_taxonomy",
    "label_errors",
    "tide_compat_tables",
]
