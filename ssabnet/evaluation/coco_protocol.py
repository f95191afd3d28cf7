"""The COCO protocol at ``maxDets`` 500 with tiny-object scales, on two backends.

One pass of COCOeval (pycocotools, the reference, or faster-coco-eval, the fast C++ one) with
``maxDets = [1, 10, 100, max_dets]`` and seven area ranges: ``all``, COCO ``small`` /
``medium`` / ``large`` and the AI-TOD buckets ``very_tiny`` / ``tiny`` / ``small`` (16-32), all
taken from :mod:`ssabnet.scales`. Every summary number is computed here from the accumulated
``eval["precision"]`` ``[T, R, K, A, M]`` and ``eval["recall"]`` ``[T, K, A, M]`` arrays at the
largest ``maxDets``: ``COCOeval.summarize()`` hard-codes ``maxDets=100`` for AP and the three
COCO area labels, so it is never called.

Ground truth handed to COCOeval (after the ignore-region rule of
:mod:`ssabnet.evaluation.ignore`):

* evaluated objects (``record.evaluated``): normal GT of their class;
* ``ignore`` objects of a known class (VisDrone ``score == 0``): ``iscrowd=1`` GT of their class
  -- a detection on them is neither TP nor FP, and they are never counted as misses;
* objects of no class (label ``-1``, VisDrone "others"): ``iscrowd=1`` GT in *every* class,
  because a detector that fires on an unlabelled vehicle should not be punished for it.

Half-open buckets: COCOeval keeps a box when ``lo <= area <= hi``; the upper bound passed is
the float just below ``hi**2`` so that the ranges are the half-open ``[lo**2, hi**2)`` of
:mod:`ssabnet.scales` (a box of exactly 8x8 px is "tiny", not "very_tiny").
"""

from __future__ import annotations

import contextlib
import gc
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ssabnet.data.coco import coco_image_ids
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import ConfigError
from ssabnet.evaluation.ignore import ImageView
from ssabnet.ops.boxes import boxes_xyxy_to_xywh
from ssabnet.scales import COCO_SMALL, SIZE_BUCKETS

BACKENDS = ("pycocotools", "faster")

_BUCKET = {b.name: b for b in SIZE_BUCKETS}


def _half_open(lo: float, hi: float) -> list[float]:
    return [float(lo), float(np.nextafter(hi, 0.0))]


#: ``(label, [lo, hi])`` area ranges in px², in the order of the precision array's ``A`` axis.
AREA_RANGES: tuple[tuple[str, list[float]], ...] = (
    ("all", [0.0, 1e10]),
    ("coco_small", _half_open(*COCO_SMALL.area_range)),
    ("medium", _half_open(*_BUCKET["medium"].area_range)),
    ("large", [_BUCKET["large"].area_range[0], 1e10]),
    ("very_tiny", _half_open(*_BUCKET["very_tiny"].area_range)),
    ("tiny", _half_open(*_BUCKET["tiny"].area_range)),
    ("small", _half_open(*_BUCKET["small"].area_range)),
)

#: metrics.json key -> area-range label.
AP_KEYS_BY_AREA = {
    "APs": "coco_small",
    "APm": "medium",
    "APl": "large",
    "AP_vt": "very_tiny",
    "AP_t": "tiny",
    "AP_s_tiny": "small",
}


@dataclass(frozen=True)
class CocoArrays:
    """Accumulated COCOeval arrays and their axes.

    Attributes:
        precision: ``float[T, R, K, A, M]`` (-1 where a class has no GT in that area range).
        recall: ``float[T, K, A, M]``.
        iou_thresholds: ``float[T]`` (0.50:0.05:0.95).
        area_labels: the ``A`` axis labels (:data:`AREA_RANGES`).
        max_dets: the ``M`` axis (``[1, 10, 100, max_dets]``).
    """

    precision: np.ndarray
    recall: np.ndarray
    iou_thresholds: np.ndarray
    area_labels: tuple[str, ...]
    max_dets: tuple[int, ...]


def build_coco_dicts(
    info: DatasetInfo,
    records: Sequence[ImageRecord],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    views: Mapping[str, ImageView],
) -> tuple[dict, dict]:
    """In-memory COCO ground-truth and detection datasets (see module docstring for GT roles).

    Args:
        predictions: validated arrays per record ``image_id`` (``boxes`` xyxy px).
        views: the ignore-region/cap view of each image (:func:`ignore.coco_view`).
    """
    int_ids = coco_image_ids(records)
    native = np.asarray(info.native_ids, dtype=np.int64)
    categories = [
        {"id": int(cat), "name": name} for name, cat in zip(info.classes, native, strict=True)
    ]
    images, gt_cols, dt_cols = [], [], []
    for record in sorted(records, key=lambda r: int_ids[r.image_id]):
        image_int = int_ids[record.image_id]
        images.append(
            {
                "id": image_int,
                "width": record.width,
                "height": record.height,
                "file_name": record.image_path.name,
            }
        )
        view = views[record.image_id]
        idx = np.flatnonzero(~view.gt_in_region)
        labels = np.asarray(record.labels, dtype=np.int64)[idx]
        # objects of no class are repeated once per category, in place (record order is kept
        # inside every category, which fixes COCOeval's tie-breaking)
        copies = np.where(labels < 0, len(native), 1)
        rows = np.repeat(idx, copies)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
        row_labels = np.repeat(labels, copies)
        cats = np.where(row_labels < 0, native[within % len(native)], native[row_labels])
        xywh = boxes_xyxy_to_xywh(np.asarray(record.boxes, dtype=np.float64)[rows])
        crowd = (~record.evaluated[rows]).astype(np.int64)
        gt_cols.append((np.full(len(rows), image_int), cats, xywh, crowd))
        pred = predictions[record.image_id]
        kept = view.det_kept
        det_xywh = boxes_xyxy_to_xywh(pred["boxes"][kept])
        dt_cols.append(
            (
                np.full(len(kept), image_int),
                native[pred["labels"][kept]],
                det_xywh,
                pred["scores"][kept],
            )
        )

    def columns(parts, i):
        if not parts:
            return []
        return np.concatenate([p[i] for p in parts]).tolist()

    def boxes(parts):
        if not parts:
            return np.zeros((0, 4))
        return np.concatenate([p[2] for p in parts]).reshape(-1, 4)

    gt_xywh, dt_xywh = boxes(gt_cols), boxes(dt_cols)
    gt_anns = [
        {
            "id": n,
            "image_id": img,
            "category_id": cat,
            "bbox": bbox,
            "area": area,
            "iscrowd": crowd,
            "ignore": crowd,
        }
        for n, (img, cat, bbox, area, crowd) in enumerate(
            zip(
                columns(gt_cols, 0),
                columns(gt_cols, 1),
                gt_xywh.tolist(),
                (gt_xywh[:, 2] * gt_xywh[:, 3]).tolist(),
                columns(gt_cols, 3),
                strict=True,
            ),
            start=1,
        )
    ]
    dt_anns = [
        {
            "id": n,
            "image_id": img,
            "category_id": cat,
            "bbox": bbox,
            "area": area,
            "score": score,
            "iscrowd": 0,
        }
        for n, (img, cat, bbox, area, score) in enumerate(
            zip(
                columns(dt_cols, 0),
                columns(dt_cols, 1),
                dt_xywh.tolist(),
                (dt_xywh[:, 2] * dt_xywh[:, 3]).tolist(),
                columns(dt_cols, 3),
                strict=True,
            ),
            start=1,
        )
    ]
    base = {"images": images, "categories": categories}
    return {**base, "annotations": gt_anns}, {**base, "annotations": dt_anns}


def run_cocoeval(gt: dict, dt: dict, backend: str, max_dets: int) -> CocoArrays:
    """Run COCOeval ``evaluate`` + ``accumulate`` (bbox) in one pass over all area ranges."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    max_dets_list = sorted({1, 10, 100, int(max_dets)})
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            coco_gt, coco_dt = COCO(), COCO()
            coco_gt.dataset, coco_dt.dataset = gt, dt
            coco_gt.createIndex()
            coco_dt.createIndex()
            evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        else:
            from faster_coco_eval import COCO, COCOeval_faster

            quiet = lambda *args, **kwargs: None  # noqa: E731
            coco_gt = COCO(gt, print_function=quiet)
            coco_dt = COCO(dt, print_function=quiet)
            evaluator = COCOeval_faster(
                coco_gt,
                coco_dt,
                iouType="bbox",
                print_function=quiet,
                ranges={label: rng for label, rng in AREA_RANGES[1:]},
            )
        params = evaluator.params
        params.imgIds = sorted(image["id"] for image in gt["images"])
        params.catIds = sorted(cat["id"] for cat in gt["categories"])
        params.maxDets = max_dets_list
        params.areaRng = [list(rng) for _, rng in AREA_RANGES]
        params.areaRngLbl = [label for label, _ in AREA_RANGES]
        evaluator.evaluate()
        evaluator.accumulate()
    return CocoArrays(
        precision=np.asarray(evaluator.eval["precision"], dtype=np.float64),
        recall=np.asarray(evaluator.eval["recall"], dtype=np.float64),
        iou_thresholds=np.asarray(params.iouThrs, dtype=np.float64),
        area_labels=tuple(label for label, _ in AREA_RANGES),
        max_dets=tuple(max_dets_list),
    )


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def summarize_coco(arrays: CocoArrays, classes: Sequence[str]) -> dict:
    """metrics.json numbers from the accumulated arrays, at the largest ``maxDets``.

    ``None`` where nothing can be averaged (no ground truth in that class or size range).
    """
    prec, rec = arrays.precision, arrays.recall
    m = len(arrays.max_dets) - 1
    area = {label: i for i, label in enumerate(arrays.area_labels)}
    t50 = int(np.argmin(np.abs(arrays.iou_thresholds - 0.5)))
    t75 = int(np.argmin(np.abs(arrays.iou_thresholds - 0.75)))

    def ap(k=slice(None), a="all", t=slice(None)):
        return _mean_valid(prec[t, :, k, area[a], m])

    metrics: dict = {"AP": ap(), "AP50": ap(t=t50), "AP75": ap(t=t75)}
    for key, label in AP_KEYS_BY_AREA.items():
        metrics[key] = ap(a=label)
    for j, md in enumerate(arrays.max_dets):
        metrics[f"AR{md}"] = _mean_valid(rec[:, :, area["all"], j])
    per_class = {}
    for k, name in enumerate(classes):
        row = {"AP": ap(k), "AP50": ap(k, t=t50), "AP75": ap(k, t=t75)}
        for key, label in AP_KEYS_BY_AREA.items():
            row[key] = ap(k, a=label)
        row[f"AR{arrays.max_dets[-1]}"] = _mean_valid(rec[:, k, area["all"], m])
        per_class[name] = row
    metrics["per_class"] = per_class
    return metrics


@contextlib.contextmanager
def _gc_paused():
    """Building ~10^5 annotation dicts triggers Python's cyclic GC again and again (measured
    about 2x slower at VisDrone-val scale); nothing here creates reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def coco_arrays(
    info: DatasetInfo,
    records: Sequence[ImageRecord],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    views: Mapping[str, ImageView],
    backend: str = "faster",
    max_dets: int = 500,
) -> CocoArrays:
    """Build the COCO dicts and run COCOeval: the accumulated arrays behind every number."""
    with _gc_paused():
        gt, dt = build_coco_dicts(info, records, predictions, views)
        arrays = run_cocoeval(gt, dt, backend, max_dets)
        del gt, dt
    return arrays
