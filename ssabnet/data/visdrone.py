"""VisDrone2019-DET: read and write ground truth, write official result files.

On disk (official layout)::

    <root>/images/<name>.jpg
    <root>/annotations/<name>.txt   one object per line, CRLF line endings:
        bbox_left,bbox_top,bbox_width,bbox_height,score,object_category,truncation,occlusion

Eight integer fields per line; some published files end every line with a comma (an empty ninth
field), which is accepted and nothing else is. Blank lines are ignored.

Mapping to :class:`~ssabnet.data.record.ImageRecord` (``image_id`` = file stem):

* category 0 ("ignored region") -> ``ignore_regions`` (not an object);
* categories 1..10 -> ``labels`` 0..9 (:data:`VISDRONE_CLASSES`), ``ignore = (score == 0)``;
* category 11 ("others") -> ``labels = -1``, ``ignore = True`` (kept, never trained/evaluated);
* ``truncation`` (0 none, 1 partial) and ``occlusion`` (0 none, 1 partial, 2 heavy) as given.

``record.native`` keeps what the record fields do not, so that writing a record back
reproduces the original rows exactly: per object ``category``, ``score``, ``line`` (0-based line
number) and per ignored region ``region_score``, ``region_truncation``, ``region_occlusion``,
``region_line``. :func:`write_visdrone_annotation` writes rows in the original order with CRLF
line endings and no trailing comma, so a file in the canonical form (all 133 sample files and all
548 val files are) is reproduced byte for byte; a file with trailing commas or blank lines is
reproduced row for row (same parsed values), not byte for byte.

Validation (each error names ``file:line``): wrong field count, a non-integer or NaN field,
zero/negative width or height, unknown category (not 0..11), score not 0/1, truncation not 0/1,
occlusion not 0..2, a box reaching more than :data:`BOUNDS_TOLERANCE_PX` outside the image
(real VisDrone boxes all lie inside), an image without annotation file, an annotation file without
image, an unreadable image.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ssabnet.atomic_io import write_bytes_atomic, write_text_atomic
from ssabnet.data.images import list_images, read_image_size, verify_image
from ssabnet.data.record import (
    AnnotationError,
    DatasetInfo,
    DetectionDataset,
    ImageRecord,
    SkipLog,
    check_box_inside,
    field_excerpt,
    parse_int_field,
)
from ssabnet.errors import MissingInputError
from ssabnet.ops.boxes import boxes_xywh_to_xyxy, boxes_xyxy_to_xywh

VISDRONE_CLASSES: tuple[str, ...] = (
    "pedestrian",
    "people",
    "bicycle",
    "car",
    "van",
    "truck",
    "tricycle",
    "awning-tricycle",
    "bus",
    "motor",
)
VISDRONE_NATIVE_IDS: tuple[int, ...] = tuple(range(1, 11))
IGNORED_REGION_CATEGORY = 0
OTHERS_CATEGORY = 11
#: A box may reach this far (pixels) past the image border before it is an error.


def visdrone_info(name: str = "visdrone") -> DatasetInfo:
    """:class:`DatasetInfo` of VisDrone-DET (10 classes, native ids 1..10)."""
    return DatasetInfo(name, "visdrone", VISDRONE_CLASSES, VISDRONE_NATIVE_IDS)


def parse_visdrone_line(text: str, path: str | Path, line: int) -> tuple[int, ...]:
    """Parse one annotation line into 8 integers (1-based ``line`` for error messages)."""
    fields = text.strip().split(",")
    if len(fields) == 9 and fields[8].strip() == "":
        fields = fields[:8]  # trailing comma, as in some published files
    if len(fields) != 8:
        raise AnnotationError(
            path,
            f"expected 8 comma-separated integers (left,top,width,height,score,category,"
            f"truncation,occlusion), got {len(fields)} fields: {field_excerpt(text, 40)}",
            line,
        )
    values = []
    for i, field in enumerate(fields):
        try:
            values.append(parse_int_field(field))
        except ValueError as exc:
            raise AnnotationError(
                path, f"field {i + 1} ({field_excerpt(field)}) {exc}", line
            ) from None
    return tuple(values)


def _check_row(
    row: tuple[int, ...], width: int | None, height: int | None, path: Path, line: int
) -> None:
    left, top, w, h, score, category, truncation, occlusion = row
    if w <= 0 or h <= 0:
        raise AnnotationError(path, f"box has zero or negative size (width {w}, height {h})", line)
    if not 0 <= category <= OTHERS_CATEGORY:
        raise AnnotationError(path, f"unknown object_category {category} (expected 0..11)", line)
    if score not in (0, 1):
        raise AnnotationError(path, f"ground-truth score must be 0 or 1, got {score}", line)
    if truncation not in (0, 1):
        raise AnnotationError(path, f"truncation must be 0 or 1, got {truncation}", line)
    if occlusion not in (0, 1, 2):
        raise AnnotationError(path, f"occlusion must be 0, 1 or 2, got {occlusion}", line)
    check_box_inside(path, line, (left, top, w, h), width, height, "image")


def read_visdrone_annotation(
    path: str | Path,
    image_path: str | Path,
    width: int | None,
    height: int | None,
    *,
    skip_log: SkipLog | None = None,
    image_id: str | None = None,
) -> ImageRecord:
    """Read one VisDrone annotation file into an :class:`ImageRecord`.

    ``width``/``height`` of ``None`` skip the bounds check (annotation-only use) and are stored
    as 0. Invalid lines raise :class:`AnnotationError`, or are skipped and reported to
    ``skip_log`` when it has ``skip_invalid=True``.
    """
    path = Path(path)
    skip_log = skip_log or SkipLog(skip_invalid=False)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # tolerate a BOM
    except FileNotFoundError as exc:
        raise AnnotationError(path, "annotation file not found") from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not a UTF-8 text file ({exc})") from exc
    objects: list[tuple[int, ...]] = []
    object_lines: list[int] = []
    regions: list[tuple[int, ...]] = []
    region_lines: list[int] = []
    for index, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        try:
            row = parse_visdrone_line(raw, path, index + 1)
            _check_row(row, width, height, path, index + 1)
        except AnnotationError as exc:
            skip_log.report(exc, "line")
            continue
        if row[5] == IGNORED_REGION_CATEGORY:
            regions.append(row)
            region_lines.append(index)
        else:
            objects.append(row)
            object_lines.append(index)
    obj = np.array(objects, dtype=np.int64).reshape(-1, 8)
    reg = np.array(regions, dtype=np.int64).reshape(-1, 8)
    category = obj[:, 5]
    score = obj[:, 4]
    labels = np.where(category == OTHERS_CATEGORY, -1, category - 1).astype(np.int64)
    ignore = (category == OTHERS_CATEGORY) | (score == 0)
    return ImageRecord(
        image_id=image_id if image_id is not None else path.stem,
        image_path=Path(image_path),
        width=int(width or 0),
        height=int(height or 0),
        boxes=boxes_xywh_to_xyxy(obj[:, :4].astype(np.float32)),
        labels=labels,
        ignore=ignore.astype(bool),
        truncation=obj[:, 6].copy(),
        occlusion=obj[:, 7].copy(),
        ignore_regions=boxes_xywh_to_xyxy(reg[:, :4].astype(np.float32)),
        native={
            "category": category.copy(),
            "score": score.copy(),
            "line": np.array(object_lines, dtype=np.int64),
            "region_score": reg[:, 4].copy(),
            "region_truncation": reg[:, 6].copy(),
            "region_occlusion": reg[:, 7].copy(),
            "region_line": np.array(region_lines, dtype=np.int64),
        },
    )


def read_visdrone(
    root: str | Path,
    *,
    skip_invalid: bool = False,
    verify: bool = False,
    name: str | None = None,
) -> DetectionDataset:
    """Read a VisDrone-DET folder (``images/`` + ``annotations/``).

    Args:
        root: folder holding ``images/`` and ``annotations/``.
        skip_invalid: skip (and count) invalid lines and images instead of raising.
        verify: decode every image fully (finds corrupt files; slower).
        name: dataset name for ``info.name`` (default: the folder name).

    Returns:
        A :class:`DetectionDataset`, records sorted by ``image_id`` (file stem).
    """
    root = Path(root)
    images_dir, ann_dir = root / "images", root / "annotations"
    if not ann_dir.is_dir():
        raise MissingInputError(
            f"{root} is not a VisDrone folder: annotations/ is missing "
            "(expected images/*.jpg and annotations/*.txt)"
        )
    if not images_dir.is_dir():
        return _read_annotations_only(root, skip_invalid=skip_invalid, name=name)
    skip_log = SkipLog(skip_invalid)
    images = list_images(images_dir)
    stems = {p.stem for p in images}
    if len(stems) != len(images):
        dup = sorted(p.name for p in images if sum(q.stem == p.stem for q in images) > 1)
        raise AnnotationError(images_dir, f"several images share a name stem: {dup[:4]}")
    records = []
    for ann in sorted(ann_dir.glob("*.txt")):
        if ann.stem not in stems:
            skip_log.report(
                AnnotationError(ann, f"annotation file has no image {ann.stem}.* in {images_dir}"),
                "image",
            )
    for image_path in images:
        try:
            width, height = (verify_image if verify else read_image_size)(image_path)
            ann_path = ann_dir / f"{image_path.stem}.txt"
            if not ann_path.is_file():
                raise AnnotationError(ann_path, f"missing annotation file for image {image_path}")
            record = read_visdrone_annotation(
                ann_path, image_path, width, height, skip_log=skip_log
            )
        except AnnotationError as exc:
            if exc.line is not None:  # a line error with skip_invalid=False: re-raise as is
                raise
            skip_log.report(exc, "image")
            continue
        records.append(record)
    if not images and not skip_log.count:
        raise MissingInputError(f"no images found in {images_dir}")
    return skip_log.finish(visdrone_info(name or root.name), records, root, root)


def _read_annotations_only(root: Path, *, skip_invalid: bool, name: str | None) -> DetectionDataset:
    """A folder with ``annotations/`` but no ``images/`` (e.g. the VisDrone-val GT alone).

    Records get ``width = height = 0`` (unknown), no bounds check, and ``image_path`` where the
    image would be (``images/<stem>.jpg``, absent). A warning says so.
    """
    skip_log = SkipLog(skip_invalid)
    records = []
    for ann in sorted((root / "annotations").glob("*.txt")):
        try:
            records.append(
                read_visdrone_annotation(
                    ann, root / "images" / f"{ann.stem}.jpg", None, None, skip_log=skip_log
                )
            )
        except AnnotationError as exc:
            if exc.line is not None:
                raise
            skip_log.report(exc, "image")
    if not records and not skip_log.count:
        raise MissingInputError(f"no annotation files in {root / 'annotations'}")
    warnings.warn(
        f"{root}: annotation-only VisDrone folder (no images/): image sizes are unknown (0) "
        "and boxes are not checked against image bounds",
        stacklevel=3,
    )
    return skip_log.finish(visdrone_info(name or root.name), records, root, root)


def visdrone_rows(record: ImageRecord, native_ids: tuple[int, ...] = VISDRONE_NATIVE_IDS) -> list:
    """The 8-integer VisDrone rows of a record, in original line order.

    Uses ``record.native`` when present (exact round trip); otherwise (records from another
    source) objects get category ``native_ids[label]`` (11 for label -1), score ``0`` if ignored
    else ``1``, and ignored regions follow as category-0 rows. Coordinates are rounded to
    integers (the format stores integers).
    """
    native = record.native
    n, k = record.num_objects, len(record.ignore_regions)
    ids = np.asarray(native_ids, dtype=np.int64)
    if "category" in native:
        category = native["category"]
    else:
        category = np.where(record.labels >= 0, ids[np.clip(record.labels, 0, None)], 11)
    score = native.get("score", np.where(record.ignore, 0, 1))
    obj_xywh = np.rint(boxes_xyxy_to_xywh(record.boxes.astype(np.float64))).astype(np.int64)
    reg_xywh = np.rint(boxes_xyxy_to_xywh(record.ignore_regions.astype(np.float64)))
    rows = []
    obj_line = native.get("line", np.arange(n))
    for i in range(n):
        row = (*obj_xywh[i], score[i], category[i], record.truncation[i], record.occlusion[i])
        rows.append((int(obj_line[i]), tuple(int(v) for v in row)))
    reg_line = native.get("region_line", np.arange(n, n + k))
    zeros = np.zeros(k, dtype=np.int64)
    reg_score = native.get("region_score", zeros)
    reg_trunc = native.get("region_truncation", zeros)
    reg_occl = native.get("region_occlusion", zeros)
    for j in range(k):
        row = (*reg_xywh[j].astype(np.int64), reg_score[j], 0, reg_trunc[j], reg_occl[j])
        rows.append((int(reg_line[j]), tuple(int(v) for v in row)))
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows]


def write_visdrone_annotation(
    record: ImageRecord, path: str | Path, native_ids: tuple[int, ...] = VISDRONE_NATIVE_IDS
) -> Path:
    """Write one record as an official VisDrone GT file (CRLF, original row order)."""
    lines = [",".join(str(v) for v in row) + "\r\n" for row in visdrone_rows(record, native_ids)]
    return write_bytes_atomic(path, "".join(lines).encode("ascii"))


def write_visdrone(dataset: DetectionDataset, ann_dir: str | Path) -> Path:
    """Write every record's GT to ``ann_dir/<image_id>.txt``; returns ``ann_dir``."""
    ann_dir = Path(ann_dir)
    for record in dataset.records:
        write_visdrone_annotation(
            record, ann_dir / f"{record.image_id}.txt", dataset.info.native_ids
        )
    return ann_dir


def write_visdrone_results(
    predictions: Mapping[str, Mapping[str, object]],
    out_dir: str | Path,
    native_ids: tuple[int, ...] = VISDRONE_NATIVE_IDS,
    image_ids: Iterable[str] = (),
) -> Path:
    """Write detections as official VisDrone-DET result files, one ``<image_id>.txt`` per image.

    Each line is ``bbox_left,bbox_top,bbox_width,bbox_height,score,object_category,-1,-1``
    (floats with 2 decimals for the box, 4 for the score; category = ``native_ids[label]``),
    sorted by descending score, as the official toolkit expects.

    Args:
        predictions: ``{image_id: {"boxes": [N, 4] xyxy original px, "scores": [N],
            "labels": [N] contiguous 0..C-1}}`` (numpy arrays or torch tensors).
        out_dir: folder for the result files (created).
        native_ids: category id of each contiguous label.
        image_ids: images that get an (empty) file even without predictions.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(native_ids, dtype=np.int64)
    for image_id in set(image_ids) - set(predictions):
        write_text_atomic(out_dir / f"{image_id}.txt", "")
    for image_id, pred in predictions.items():
        boxes = np.asarray(_to_numpy(pred["boxes"]), dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(_to_numpy(pred["scores"]), dtype=np.float64).reshape(-1)
        labels = np.asarray(_to_numpy(pred["labels"]), dtype=np.int64).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"{image_id}: boxes, scores and labels differ in length")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(ids)):
            raise ValueError(f"{image_id}: label out of range 0..{len(ids) - 1}")
        order = np.argsort(-scores, kind="stable")
        xywh = boxes_xyxy_to_xywh(boxes[order])
        lines = [
            f"{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},{c},-1,-1\n"
            for (x, y, w, h), s, c in zip(xywh, scores[order], ids[labels[order]], strict=True)
        ]
        write_text_atomic(out_dir / f"{image_id}.txt", "".join(lines))
    return out_dir


def _to_numpy(value: object) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()  # torch.Tensor
    return np.asarray(value)
