"""The ignore-region rule: what the matcher of each protocol is allowed to see.

VisDrone (class 0 "ignored regions") and UAVDT (``gt_ignore`` areas) mark parts of an image where
nothing was annotated. Ground truth and detections with at least half of their area inside an
ignore region are removed *before* matching, so a correct detection of an unannotated object is
never a false positive. Two implementations exist:

* :func:`in_ignore_regions` (COCO protocol): exact float geometry, a box is dropped when
  ``>= 50%`` of its area lies inside *one* region
  (:func:`ssabnet.ops.boxes.intersection_over_area`).
* :func:`in_ignore_regions_integral` (``visdrone-official`` protocol): the official MATLAB
  toolkit's test, replicated quirk for quirk: regions are painted on an integer 1-based pixel
  map (their union, ``w + 1`` by ``h + 1`` pixels each), box corners are rounded, and the
  covered area is read from an integral image (see ``docs/evaluation.md``).

Both return ``bool[N]`` masks; :func:`coco_view` applies the COCO rule and the per-image
detection cap to one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssabnet.ops.boxes import intersection_over_area

#: A box is dropped when at least this fraction of its area is inside an ignore region.
IGNORE_FRACTION = 0.5


def in_ignore_regions(
    boxes: np.ndarray, regions: np.ndarray, threshold: float = IGNORE_FRACTION
) -> np.ndarray:
    """``bool[N]``: boxes with ``>= threshold`` of their area inside any single region.

    Args:
        boxes: ``float[N, 4]`` xyxy pixels.
        regions: ``float[K, 4]`` xyxy pixels of ignore regions.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    regions = np.asarray(regions, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0 or len(regions) == 0:
        return np.zeros(len(boxes), dtype=bool)
    return (intersection_over_area(boxes, regions) >= threshold).any(axis=1)


def matlab_round(values: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero (numpy rounds halves to even)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def ignore_region_integral_image(
    regions_xywh: np.ndarray, width: int, height: int
) -> np.ndarray | None:
    """The official toolkit's ``createIntImg`` of its ignore map, ``float64[H + 1, W + 1]``.

    Pixel ``(r, c)`` (1-based as in MATLAB) is set for every region for
    ``r in y..min(H, y + h)``, ``c in x..min(W, x + w)`` with ``x, y, w, h = max(1, region)``
    (all four clamped, as ``dropObjectsInIgr.m`` does). A leading zero row/column makes
    ``I[r, c]`` the MATLAB ``intIgrMap(r, c)``. ``None`` when there is no region.
    """
    regions_xywh = np.asarray(regions_xywh, dtype=np.float64).reshape(-1, 4)
    if len(regions_xywh) == 0:
        return None
    # VisDrone regions are integers; UAVDT/COCO ones may not be (MATLAB would fail there).
    regions = np.maximum(1, matlab_round(regions_xywh)).astype(np.int64)
    ignore_map = np.zeros((height + 1, width + 1), dtype=np.float64)
    for x, y, w, h in regions:
        ignore_map[y : min(height, y + h) + 1, x : min(width, x + w) + 1] = 1.0
    ignore_map[0, :] = 0.0
    ignore_map[:, 0] = 0.0
    return ignore_map.cumsum(axis=0).cumsum(axis=1)


def in_ignore_regions_integral(
    boxes_xywh: np.ndarray, integral: np.ndarray | None, width: int, height: int
) -> np.ndarray:
    """``bool[N]``: the official toolkit's "drop" decision for each ``[x, y, w, h]`` box.

    Replicates ``dropObjectsInIgr.m``: ``pos = max(1, round(box))``; corners clamped to the
    image; covered = ``I(y2, x2) + I(y, x) - I(y, x2) - I(y2, x)`` (this excludes row ``y`` and
    column ``x`` themselves); dropped when ``covered / (w * h) >= 0.5``.
    """
    boxes_xywh = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    if integral is None or len(boxes_xywh) == 0:
        return np.zeros(len(boxes_xywh), dtype=bool)
    pos = np.maximum(1, matlab_round(boxes_xywh)).astype(np.int64)
    x = np.clip(pos[:, 0], 1, width)
    y = np.clip(pos[:, 1], 1, height)
    w, h = pos[:, 2], pos[:, 3]
    x2 = np.minimum(width, x + w)
    y2 = np.maximum(1, np.minimum(height, y + h))
    covered = integral[y, x] + integral[y2, x2] - integral[y, x2] - integral[y2, x]
    return covered / (w * h).astype(np.float64) >= IGNORE_FRACTION


@dataclass(frozen=True)
class ImageView:
    """What the COCO-protocol matcher sees of one image (indices into the record/predictions).

    Attributes:
        gt_in_region: ``bool[N]`` record objects dropped by an ignore region.
        det_in_region: ``bool[D]`` detections dropped by an ignore region.
        det_kept: ``int64[D']`` indices of the detections that are matched: not in a region,
            the ``max_dets`` highest scores of the image (stable sort, so ties keep input order),
            in descending score order.
        det_over_max: ``bool[D]`` detections cut by the per-image cap.
    """

    gt_in_region: np.ndarray
    det_in_region: np.ndarray
    det_kept: np.ndarray
    det_over_max: np.ndarray


def coco_view(
    gt_boxes: np.ndarray,
    ignore_regions: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    max_dets: int,
) -> ImageView:
    """Apply the COCO-protocol ignore-region rule, then the per-image cap, to one image.

    Regions are applied first so that detections inside them do not use up the
    ``max_dets`` budget (the official toolkit does the same).
    """
    gt_in_region = in_ignore_regions(gt_boxes, ignore_regions)
    det_in_region = in_ignore_regions(det_boxes, ignore_regions)
    candidates = np.flatnonzero(~det_in_region)
    order = candidates[np.argsort(-np.asarray(det_scores)[candidates], kind="stable")]
    det_over_max = np.zeros(len(det_in_region), dtype=bool)
    det_over_max[order[max_dets:]] = True
    return ImageView(gt_in_region, det_in_region, order[:max_dets], det_over_max)
