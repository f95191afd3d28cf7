"""COCO results files: read and validate, write, and convert to/from prediction dicts.

A COCO results file is a JSON list of ``{"image_id": int, "category_id": int,
"bbox": [x, y, w, h], "score": float}`` in original image pixels. Image ids follow
:func:`ssabnet.data.coco.coco_image_ids` (the scheme of ``ssabnet data convert``); a string
``image_id`` equal to a record's ``image_id`` is accepted too. Category ids are the dataset's
native ids (``DatasetInfo.native_ids``, VisDrone 1..10).

Prediction dicts (contract 4) map a record ``image_id`` to ``{"boxes": [N, 4] xyxy pixels,
"scores": [N], "labels": [N] contiguous 0..C-1}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ssabnet.data.coco import coco_image_ids
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.ops.boxes import boxes_xywh_to_xyxy, boxes_xyxy_to_xywh

Predictions = dict[str, dict[str, np.ndarray]]


def _to_numpy(value, dtype) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def prediction_arrays(prediction: Mapping, image_id: str) -> dict[str, np.ndarray]:
    """Validate one contract-4 prediction dict and return ``float64``/``int64`` numpy arrays.

    Raises:
        ValueError: missing key, wrong shape, or non-finite box/score (names ``image_id``).
    """
    missing = [k for k in ("boxes", "scores", "labels") if k not in prediction]
    if missing:
        raise ValueError(f"predictions for image {image_id!r}: missing key(s) {missing}")
    boxes = _to_numpy(prediction["boxes"], np.float64).reshape(-1, 4)
    scores = _to_numpy(prediction["scores"], np.float64).reshape(-1)
    labels = _to_numpy(prediction["labels"], np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(
            f"predictions for image {image_id!r}: boxes {len(boxes)}, scores {len(scores)}, "
            f"labels {len(labels)} rows differ"
        )
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError(f"predictions for image {image_id!r}: non-finite box or score")
    return {"boxes": boxes, "scores": scores, "labels": labels}


def _bad_entry(source: str, index: int, entry, why: str) -> ValueError:
    text = json.dumps(entry, default=str)
    if len(text) > 200:
        text = text[:200] + "..."
    return ValueError(f"{source}: entry {index} {text}: {why}")


def coco_results_to_predictions(
    entries: Iterable[Mapping],
    info: DatasetInfo,
    records: Iterable[ImageRecord],
    source: str = "results",
) -> Predictions:
    """Validate COCO results and group them into contract-4 prediction dicts.

    Every record gets an entry (empty arrays when it has no detection). Order inside an
    image is the order of the file (the official VisDrone protocol depends on it).

    Raises:
        ValueError: naming the first bad entry (index and content): not an object, unknown
            image id or category, a bbox that is not 4 finite numbers or has negative width or
            height, a missing or non-finite score.
    """
    records = list(records)
    int_ids = coco_image_ids(records)
    by_int = {v: k for k, v in int_ids.items()}
    label_of = {native: label for label, native in enumerate(info.native_ids)}
    rows: dict[str, list[tuple[list[float], float, int]]] = {r.image_id: [] for r in records}
    if not isinstance(entries, list):
        raise ValueError(f"{source}: a COCO results file must be a JSON list of detections")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _bad_entry(source, index, entry, "not a JSON object")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in entry:
                raise _bad_entry(source, index, entry, f"missing {key!r}")
        raw_id = entry["image_id"]
        if isinstance(raw_id, str) and raw_id in rows:
            image_id = raw_id
        elif isinstance(raw_id, int) and not isinstance(raw_id, bool) and raw_id in by_int:
            image_id = by_int[raw_id]
        else:
            raise _bad_entry(source, index, entry, f"unknown image_id {raw_id!r}")
        category = entry["category_id"]
        if isinstance(category, bool) or not isinstance(category, int) or category not in label_of:
            raise _bad_entry(
                source, index, entry, f"unknown category_id {category!r} (known: {info.native_ids})"
            )
        bbox = entry["bbox"]
        if (
            not isinstance(bbox, list | tuple)
            or len(bbox) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
        ):
            raise _bad_entry(source, index, entry, "bbox must be 4 numbers [x, y, w, h]")
        if not all(math.isfinite(v) for v in bbox):
            raise _bad_entry(source, index, entry, "bbox has a NaN or infinite value")
        if bbox[2] < 0 or bbox[3] < 0:
            raise _bad_entry(source, index, entry, "bbox has a negative width or height")
        score = entry["score"]
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise _bad_entry(source, index, entry, "score must be a number")
        if not math.isfinite(score):
            raise _bad_entry(source, index, entry, "score is NaN or infinite")
        rows[image_id].append((list(bbox), float(score), label_of[category]))
    predictions: Predictions = {}
    for image_id, image_rows in rows.items():
        xywh = np.array([r[0] for r in image_rows], dtype=np.float64).reshape(-1, 4)
        predictions[image_id] = {
            "boxes": boxes_xywh_to_xyxy(xywh),
            "scores": np.array([r[1] for r in image_rows], dtype=np.float64),
            "labels": np.array([r[2] for r in image_rows], dtype=np.int64),
        }
    return predictions


def read_coco_results(
    path: str | Path, info: DatasetInfo, records: Iterable[ImageRecord]
) -> Predictions:
    """Read and validate a COCO results JSON file (see :func:`coco_results_to_predictions`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return coco_results_to_predictions(entries, info, records, source=str(path))


def predictions_to_coco_results(
    predictions: Mapping[str, Mapping], info: DatasetInfo, records: Iterable[ImageRecord]
) -> list[dict]:
    """Contract-4 prediction dicts -> COCO results entries (images in id order)."""
    int_ids = coco_image_ids(records)
    entries = []
    for image_id in sorted(predictions, key=lambda k: int_ids.get(k, 0)):
        if image_id not in int_ids:
            raise ValueError(f"predictions for unknown image {image_id!r}")
        arrays = prediction_arrays(predictions[image_id], image_id)
        xywh = boxes_xyxy_to_xywh(arrays["boxes"])
        for box, score, label in zip(xywh, arrays["scores"], arrays["labels"], strict=True):
            if not 0 <= label < info.num_classes:
                raise ValueError(f"predictions for image {image_id!r}: label {label} out of range")
            entries.append(
                {
                    "image_id": int_ids[image_id],
                    "category_id": int(info.native_ids[label]),
                    "bbox": [float(v) for v in box],
                    "score": float(score),
                }
            )
    return entries


def write_coco_results(
    path: str | Path,
    predictions: Mapping[str, Mapping],
    info: DatasetInfo,
    records: Iterable[ImageRecord],
) -> Path:
    """Write prediction dicts as a COCO results JSON file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(predictions_to_coco_results(predictions, info, records)))
    return path
