"""Results files: read and validate, write, and convert to/from prediction dicts.

Two on-disk formats are read into the same prediction dicts: COCO results JSON
(:func:`read_coco_results`) and a folder of official VisDrone-DET result txts
(:func:`read_visdrone_results`).

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
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ssabnet.atomic_io import write_text_atomic
from ssabnet.data.coco import coco_image_ids
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import InputFileError, MissingInputError
from ssabnet.json_input import read_json
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
        raise InputFileError(f"predictions for image {image_id!r}: missing key(s) {missing}")
    boxes = _to_numpy(prediction["boxes"], np.float64).reshape(-1, 4)
    scores = _to_numpy(prediction["scores"], np.float64).reshape(-1)
    labels = _to_numpy(prediction["labels"], np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise InputFileError(
            f"predictions for image {image_id!r}: boxes {len(boxes)}, scores {len(scores)}, "
            f"labels {len(labels)} rows differ"
        )
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise InputFileError(f"predictions for image {image_id!r}: non-finite box or score")
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
        raise InputFileError(f"{source}: a COCO results file must be a JSON list of detections")
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
        raise MissingInputError(f"predictions file not found: {path}")
    entries = read_json(path, "COCO results file")
    return coco_results_to_predictions(entries, info, records, source=str(path))


def predictions_to_coco_results(
    predictions: Mapping[str, Mapping], info: DatasetInfo, records: Iterable[ImageRecord]
) -> list[dict]:
    """Contract-4 prediction dicts -> COCO results entries (images in id order)."""
    int_ids = coco_image_ids(records)
    entries = []
    for image_id in sorted(predictions, key=lambda k: int_ids.get(k, 0)):
        if image_id not in int_ids:
            raise InputFileError(f"predictions for unknown image {image_id!r}")
        arrays = prediction_arrays(predictions[image_id], image_id)
        xywh = boxes_xyxy_to_xywh(arrays["boxes"])
        for box, score, label in zip(xywh, arrays["scores"], arrays["labels"], strict=True):
            if not 0 <= label < info.num_classes:
                raise InputFileError(
                    f"predictions for image {image_id!r}: label {label} out of range"
                )
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
    write_text_atomic(path, json.dumps(predictions_to_coco_results(predictions, info, records)))
    return path


#: Fields of one VisDrone-DET result line (the last two are -1 in results).
VISDRONE_RESULT_FIELDS = (
    "bbox_left",
    "bbox_top",
    "bbox_width",
    "bbox_height",
    "score",
    "object_category",
    "truncation",
    "occlusion",
)


def _parse_visdrone_result_line(text: str, where: str) -> tuple[list[float], float, int]:
    """One ``x,y,w,h,score,category,t,o`` line -> ``([x, y, w, h], score, category)``."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) == 9 and fields[8] == "":
        fields = fields[:8]  # trailing comma, as many published result files have
    if len(fields) != 8:
        raise InputFileError(
            f"{where}: expected 8 comma-separated values (x,y,w,h,score,category,-1,-1), "
            f"got {len(fields)}: {text.strip()[:120]!r}"
        )
    values = []
    for name, field in zip(VISDRONE_RESULT_FIELDS, fields, strict=True):
        try:
            values.append(float(field))
        except ValueError:
            raise InputFileError(f"{where}: {name} {field!r} is not a number") from None
    x, y, w, h, score, category = values[:6]
    if not all(math.isfinite(v) for v in values):
        raise InputFileError(f"{where}: NaN or infinite value in {text.strip()[:120]!r}")
    if w < 0 or h < 0:
        raise InputFileError(f"{where}: negative box size (width {w:g}, height {h:g})")
    if not 0.0 <= score <= 1.0:
        raise InputFileError(f"{where}: score {score:g} outside [0, 1]")
    if category != int(category):
        raise InputFileError(f"{where}: object_category {category:g} is not an integer")
    return [x, y, w, h], score, int(category)


def read_visdrone_results(
    folder: str | Path,
    info: DatasetInfo,
    records: Iterable[ImageRecord],
    *,
    category_to_label: Mapping[int, int] | None = None,
    allow_extra: bool = False,
) -> Predictions:
    """Read a folder of official VisDrone-DET result files into contract-4 prediction dicts.

    The format (what the official toolkit and ``ssabnet predict --format visdrone`` use): one
    ``<image_id>.txt`` per image (an id with ``/`` is a sub-folder), one detection per line,
    ``bbox_left,bbox_top,bbox_width,bbox_height,score,object_category,-1,-1`` in original image
    pixels. Accepted as real files have them: empty files (no detection), blank lines, CRLF
    line endings, a UTF-8 BOM, and a trailing comma after the eighth field. Row order inside an
    image is kept (the official protocol truncates to the first 500 rows in file order).
    Boxes are returned as ``xyxy`` float64.

    Args:
        folder: the folder of ``.txt`` files.
        info: the dataset (its ``native_ids`` are the categories, VisDrone 1..10).
        records: the evaluated images; each needs ``<image_id>.txt`` in ``folder``.
        category_to_label: category id -> contiguous label (default: ``info.native_ids``).
        allow_extra: ignore ``.txt`` files of images not in ``records`` (counted in a warning)
            instead of raising.

    Raises:
        InputFileError: naming ``file:line`` for a malformed line (not 8 numbers), a NaN or
            infinite value, a negative width or height, a score outside ``[0, 1]``, or a
            category that is not an evaluated class; naming the file or folder for a missing
            folder, a folder without ``.txt`` files, a record without its file, a file of an
            unknown image (unless ``allow_extra``), or a file that is not UTF-8 text.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"VisDrone results folder not found: {folder}")
    records = list(records)
    if category_to_label is None:
        category_to_label = {native: label for label, native in enumerate(info.native_ids)}
    # keyed by the path below ``folder`` without ``.txt`` (UAVDT-style ids "seq/img000001")
    files = {
        p.relative_to(folder).with_suffix("").as_posix(): p
        for p in folder.rglob("*.txt")
        if p.is_file()
    }
    if not files:
        raise InputFileError(f"{folder}: no .txt result files (expected <image>.txt per image)")
    wanted = {r.image_id for r in records}
    missing = sorted(wanted - set(files))
    if missing:
        raise InputFileError(
            f"{folder}: {len(missing)} of {len(wanted)} evaluated images have no result file, "
            f"e.g. {missing[0]}.txt (write an empty file for an image without detections)"
        )
    extra = sorted(set(files) - wanted)
    if extra and not allow_extra:
        raise InputFileError(
            f"{files[extra[0]]}: result file of an image not in the evaluated dataset "
            f"({len(extra)} such files)"
        )
    if extra:
        warnings.warn(
            f"{folder}: ignored {len(extra)} result files of images not in the evaluated "
            f"dataset, e.g. {extra[0]}.txt",
            stacklevel=2,
        )
    predictions: Predictions = {}
    for record in records:
        path = files[record.image_id]
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{path}: not a UTF-8 text file ({exc})") from exc
        xywh, scores, labels = [], [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            box, score, category = _parse_visdrone_result_line(line, f"{path}:{number}")
            if category not in category_to_label:
                raise InputFileError(
                    f"{path}:{number}: object_category {category} is not an evaluated class "
                    f"(known: {sorted(category_to_label)})"
                )
            xywh.append(box)
            scores.append(score)
            labels.append(category_to_label[category])
        predictions[record.image_id] = {
            "boxes": boxes_xywh_to_xyxy(np.array(xywh, dtype=np.float64).reshape(-1, 4)),
            "scores": np.array(scores, dtype=np.float64),
            "labels": np.array(labels, dtype=np.int64),
        }
    return predictions
