"""COCO JSON import/export and the stable COCO image-id scheme.

Image-id scheme (stable, documented, used by ``data convert``, ``val --predictions``, FiftyOne):
the dataset's records are sorted by their string ``image_id`` and numbered from 1. The same
dataset therefore always gets the same ids, whatever the order files were listed in.

Export (:func:`records_to_coco`), per image::

    {"id": 1, "file_name": "images/0000001_02999_d_0000005.jpg",   # relative to dataset root
     "width": 1920, "height": 1080, "ssabnet_id": "0000001_02999_d_0000005",
     "ignore_regions": [{"bbox": [x, y, w, h], "native": {...}}, ...]}

per object (ignored objects included)::

    {"id": 1, "image_id": 1, "category_id": 4, "bbox": [x, y, w, h], "area": w * h,
     "iscrowd": 0, "ignore": 0, "truncation": 0, "occlusion": 1,
     "native": {"category": 4, "score": 1, "line": 0}}

* ``categories`` are the trainable classes with the dataset's native ids (VisDrone 1..10,
  UAVDT 1..3); ``category_id`` of an object of no trainable class (VisDrone "others") is its
  native category (11), which is not among ``categories``, so COCO tools never evaluate it.
* ``iscrowd = ignore = 1`` for every object with ``ignore`` (VisDrone score 0, "others"):
  plain pycocotools then treats it as a crowd region (detections on it are neither TP nor FP).
* Ignored regions (VisDrone class 0, UAVDT ``gt_ignore``) stay out of ``annotations`` and are
  listed per image under ``ignore_regions``; SSABNet's evaluator applies them.
* ``native`` carries the format's raw per-object fields (``ImageRecord.native``; keys of
  per-region fields lose their ``region_`` prefix), so VisDrone -> COCO -> VisDrone reproduces
  the original annotation rows exactly.
* ``info.ssabnet`` records the source ``format``, ``name``, the absolute ``dataset_root`` and
  this scheme's name.

Import (:func:`read_coco`) reads both our files and plain COCO files: labels follow the sorted
``categories`` ids, ``ignore`` is ``ignore`` or ``iscrowd``, truncation/occlusion default to -1,
``image_id`` is ``ssabnet_id`` or the ``file_name`` without suffix.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ssabnet.atomic_io import write_text_atomic
from ssabnet.data.images import verify_image
from ssabnet.data.record import (
    BOUNDS_TOLERANCE_PX,
    AnnotationError,
    DatasetInfo,
    DetectionDataset,
    ImageRecord,
    SkipLog,
)
from ssabnet.errors import InputFileError, MissingInputError
from ssabnet.json_input import read_json
from ssabnet.ops.boxes import boxes_xywh_to_xyxy, boxes_xyxy_to_xywh

IMAGE_ID_SCHEME = "sorted-string-image-id-from-1"


def coco_image_ids(records: Iterable[ImageRecord]) -> dict[str, int]:
    """Map each record's string ``image_id`` to its COCO integer id (sorted order, 1-based)."""
    keys = sorted(r.image_id for r in records)
    if len(set(keys)) != len(keys):
        raise InputFileError("duplicate image_id in dataset; image ids must be unique")
    return {key: i + 1 for i, key in enumerate(keys)}


def _num(value) -> int | float:
    value = float(value)
    return int(value) if value.is_integer() else value


def records_to_coco(
    info: DatasetInfo, records: list[ImageRecord], root: str | Path | None = None
) -> dict:
    """COCO dict of ``records`` (scheme in the module docstring).

    ``root``: image ``file_name`` is made relative to it where possible (else absolute).
    """
    ids = coco_image_ids(records)
    root_path = Path(root).resolve() if root is not None else None
    images, annotations = [], []
    native_ids = np.asarray(info.native_ids, dtype=np.int64)
    for record in sorted(records, key=lambda r: r.image_id):
        image_path = Path(record.image_path).resolve()
        file_name = image_path.as_posix()
        if root_path is not None and image_path.is_relative_to(root_path):
            file_name = image_path.relative_to(root_path).as_posix()
        obj_native = {k: v for k, v in record.native.items() if not k.startswith("region_")}
        reg_native = {k[7:]: v for k, v in record.native.items() if k.startswith("region_")}
        regions = boxes_xyxy_to_xywh(record.ignore_regions.astype(np.float64))
        images.append(
            {
                "id": ids[record.image_id],
                "file_name": file_name,
                "width": int(record.width),
                "height": int(record.height),
                "ssabnet_id": record.image_id,
                "ignore_regions": [
                    {
                        "bbox": [_num(v) for v in regions[j]],
                        "native": {k: int(v[j]) for k, v in reg_native.items()},
                    }
                    for j in range(len(regions))
                ],
            }
        )
        xywh = boxes_xyxy_to_xywh(record.boxes.astype(np.float64))
        for i in range(record.num_objects):
            label = int(record.labels[i])
            if label >= 0:
                category_id = int(native_ids[label])
            else:
                category_id = int(obj_native["category"][i]) if "category" in obj_native else -1
            ignored = int(bool(record.ignore[i]) or label < 0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": ids[record.image_id],
                    "category_id": category_id,
                    "bbox": [_num(v) for v in xywh[i]],
                    "area": _num(xywh[i, 2] * xywh[i, 3]),
                    "iscrowd": ignored,
                    "ignore": ignored,
                    "truncation": int(record.truncation[i]),
                    "occlusion": int(record.occlusion[i]),
                    "native": {k: int(v[i]) for k, v in obj_native.items()},
                }
            )
    return {
        "info": {
            "description": f"{info.name} exported by SSABNet",
            "ssabnet": {
                "format": info.format,
                "name": info.name,
                "dataset_root": str(root_path) if root_path is not None else None,
                "image_id_scheme": IMAGE_ID_SCHEME,
            },
        },
        "licenses": [],
        "categories": [
            {"id": int(i), "name": name, "supercategory": "object"}
            for i, name in zip(info.native_ids, info.classes, strict=True)
        ],
        "images": images,
        "annotations": annotations,
    }


def write_coco_json(dataset: DetectionDataset, path: str | Path) -> Path:
    """Write ``dataset`` as COCO JSON (file names relative to ``dataset.root``)."""
    root = dataset.root if dataset.root.is_dir() else dataset.root.parent
    coco = records_to_coco(dataset.info, dataset.records, root)
    write_text_atomic(path, json.dumps(coco, separators=(",", ":")))
    return path


def _find_json(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(path.glob("*.json")) or sorted(path.glob("annotations/*.json"))
    if len(found) != 1:
        raise MissingInputError(
            f"{path}: expected exactly one COCO .json (found {len(found)}); pass the file"
        )
    return found[0]


def _image_root(json_path: Path, coco: dict, images: list[dict]) -> Path:
    """Folder the ``file_name`` entries are relative to (see :func:`read_coco`)."""
    recorded = ((coco.get("info") or {}).get("ssabnet") or {}).get("dataset_root")
    candidates = [Path(recorded)] if recorded else []
    candidates += [json_path.parent, json_path.parent.parent]
    candidates += [json_path.parent / "images", json_path.parent.parent / "images"]
    probe = next((im["file_name"] for im in images if im.get("width")), None)
    if probe is None:
        return candidates[0]
    for folder in candidates:
        if (folder / probe).is_file():
            return folder
    return json_path.parent


def read_coco(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    verify: bool = False,
    name: str | None = None,
    image_root: str | Path | None = None,
) -> DetectionDataset:
    """Read a COCO JSON file (or a folder holding exactly one) into a :class:`DetectionDataset`.

    Image files are looked up relative to ``image_root`` if given, else the first of: the
    ``info.ssabnet.dataset_root`` recorded at export, the JSON's folder, its parent, and the
    ``images/`` folder in either of those, that holds the first image.

    Errors name the JSON file and the image ``file_name`` or annotation ``id``: bad bbox
    (not 4 finite numbers, zero/negative size, outside the image), unknown ``category_id``,
    annotation of an unknown image, missing or (``verify``) corrupt image file.
    """
    json_path = _find_json(Path(path))
    try:
        coco = read_json(json_path, "COCO annotation file")
    except InputFileError as exc:
        raise AnnotationError(str(exc)) from None  # the message already names the file
    if not isinstance(coco, dict):
        raise AnnotationError(
            json_path,
            f"not a COCO detection file: the top level is a {type(coco).__name__}, "
            "not an object with 'images', 'annotations' and 'categories'",
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(json_path, f"not a COCO detection file: no {key!r} list")
    _check_coco_entries(coco, json_path)
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    native_ids = tuple(int(c["id"]) for c in categories)
    label_of = {cid: i for i, cid in enumerate(native_ids)}
    meta = (coco.get("info") or {}).get("ssabnet") or {}
    info = DatasetInfo(
        name or meta.get("name") or json_path.stem,
        "coco",
        tuple(str(c["name"]) for c in categories),
        native_ids,
    )
    root = (
        Path(image_root) if image_root is not None else _image_root(json_path, coco, coco["images"])
    )
    skip_log = SkipLog(skip_invalid)
    anns_by_image: dict[int, list[dict]] = defaultdict(list)
    image_ids = {im.get("id") for im in coco["images"]}
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            skip_log.report(
                AnnotationError(
                    json_path,
                    f"annotation id {ann.get('id')}: image_id {ann.get('image_id')} not in images",
                ),
                "annotation",
            )
            continue
        anns_by_image[ann["image_id"]].append(ann)
    records = []
    for image in coco["images"]:
        try:
            record = _coco_record(
                image, anns_by_image[image["id"]], root, json_path, label_of, skip_log, verify
            )
        except AnnotationError as exc:
            skip_log.report(exc, "image")
            continue
        records.append(record)
    return skip_log.finish(info, records, json_path, json_path)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _check_coco_entries(coco: dict, json_path: Path) -> None:
    """Structure checks that a reader would otherwise meet as a KeyError/TypeError traceback."""
    seen: set[int] = set()
    for j, category in enumerate(coco["categories"]):
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            raise AnnotationError(
                json_path,
                f"categories[{j}]: needs an integer 'id' (and a 'name'), got {_excerpt(category)}",
            )
        if not isinstance(category.get("name"), str):
            raise AnnotationError(json_path, f"categories[{j}] (id {category['id']}): no 'name'")
        if category["id"] in seen:
            raise AnnotationError(json_path, f"categories[{j}]: duplicate id {category['id']}")
        seen.add(category["id"])
    for j, image in enumerate(coco["images"]):
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            raise AnnotationError(
                json_path, f"images[{j}]: needs an integer 'id', got {_excerpt(image)}"
            )
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            raise AnnotationError(json_path, f"images[{j}] (id {image['id']}): no 'file_name'")
        parts = file_name.replace("\\", "/").split("/")
        if file_name.startswith(("/", "\\")) or Path(file_name).is_absolute() or ".." in parts:
            raise AnnotationError(
                json_path,
                f"images[{j}]: file_name {file_name[:200]!r} must be a path inside the dataset "
                "(relative, without '..')",
            )
        for key in ("width", "height"):
            value = image.get(key, 0)
            if value is not None and not (_is_int(value) and 0 <= value < 2**31):
                raise AnnotationError(
                    json_path,
                    f"images[{j}] ({file_name!r}): {key} must be a non-negative "
                    f"integer, got {_excerpt(value)}",
                )
    for j, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise AnnotationError(json_path, f"annotations[{j}]: not an object: {_excerpt(ann)}")
        extra = ann.get("native") or {}
        fields = {k: ann.get(k) for k in ("truncation", "occlusion") if k in ann}
        fields |= {f"native.{k}": v for k, v in extra.items()} if isinstance(extra, dict) else {}
        if not isinstance(extra, dict):
            fields["native"] = extra
        for key, value in fields.items():
            if not _is_int(value):
                raise AnnotationError(
                    json_path,
                    f"annotation id {ann.get('id')}: {key} must be an integer, got "
                    f"{_excerpt(value)}",
                )


def _excerpt(value, limit: int = 80) -> str:
    """A short, escaped excerpt of a JSON value for an error message."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _bbox(values, where: str, json_path: Path, width: int, height: int) -> list[float]:
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        box = []
    shown = _excerpt(values)
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise AnnotationError(json_path, f"{where}: bbox must be 4 finite numbers, got {shown}")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise AnnotationError(json_path, f"{where}: bbox has zero or negative size {shown}")
    tol = BOUNDS_TOLERANCE_PX
    if width > 0 and (x < -tol or y < -tol or x + w > width + tol or y + h > height + tol):
        raise AnnotationError(
            json_path, f"{where}: bbox {shown} (xywh) lies outside the {width}x{height} image"
        )
    return box


def _coco_record(image, anns, root, json_path, label_of, skip_log, verify) -> ImageRecord:
    file_name = str(image.get("file_name", ""))
    image_path = root / file_name
    width, height = int(image.get("width") or 0), int(image.get("height") or 0)
    if width > 0:
        if verify:
            if verify_image(image_path) != (width, height):
                raise AnnotationError(
                    image_path, f"image size differs from {width}x{height} in {json_path}"
                )
        elif not image_path.is_file():
            raise AnnotationError(json_path, f"image {file_name!r}: file not found under {root}")
    image_id = str(image.get("ssabnet_id") or Path(file_name).with_suffix("").as_posix())
    boxes, labels, ignore, trunc, occl = [], [], [], [], []
    native: dict[str, list[int]] = defaultdict(list)
    for ann in anns:
        where = f"annotation id {ann.get('id')} (image {file_name!r})"
        try:
            box = _bbox(ann.get("bbox"), where, json_path, width, height)
            cid = ann.get("category_id")
            extra = ann.get("native") or {}
            if cid in label_of:
                label = label_of[cid]
            elif "category" in extra:
                label = -1  # a native category of no trainable class (VisDrone "others")
            else:
                raise AnnotationError(json_path, f"{where}: unknown category_id {cid}")
        except AnnotationError as exc:
            skip_log.report(exc, "annotation")
            continue
        boxes.append(box)
        labels.append(label)
        ignore.append(bool(ann.get("ignore", 0)) or bool(ann.get("iscrowd", 0)) or label < 0)
        trunc.append(int(ann.get("truncation", -1)))
        occl.append(int(ann.get("occlusion", -1)))
        for key, value in extra.items():
            native[key].append(int(value))
    regions = []
    for j, region in enumerate(image.get("ignore_regions") or []):
        regions.append(
            _bbox(
                region.get("bbox"),
                f"image {file_name!r} ignore region {j}",
                json_path,
                width,
                height,
            )
        )
        for key, value in (region.get("native") or {}).items():
            native[f"region_{key}"].append(int(value))
    n = len(boxes)
    native_arrays = {k: np.array(v, np.int64) for k, v in native.items()}
    bad = [
        k
        for k, v in native_arrays.items()
        if len(v) != (len(regions) if k.startswith("region_") else n)
    ]
    if bad:
        raise AnnotationError(
            json_path, f"image {file_name!r}: 'native' fields {bad} not on every entry"
        )
    return ImageRecord(
        image_id=image_id,
        image_path=image_path,
        width=width,
        height=height,
        boxes=boxes_xywh_to_xyxy(np.array(boxes, np.float64).reshape(-1, 4)).astype(np.float32),
        labels=np.array(labels, np.int64),
        ignore=np.array(ignore, bool),
        truncation=np.array(trunc, np.int64),
        occlusion=np.array(occl, np.int64),
        ignore_regions=boxes_xywh_to_xyxy(np.array(regions, np.float64).reshape(-1, 4)).astype(
            np.float32
        ),
        native=native_arrays,
    )
