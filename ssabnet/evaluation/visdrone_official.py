"""The official VisDrone2018/2019-DET toolkit's evaluation, re-implemented quirk for quirk.

Source: VisDrone/VisDrone2018-DET-toolkit (MATLAB, commit 0054457): ``evalDET.m``,
``utils/saveAnnoRes.m``, ``utils/dropObjectsInIgr.m``, ``utils/createIntImg.m``,
``utils/calcAccuracy.m``, ``utils/evalRes.m``, ``utils/compOas.m``, ``utils/VOCap.m``. Checked
against the toolkit itself run under GNU Octave 7.3 (``benchmarks/visdrone_toolkit_check.py``;
``tests/test_eval_official_reference.py`` holds its numbers to 1e-4). What it does, in order:

1. ``saveAnnoRes``/``dropObjectsInIgr``: per image (annotation files in sorted name order),
   class-0 rows (ignored regions) are painted on an integer pixel map; GT objects and detections
   with >= 50% of their rounded box inside the map are removed (integral-image test, see
   :func:`ignore.in_ignore_regions_integral`). GT ``score`` becomes an ignore flag (score 0 ->
   ignore). Detections are *not* sorted.
2. ``calcAccuracy``: for each class ``1..10``, IoU threshold ``0.5:0.05:0.95`` (built as Octave
   builds ranges, :data:`IOU_THRESHOLDS`) and ``maxDets`` in ``[1, 10, 100, 500]``: the first
   ``maxDets`` detection rows of the image *in file order* (all classes together, after the
   region drop) are kept, then those of the class.
3. ``evalRes`` per image: detections by descending score (stable), GT with ignore ones last;
   greedy matching on ``compOas`` overlap (IoU, or intersection / detection area for an ignore
   GT; a match needs overlap ``>=`` the threshold, ties go to the later GT); an ignore GT may
   absorb many detections, which become neither TP nor FP.
4. Over images, detections are sorted by score (stable); ``rec = tp / max(1, #GT)`` where
   ``#GT`` *includes ignore GT of that class*; ``AR[c, t, m] = max(rec)`` (0 without
   detections) and, at the last ``maxDets`` only, ``prec = tp / max(1, tp + fp)`` and
   ``AP[c, t] = VOCap(rec, prec)`` (all-point VOC AP).
5. ``mean2(AP(evalClass, :))``: ``evalClass`` lists a class once *per image* whose (region-
   filtered) GT holds a row of that class (ignore-flagged rows included), so every summary
   number is a mean over classes **weighted by the number of images the class appears in**; a
   class in no image has weight 0. ``AP50``/``AP75`` are the columns at 0.50 / 0.75,
   ``AR{m}`` the same weighted mean of ``AR[:, :, m]``. NaN when no image has any GT object.

Class "others" (VisDrone 11, label -1 here) is in no class's GT, so in this protocol it neither
protects nor penalises a detection (unlike our COCO protocol, where it is an ignore box).
Per-class numbers (``per_class``) are the toolkit's ``AP(c, :)`` rows, which it computes but
does not print, with each class's ``n_images`` and summary ``weight``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import InputFileError
from ssabnet.evaluation.ignore import ignore_region_integral_image, in_ignore_regions_integral
from ssabnet.evaluation.matching import greedy_match
from ssabnet.ops.boxes import boxes_xywh_to_xyxy, boxes_xyxy_to_xywh, pairwise_overlap
from ssabnet.protocol import MAX_DET

#: ``0.5:0.05:0.95`` as GNU Octave builds the range (``base + i * step``): the 0.85 entry is
#: 0.8500000000000001, one ulp above ``0.85``, so an IoU of exactly 17/20 is *not* a match
#: there (``np.linspace`` differs at 0.85 and 0.9). Checked under Octave 7.3 (docs/evaluation.md).
IOU_THRESHOLDS = 0.5 + 0.05 * np.arange(10)


def overlap_xywh(det_xywh: np.ndarray, gt_xywh: np.ndarray, gt_ignore: np.ndarray) -> np.ndarray:
    """``compOas.m``: ``float64[D, G]`` IoU, or intersection / det area for an ignore GT."""
    # The toolkit's areas are its widths x heights (not recomputed from the corners).
    return pairwise_overlap(
        boxes_xywh_to_xyxy(det_xywh),
        boxes_xywh_to_xyxy(gt_xywh),
        gt_ignore,
        det_areas=det_xywh[:, 2] * det_xywh[:, 3],
        gt_areas=gt_xywh[:, 2] * gt_xywh[:, 3],
    )


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """``VOCap.m``: all-point interpolated AP with sentinels ``(0, 0)`` and ``(1, 0)``."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def _image_tables(record: ImageRecord, pred: Mapping[str, np.ndarray], info: DatasetInfo):
    """Toolkit view of one image: kept GT ``[x y w h ignore class]`` and detections (file order)."""
    gt_xywh = boxes_xyxy_to_xywh(np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4))
    native = np.asarray(info.native_ids, dtype=np.int64)
    labels = np.asarray(record.labels, dtype=np.int64)
    gt_class = np.where(labels >= 0, native[np.clip(labels, 0, None)], -1)
    regions = boxes_xyxy_to_xywh(np.asarray(record.ignore_regions, np.float64).reshape(-1, 4))
    if len(regions) and (record.width < 1 or record.height < 1):
        raise InputFileError(
            f"image {record.image_id!r}: size unknown ({record.width}x{record.height}); the "
            "official protocol needs it to paint the ignored regions"
        )
    integral = ignore_region_integral_image(regions, record.width, record.height)
    gt_keep = ~in_ignore_regions_integral(gt_xywh, integral, record.width, record.height)
    det_xywh = boxes_xyxy_to_xywh(pred["boxes"])
    det_keep = ~in_ignore_regions_integral(det_xywh, integral, record.width, record.height)
    gt = {
        "xywh": gt_xywh[gt_keep],
        "ignore": np.asarray(record.ignore, dtype=bool)[gt_keep],
        "cls": gt_class[gt_keep],
    }
    det = {
        "xywh": det_xywh[det_keep],
        "score": pred["scores"][det_keep],
        "cls": native[pred["labels"][det_keep]],
    }
    return gt, det


def _eval_image_class(gt_xywh, gt_ignore, det_xywh, det_score):
    """``evalRes.m`` at every threshold: ``(scores sorted, match[T, D])`` with -1/0/1 flags."""
    det_order = np.argsort(-det_score, kind="stable")
    gt_order = np.argsort(gt_ignore, kind="stable")
    det_xywh, det_score = det_xywh[det_order], det_score[det_order]
    gt_xywh, gt_ignore = gt_xywh[gt_order], gt_ignore[gt_order]
    overlap = overlap_xywh(det_xywh, gt_xywh, gt_ignore)
    match = np.zeros((len(IOU_THRESHOLDS), len(det_score)), dtype=np.int8)
    for t, thr in enumerate(IOU_THRESHOLDS):
        det_gt, _ = greedy_match(overlap, gt_ignore, float(thr))
        hit = det_gt >= 0
        match[t, hit] = np.where(gt_ignore[det_gt[hit]], -1, 1)
    return det_score, det_order, match


def evaluate_official(
    info: DatasetInfo,
    records: Sequence[ImageRecord],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    max_dets: int = MAX_DET,
) -> dict:
    """Official VisDrone-DET numbers (fractions, not the toolkit's percent).

    Args:
        predictions: validated arrays per record ``image_id``; row order is the "file order"
            the toolkit truncates in.
        max_dets: the last of ``[1, 10, 100, max_dets]`` (the toolkit: 500).

    Returns:
        ``AP, AP50, AP75, AR1, AR10, AR100, AR{max_dets}`` (class means weighted by images per
        class, step 5) and ``per_class`` ``{name: {AP, AP50, AP75, AR{max_dets}, n_gt,
        n_images, weight}}``; size-range keys are ``None`` (the toolkit has none).
    """
    max_dets_list = sorted({1, 10, 100, int(max_dets)})
    num_classes, num_thr, num_m = info.num_classes, len(IOU_THRESHOLDS), len(max_dets_list)
    native = list(info.native_ids)
    num_gt = np.zeros(num_classes, dtype=np.int64)
    num_images = np.zeros(num_classes, dtype=np.int64)
    tp_count = np.zeros((num_classes, num_thr, num_m), dtype=np.int64)
    any_det = np.zeros((num_classes, num_m), dtype=bool)
    last_scores: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    last_match: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    for record in sorted(records, key=lambda r: r.image_id):
        gt, det = _image_tables(record, predictions[record.image_id], info)
        # Score-sorted input: truncation prefixes of the file are prefixes of evalRes's order,
        # so one matching at the largest maxDets serves all (greedy decisions only look back).
        prefix_ok = bool(np.all(np.diff(det["score"]) <= 0))
        for k, cls in enumerate(native):
            gt_sel = gt["cls"] == cls
            num_gt[k] += int(gt_sel.sum())
            num_images[k] += int(gt_sel.any())
            gt_xywh, gt_ignore = gt["xywh"][gt_sel], gt["ignore"][gt_sel]
            for j, md in enumerate(max_dets_list):
                if prefix_ok and j < num_m - 1:
                    continue  # filled from the last maxDets below
                row_idx = np.flatnonzero(det["cls"][:md] == cls)
                scores, order, match = _eval_image_class(
                    gt_xywh, gt_ignore, det["xywh"][row_idx], det["score"][row_idx]
                )
                any_det[k, j] |= len(scores) > 0
                tp_count[k, :, j] += (match == 1).sum(axis=1)
                if j == num_m - 1:
                    last_scores[k].append(scores)
                    last_match[k].append(match)
                    if prefix_ok:
                        file_row = row_idx[order]
                        for jj, md_small in enumerate(max_dets_list[:-1]):
                            keep = file_row < md_small
                            any_det[k, jj] |= bool(keep.any())
                            tp_count[k, :, jj] += (match[:, keep] == 1).sum(axis=1)
    ap = np.zeros((num_classes, num_thr))
    ar = np.where(any_det[:, None, :], tp_count / np.maximum(1, num_gt)[:, None, None], 0.0)
    for k in range(num_classes):
        scores = np.concatenate(last_scores[k]) if last_scores[k] else np.zeros(0)
        if not len(scores):
            continue
        match = np.concatenate(last_match[k], axis=1)
        rank = np.argsort(-scores, kind="stable")
        for t in range(num_thr):
            m = match[t, rank]
            tp = np.cumsum(m == 1)
            fp = np.cumsum(m == 0)
            rec = tp / max(1, num_gt[k])
            prec = tp / np.maximum(1, tp + fp)
            ap[k, t] = voc_ap(rec, prec)
    # mean2(AP(evalClass, :)): evalClass lists a class once per image holding a GT row of it
    total = int(num_images.sum())
    weight = num_images / total if total else np.full(num_classes, np.nan)
    t50, t75 = 0, 5
    metrics: dict = {
        "AP": float(weight @ ap.mean(axis=1)),
        "AP50": float(weight @ ap[:, t50]),
        "AP75": float(weight @ ap[:, t75]),
        "APs": None,
        "APm": None,
        "APl": None,
        "AP_vt": None,
        "AP_t": None,
        "AP_s_tiny": None,
    }
    for j, md in enumerate(max_dets_list):
        metrics[f"AR{md}"] = float(weight @ ar[:, :, j].mean(axis=1))
    metrics["per_class"] = {
        name: {
            "AP": float(ap[k].mean()),
            "AP50": float(ap[k, t50]),
            "AP75": float(ap[k, t75]),
            f"AR{max_dets_list[-1]}": float(ar[k, :, -1].mean()),
            "n_gt": int(num_gt[k]),
            "n_images": int(num_images[k]),
            "weight": float(weight[k]),
        }
        for k, name in enumerate(info.classes)
    }
    return metrics
